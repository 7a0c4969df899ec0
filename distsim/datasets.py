"""Training data sets: how many samples an epoch has.

Steps per epoch = samples / batch (Hestness et al. 2019, §5.2.2).  For the
language models a sample is a sentence of the Billion Word benchmark, unrolled
to the model's sequence length; the projected data sizes are those of Table 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import require_positive, require_positive_int
from .registry import Registry

DATASETS: Registry = Registry("dataset")

# Billion Word benchmark (Chelba et al. 2013): ~0.77-0.8B words in ~30.3M
# training sentences, ~25.4 words per sentence (facts file, "Epochs and samples").
BILLION_WORD_WORDS_PER_SENTENCE = 25.4


@dataclass(frozen=True, kw_only=True)
class Dataset:
    name: str
    samples: float
    source: str = ""

    def __post_init__(self):
        require_positive(f"dataset {self.name}: samples", self.samples)

    def steps_per_epoch(self, batch: int) -> float:
        """Samples / batch (fractional: the last partial batch counts pro rata)."""
        return self.samples / require_positive_int("batch", batch)



def _register(ds: Dataset) -> Dataset:
    DATASETS.register(ds.name)(ds)
    return ds


WORDLM_TARGET = _register(Dataset(
    name="wordlm-target",
    samples=77e9 / BILLION_WORD_WORDS_PER_SENTENCE,
    source="Table 3 projected word-LM data, 77B words, in Billion Word sentences of 25.4 words",
))
BILLION_WORD = _register(Dataset(
    name="billion-word",
    samples=30.3e6,
    source="Billion Word benchmark training sentences (Chelba et al. 2013)",
))


def get_dataset(name: str) -> Dataset:
    return DATASETS.get(name)
