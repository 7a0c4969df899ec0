"""Training data sets: how many samples an epoch has, and each workload's default.

Steps per epoch = samples / batch (Hestness et al., PPoPP 2019, section 5.2.2).
A data set is an input like the model and the cluster: every shipped workload
has a default, the data its paper row projects (Table 3, "Data Size"), and a
user gives their own as ``Dataset(name=..., samples=N)``, ``dataset:
{samples: N}`` in a what-if file or ``--samples N`` on the command line.

What a sample is (facts file ``ppopp2019-facts.md``, "Epochs and samples" and
Tables 1 and 3; Table 1's "Current Data Size" is the data set of today's
state of the art, Table 3's the data projected for the target accuracy):

- word LM: a sentence of the Billion Word benchmark (Chelba et al. 2013;
  30.3M training sentences, 768M words in Table 1, so ~25.4 words each),
  unrolled to the model's sequence length; Table 3's 77B words;
- char LM: the same sentences in characters: Table 1's char-LM data (3.48B
  characters) is Billion Word, so 3.48e9 / 30.3e6 = 114.9 characters a
  sentence; Table 3's 3.4T characters;
- NMT: a sentence pair of :data:`NMT_WORDPIECES_PER_SAMPLE` (25) word pieces.
  The paper gives no sentence length; 25 is the unroll length that Table 2's
  149 FLOPs/param implies for our graph (6 FLOPs per parameter and unrolled
  step) and is close to the 25.4-word Billion Word sentence.  Table 3's 97.4B
  word pieces (Table 1: 130M);
- speech: an utterance of :data:`SPEECH_CHARS_PER_UTTERANCE` (75) characters,
  the decoder steps of the paper's ~300-frame profile (300 / 4, see
  ``distsim.workloads.speech``); Table 3's 14B characters (Table 1: 425M);
- image: an image; Table 3's 103M images (Table 1: 1.3M, ImageNet).

With these, Table 3's epoch column follows from its own step column and
subbatch within 6% for four domains (``tests/test_datasets.py``).  NMT is the
residual: 18.7K days against the paper's 16K, since the paper's epoch implies
29 word pieces a sentence pair and Table 2 implies 25; we keep Table 2's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError, require_positive, require_positive_int
from .registry import Registry

DATASETS: Registry = Registry("dataset")

#: Billion Word benchmark training sentences (Chelba et al. 2013; facts file, "Epochs and samples").
BILLION_WORD_SENTENCES = 30.3e6
#: Words per Billion Word sentence (~0.77-0.8B words / 30.3M sentences; facts file).
BILLION_WORD_WORDS_PER_SENTENCE = 25.4
#: Characters per Billion Word sentence: Table 1's char-LM data (3.48B characters) / 30.3M sentences.
BILLION_WORD_CHARS_PER_SENTENCE = 3.48e9 / BILLION_WORD_SENTENCES
#: Word pieces per NMT sentence pair (an assumption, see the module doc: Table 2's 149 FLOPs/param).
NMT_WORDPIECES_PER_SAMPLE = 25
#: Characters per speech utterance: the decoder steps of a 300-frame utterance (300 / 4; Table 2's 775 b).
SPEECH_CHARS_PER_UTTERANCE = 75


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A training data set: ``samples`` per epoch (a sample is what one batch row holds).

    Examples
    --------
    >>> Dataset(name="my-data", samples=60_000).steps_per_epoch(batch=100)
    600.0
    """

    name: str
    samples: float
    source: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"dataset name must be a non-empty string, got {self.name!r}")
        require_positive(f"dataset {self.name}: samples", self.samples)

    def steps_per_epoch(self, batch: int) -> float:
        """Samples / batch (fractional: the last partial batch counts pro rata)."""
        return self.samples / require_positive_int("batch", batch)


def _register(ds: Dataset) -> Dataset:
    DATASETS.register(ds.name)(ds)
    return ds


# ---- Table 3: data projected to the target accuracy (the workloads' defaults) ----
WORDLM_TARGET = _register(Dataset(
    name="wordlm-target",
    samples=77e9 / BILLION_WORD_WORDS_PER_SENTENCE,
    source="Table 3 word LM: 77B words, in Billion Word sentences of 25.4 words",
))
CHARLM_TARGET = _register(Dataset(
    name="charlm-target",
    samples=3.4e12 / BILLION_WORD_CHARS_PER_SENTENCE,
    source="Table 3 char LM: 3.4T characters, in Billion Word sentences of 114.9 characters",
))
NMT_TARGET = _register(Dataset(
    name="nmt-target",
    samples=97.4e9 / NMT_WORDPIECES_PER_SAMPLE,
    source="Table 3 NMT: 97.4B word pieces, in sentence pairs of 25 word pieces (assumed)",
))
SPEECH_TARGET = _register(Dataset(
    name="speech-target",
    samples=14e9 / SPEECH_CHARS_PER_UTTERANCE,
    source="Table 3 speech: 14B characters, in utterances of 75 characters",
))
RESNET_TARGET = _register(Dataset(
    name="resnet-target",
    samples=103e6,
    source="Table 3 image classification: 103M images",
))

