"""Small word-LM graphs for the planner tests (fast; the layers of the case study)."""

from __future__ import annotations

from functools import lru_cache

from distsim.workload import build_workload

#: The paper's layer-parallel split (Table 5 row 5): embedding | lstm0 | lstm1 | output+step.
FOUR_STAGES = (("embedding",), ("lstm0",), ("lstm1",), ("output", "step"))


@lru_cache(maxsize=None)
def small_lm(vocab: int = 1000, projection: int = 0):
    """Layers embedding, lstm0, lstm1, output, step; hidden 64, 4 time steps, subbatch 8."""
    kw = dict(hidden=64, vocab=vocab, seq_len=4, batch=8)
    if projection:
        kw.update(layers=2, projection=projection)  # shaped like the case study's LSTM-p
    return build_workload("wordlm", **kw)
