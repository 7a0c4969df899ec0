"""``per_op``: each op's own roofline, summed (PPoPP 2019 §5.2.1, Figure 11)."""

from __future__ import annotations

from . import COST_MODELS
from .base import CostModel


class PerOp(CostModel):
    """Sum over ops of ``max(flops / (eta_c peak), bytes / (eta_a bw))`` with algorithmic bytes."""

    name = "per_op"
    description = "sum of per-op roofline times, algorithmic bytes"
    rank = 1


COST_MODELS.register("per_op")(PerOp())
