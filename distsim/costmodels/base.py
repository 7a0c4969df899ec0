"""The cost-model interface and the per-op roofline all models share."""

from __future__ import annotations

import numpy as np


def op_flops(graph) -> np.ndarray:
    """Algorithmic FLOPs per op (array in graph order)."""
    return np.fromiter((op.flops for op in graph.ops), dtype=float, count=len(graph.ops))


def algorithmic_op_bytes(graph) -> np.ndarray:
    """Algorithmic bytes per op: each input and output once (array in graph order)."""
    return np.fromiter((op.nbytes for op in graph.ops), dtype=float, count=len(graph.ops))


def gemm_algorithmic_bytes(g) -> int:
    """Bytes of ``[m, k] x [k, n] -> [m, n]`` with each operand moved once (``batch`` of them)."""
    return g.batch * (g.m * g.k + g.k * g.n + g.m * g.n) * g.element_bytes


class CostModel:
    """A timing model of one step's ops on one accelerator.

    Subclasses set ``name``, ``description`` and ``rank`` and override :meth:`op_bytes`
    (the off-chip traffic they assume) or :meth:`op_times_s`.  An op's time is
    its own roofline: ``max(flops / (eta_c peak), bytes / (eta_a bw))``.
    """

    name: str = ""
    description: str = ""
    #: Listing order, most optimistic first (roofline 0, per_op 1, ...).
    rank: int = 100

    def op_bytes(self, graph, device) -> np.ndarray:
        """Off-chip bytes per op (default: algorithmic)."""
        return algorithmic_op_bytes(graph)

    def op_times_s(self, graph, device) -> np.ndarray:
        """Seconds per op, in graph order."""
        return np.maximum(op_flops(graph) / device.achievable_flop_per_s,
                          self.op_bytes(graph, device) / device.achievable_bytes_per_s)


class TiledGemmModel(CostModel):
    """``per_op`` plus the extra traffic of matrix multiplies blocked for the on-chip cache.

    Subclasses give :meth:`gemm_bytes`, the off-chip bytes of one multiply;
    other ops keep their algorithmic bytes.  The extra traffic is never
    negative (a multiply moves each operand at least once).
    """

    def gemm_bytes(self, gemm, cache_bytes: float) -> float:
        raise NotImplementedError

    def op_bytes(self, graph, device) -> np.ndarray:
        nbytes = algorithmic_op_bytes(graph)
        for i, op in enumerate(graph.ops):
            if op.gemm is not None:
                extra = self.gemm_bytes(op.gemm, device.cache_bytes) - gemm_algorithmic_bytes(op.gemm)
                nbytes[i] += max(0.0, extra)
        return nbytes
