"""``roofline``: the graph-level roofline (PPoPP 2019 §5.2, Table 3 and Table 5 row 1)."""

from __future__ import annotations

import numpy as np

from . import COST_MODELS
from .base import CostModel, algorithmic_op_bytes, op_flops


class Roofline(CostModel):
    """``max(C / (eta_c peak), A / (eta_a bw))`` over the step's total FLOPs C and bytes A.

    Per-op times are the per-op roofline times scaled so that they sum to the
    graph-level time (a simulator needs a time per op).
    """

    name = "roofline"
    description = "graph-level roofline over the step's total FLOPs and bytes"
    rank = 0

    def op_times_s(self, graph, device) -> np.ndarray:
        flops, nbytes = op_flops(graph), algorithmic_op_bytes(graph)
        t = np.maximum(flops / device.achievable_flop_per_s, nbytes / device.achievable_bytes_per_s)
        total = max(flops.sum() / device.achievable_flop_per_s, nbytes.sum() / device.achievable_bytes_per_s)
        if t.sum() > 0:
            t *= total / t.sum()
        return t


COST_MODELS.register("roofline")(Roofline())
