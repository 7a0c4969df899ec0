"""The five domains of Hestness et al., PPoPP 2019, as workload configurations.

Shared by ``table2``, ``table3`` and ``subbatch``: which builder and options
each domain uses, how its model grows, the paper's published constants
(Tables 2 and 3, as printed; memory in GiB, TFLOP and TB in 1e12) and what a
training sample is.

Model growth (section 4.1): recurrent models grow their hidden width at fixed
depth; ResNets grow channels (here ResNet-152, the ~61M-parameter model that
Table 1's 12x growth takes to Table 3's 732M, with a width multiplier).

Samples per epoch (section 5.2.2, facts file "Epochs and samples"):

- word LM: Billion Word sentences, 25.4 words each (77B words);
- char LM: the same sentences in characters, 3.48B characters / 30.3M
  sentences = 114.9 characters each (Table 1's char-LM data is Billion Word);
- NMT: sentence pairs of ``seq_len`` = 25 word pieces.  The unroll length of
  25 is not in the paper; it is what Table 2's 149 FLOPs/param implies (our
  graph's asymptote is 6 FLOPs per parameter and unrolled step) and is close
  to the 25.4-word average sentence.  Catamount's own base graph uses 19;
- speech: utterances of 75 characters (the decoder's 300 / 4 steps);
- image: images.

The per-sample constants live in :mod:`distsim.datasets` (the workloads' default
data sets); ``tests/test_datasets.py`` checks the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from distsim.datasets import (BILLION_WORD_CHARS_PER_SENTENCE as CHARS_PER_SENTENCE,
                              BILLION_WORD_WORDS_PER_SENTENCE as WORDS_PER_SENTENCE,
                              NMT_WORDPIECES_PER_SAMPLE as NMT_SEQ_LEN, SPEECH_CHARS_PER_UTTERANCE)
from distsim.workload import build_workload



@dataclass(frozen=True)
class Domain:
    """One row of Tables 2 and 3."""

    name: str  # the workload name, also the table's ``domain`` key
    size_option: str  # the option that grows the model
    fixed: dict  # the other builder options (batch excluded)
    table3_params: float  # Table 3's projected parameters
    table3_size: float | None  # size option for Table 3 (None: solve for table3_params)
    subbatch: int  # Table 3's subbatch
    data: float  # Table 3's projected data (words, characters, word pieces, images)
    units_per_sample: float  # data units in one sample
    table2_sizes: tuple  # size options of the Table 2 sweep (full mode)
    quick_sizes: tuple  # fewer, for --quick
    quick_fixed: dict = field(default_factory=dict)  # option overrides for --quick
    paper2: dict = field(default_factory=dict)
    paper3: dict = field(default_factory=dict)

    @property
    def samples(self) -> float:
        return self.data / self.units_per_sample

    def build(self, size, batch: int, *, quick: bool = False):
        opts = dict(self.fixed)
        if quick:
            opts.update(self.quick_fixed)
        opts[self.size_option] = size
        return build_workload(self.name, batch=batch, **opts)


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain(
        name="wordlm", size_option="hidden", fixed=dict(vocab=10004, layers=2, seq_len=80),
        table3_params=23.8e9, table3_size=38100, subbatch=128, data=77e9, units_per_sample=WORDS_PER_SENTENCE,
        table2_sizes=(4096, 8192, 16384, 38100), quick_sizes=(2048, 8192), quick_fixed=dict(seq_len=16),
        paper2=dict(flops_per_param=481, bytes_lambda=1755, bytes_mu=30784, footprint_per_param=11.94),
        paper3=dict(params=23.8e9, tflops_per_step=1444, tb_per_step=41.5, min_footprint_gb=272, step_s=115,
                    epoch_days=31e3),
    ),
    Domain(
        name="charlm", size_option="hidden", fixed=dict(vocab=98, seq_len=150),
        table3_params=146e9, table3_size=None, subbatch=96, data=3.4e12, units_per_sample=CHARS_PER_SENTENCE,
        table2_sizes=(4096, 8192, 16384, 81459), quick_sizes=(2048, 8192), quick_fixed=dict(seq_len=30),
        paper2=dict(flops_per_param=900, bytes_lambda=3510, bytes_mu=102980, footprint_per_param=12.47),
        paper3=dict(params=146e9, tflops_per_step=12618, tb_per_step=488.1, min_footprint_gb=1703, step_s=1007,
                    epoch_days=3.5e6),
    ),
    Domain(
        name="nmt", size_option="hidden", fixed=dict(vocab=36548, seq_len=NMT_SEQ_LEN),
        table3_params=18.9e9, table3_size=None, subbatch=96, data=97.4e9, units_per_sample=NMT_SEQ_LEN,
        table2_sizes=(4096, 8192, 16384, 22328), quick_sizes=(2048, 8192), quick_fixed=dict(seq_len=10),
        paper2=dict(flops_per_param=149, bytes_lambda=533, bytes_mu=22653, footprint_per_param=10.32),
        paper3=dict(params=18.9e9, tflops_per_step=499, tb_per_step=18.4, min_footprint_gb=185, step_s=39.8,
                    epoch_days=16e3),
    ),
    Domain(
        name="speech", size_option="hidden", fixed=dict(seq_len=300),
        table3_params=727e6, table3_size=None, subbatch=128, data=14e9, units_per_sample=SPEECH_CHARS_PER_UTTERANCE,
        table2_sizes=(1024, 2048, 3288), quick_sizes=(512, 2048), quick_fixed=dict(seq_len=48),
        paper2=dict(flops_per_param=775, bytes_lambda=3100, bytes_mu=162750, footprint_per_param=32.94),
        paper3=dict(params=727e6, tflops_per_step=72, tb_per_step=2.8, min_footprint_gb=30, step_s=5.8,
                    epoch_days=93),
    ),
    Domain(
        name="resnet", size_option="width", fixed=dict(depth=152),
        table3_params=732e6, table3_size=None, subbatch=32, data=103e6, units_per_sample=1,
        table2_sizes=(1.0, 2.0, 3.53), quick_sizes=(1.0, 2.0), quick_fixed=dict(depth=50, image=112),
        paper2=dict(flops_per_param=1111, bytes_lambda=66.7, bytes_mu=268862, footprint_per_param=42.57),
        paper3=dict(params=732e6, tflops_per_step=28, tb_per_step=0.4, min_footprint_gb=34, step_s=2.3,
                    epoch_days=84),
    ),
)}


def params_of(domain: Domain, size) -> int:
    """Parameter count at ``size`` (independent of batch and sequence length)."""
    opts = dict(domain.fixed)
    if "seq_len" in opts:
        opts["seq_len"] = 4 if domain.name != "speech" else 8
    opts[domain.size_option] = size
    return build_workload(domain.name, batch=1, **opts).params


def size_for_params(domain: Domain, target: float):
    """The size option whose model has about ``target`` parameters.

    Parameters are a quadratic in hidden width (recurrent models) or, up to
    channel rounding, in the width multiplier (ResNet): fit it through three
    builds, solve, and round to an integer width or a multiplier of 0.01.
    """
    if domain.table3_size is not None:
        return domain.table3_size
    probes = (256, 512, 1024) if domain.size_option == "hidden" else (1.0, 2.0, 4.0)
    coef = np.polyfit(probes, [params_of(domain, s) for s in probes], 2)
    a, b, c = coef
    root = (-b + math.sqrt(b * b - 4 * a * (c - target))) / (2 * a)
    return int(round(root)) if domain.size_option == "hidden" else round(root, 2)


def beyond_tolerance_notes(df, compared, tolerance: float, table: str, doc: str) -> list[str]:
    """One note per domain whose ``<key>_rel_diff`` columns exceed ``tolerance``."""
    notes = []
    for _, r in df.iterrows():
        off = [k for k in compared if abs(r[f"{k}_rel_diff"]) > tolerance]
        if off:
            notes.append(f"{r['domain']}: beyond {tolerance:.0%} of {table}: "
                         + ", ".join(f"{k} {r[f'{k}_rel_diff']:+.0%}" for k in off) + f" ({doc})")
    return notes