# ---- Table 1: today's data sets ------------------------------------------------
BILLION_WORD = _register(Dataset(
    name="billion-word",
    samples=BILLION_WORD_SENTENCES,
    source="Billion Word benchmark training sentences (Chelba et al. 2013); Table 1 word and char LM data",
))
NMT_CURRENT = _register(Dataset(
    name="nmt-current",
    samples=130e6 / NMT_WORDPIECES_PER_SAMPLE,
    source="Table 1 NMT: 130M word pieces, in sentence pairs of 25 word pieces (assumed)",
))
SPEECH_CURRENT = _register(Dataset(
    name="speech-current",
    samples=425e6 / SPEECH_CHARS_PER_UTTERANCE,
    source="Table 1 speech: 425M characters, in utterances of 75 characters",
))
IMAGENET = _register(Dataset(
    name="imagenet",
    samples=1.3e6,
    source="Table 1 image classification: 1.3M images (ImageNet, Russakovsky et al. 2015)",
))

# ---- transformers ---------------------------------------------------------------
#: GPT-3's training data: 300B tokens (Brown et al. 2020, section 2.2), also the run Narayanan et al.
#: (SC'21, section 5.1) estimate end-to-end training times for; in sequences of 2048 tokens, the
#: sequence length of the Megatron-LM Table 1 models (``gpt`` presets).
GPT_300B_TOKENS = _register(Dataset(
    name="gpt-300b-tokens",
    samples=300e9 / 2048,
    source="GPT-3 training data, 300B tokens (Brown et al. 2020), in sequences of 2048 tokens",
))

#: Workload name -> the data set its days per epoch refer to (Table 3's projected data).
DEFAULT_DATASETS: dict[str, str] = {
    "wordlm": WORDLM_TARGET.name,
    "charlm": CHARLM_TARGET.name,
    "nmt": NMT_TARGET.name,
    "speech": SPEECH_TARGET.name,
    "resnet": RESNET_TARGET.name,
    "gpt": GPT_300B_TOKENS.name,
}


def get_dataset(name: str) -> Dataset:
    return DATASETS.get(name)


def user_dataset(samples, name: str | None = None, *, field: str = "samples") -> Dataset:
    """A data set the user gives by its sample count (``--samples N``, ``dataset: {samples: N}``).

    ``field`` names the input in errors.

    >>> user_dataset(1.2e6).name
    '1200000 samples'
    """
    samples = require_positive(field, samples)
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"dataset name must be a non-empty string, got {name!r}")
    return Dataset(name=name or f"{samples:.0f} samples", samples=samples, source="given by the user")


def set_default_dataset(workload: str, dataset: str | Dataset) -> Dataset:
    """Make ``dataset`` (a registered name, or a Dataset, registered here) the default of ``workload``.

    ``workload`` is the name of the graphs it builds (``GraphBuilder(name)``),
    which plan evaluation looks up.  For a user's own workload, e.g. in its
    workload file::

        set_default_dataset("mymlp", Dataset(name="mymlp-data", samples=60_000))
    """
    if isinstance(dataset, Dataset):
        if dataset.name not in DATASETS:
            _register(dataset)
        elif DATASETS.get(dataset.name) != dataset:
            raise ConfigError(f"data set name {dataset.name!r} is taken by another data set; choose another name")
        name = dataset.name
    else:
        name = get_dataset(dataset).name
    DEFAULT_DATASETS[workload] = name
    return DATASETS.get(name)


def default_dataset_for(workload: str) -> Dataset:
    """The default data set of ``workload`` (a workload or graph name; ``wordlm-...`` counts as ``wordlm``).

    Raises ConfigError naming the ways to give one when the workload has none.

    Examples
    --------
    >>> round(default_dataset_for("charlm").samples / 1e9, 1)
    29.6
    """
    for key in (workload, workload.split("_")[0].split("-")[0]):
        if key in DEFAULT_DATASETS:
            return get_dataset(DEFAULT_DATASETS[key])
    raise ConfigError(
        f"no default data set for workload {workload!r}; give one: --samples N or --dataset NAME "
        f"(one of {', '.join(DATASETS.names())}) on the command line, dataset: {{samples: N}} in a what-if file, "
        f"or set_default_dataset({workload!r}, Dataset(name=..., samples=N)) in Python")
