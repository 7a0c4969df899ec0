"""Timing models of one training step on one device.

Three models, from optimistic to less so (Hestness et al., PPoPP 2019, §5.2 and §6.1):

``roofline``
    Graph level: ``max(C / (eta_c * peak), A / (eta_a * bw))`` over the step's
    total algorithmic FLOPs C and bytes A.
``per_op``
    Sum over ops of each op's own roofline time, so memory-bound ops (below
    the ridge point) cost their bandwidth time even when the step as a whole
    is compute-bound.
``cache_aware``
    ``per_op`` with the extra off-chip traffic of tiled matrix multiplies
    whose operands do not fit in the on-chip cache (:func:`tiled_gemm_bytes`).

Algorithmic FLOP utilization = algorithmic FLOPs / (peak FLOP/s x time).
A graph runs at the device's peak for the graph's precision
(:meth:`distsim.device.Device.at_precision`), one peak for all its ops.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .device import Device
from .errors import ConfigError
from .graph import Gemm, Graph

MODES = ("roofline", "per_op", "cache_aware")

# Fraction of the cache a tile may use.  Coleman & McKinley (1995) choose the
# largest tile whose rows do not conflict in the cache; with a highly
# associative L2 we take the whole capacity, the most optimistic choice (the
# paper notes its cache-aware model is "still optimistic").
CACHE_TILE_FRACTION = 1.0


def tiled_gemm_bytes(g: Gemm, cache_bytes: float) -> float:
    """Off-chip bytes of ``C[m,n] = A[m,k] B[k,n]`` tiled for a cache.

    A blocked multiply keeps one operand's tile resident in the cache and
    streams the other two past it (Coleman & McKinley 1995; Lam, Rothberg &
    Wolf 1991).  We cost the three choices of resident operand and take the
    cheapest, with square tiles of ``T x T`` elements, ``T^2 * s <= fraction *
    cache`` (clipped to the matrix dimensions, the freed room going to the
    other tile dimension):

    - C resident (tile ``Tm x Tn``): A is read ``ceil(n/Tn)`` times, B
      ``ceil(m/Tm)`` times, C written once;
    - B resident (``Tk x Tn``): B read once, A read ``ceil(n/Tn)`` times, C
      written ``ceil(k/Tk)`` times and read back ``ceil(k/Tk) - 1`` times;
    - A resident (``Tm x Tk``): symmetric to B.

    Never less than the algorithmic bytes (each operand once).  ``batch``
    independent products cost ``batch`` times one.
    """
    return _tiled_gemm_bytes(g.m, g.n, g.k, g.batch, g.element_bytes, float(cache_bytes))


@lru_cache(maxsize=4096)
def _tiled_gemm_bytes(m: int, n: int, k: int, batch: int, s: int, cache_bytes: float) -> float:
    a, b, c = m * k, k * n, m * n
    algorithmic = (a + b + c) * s
    tile_elems = CACHE_TILE_FRACTION * cache_bytes / s
    if tile_elems < 1:
        return batch * (2 * m * n * k + c) * s  # no cache: every operand access goes off chip

    def tile(d1: int, d2: int) -> tuple[int, int]:
        t = max(1, int(math.isqrt(int(tile_elems))))
        t1, t2 = min(d1, t), min(d2, t)
        if t1 < t:
            t2 = min(d2, max(1, int(tile_elems // t1)))
        elif t2 < t:
            t1 = min(d1, max(1, int(tile_elems // t2)))
        return t1, t2

    tm, tn = tile(m, n)
    c_resident = a * math.ceil(n / tn) + b * math.ceil(m / tm) + c
    tk, tn = tile(k, n)
    passes = math.ceil(k / tk)
    b_resident = b + a * math.ceil(n / tn) + c * (2 * passes - 1)
    tm, tk = tile(m, k)
    passes = math.ceil(k / tk)
    a_resident = a + b * math.ceil(m / tm) + c * (2 * passes - 1)
    return batch * max(algorithmic, s * min(c_resident, b_resident, a_resident))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown timing mode {mode!r}; accepted: {', '.join(MODES)}")


def op_bytes(graph: Graph, device: Device, mode: str = "cache_aware") -> np.ndarray:
    """Off-chip bytes per op: algorithmic, or with tiled-matmul re-streaming."""
    _check_mode(mode)
    nbytes = np.fromiter((op.nbytes for op in graph.ops), dtype=float, count=len(graph.ops))
    if mode == "cache_aware":
        for i, op in enumerate(graph.ops):
            if op.gemm is not None:
                extra = tiled_gemm_bytes(op.gemm, device.cache_bytes) - _gemm_algorithmic_bytes(op.gemm)
                nbytes[i] += max(0.0, extra)
    return nbytes


def _gemm_algorithmic_bytes(g: Gemm) -> int:
    return g.batch * (g.m * g.k + g.k * g.n + g.m * g.n) * g.element_bytes


def op_times_s(graph: Graph, device: Device, mode: str = "cache_aware") -> np.ndarray:
    """Seconds per op under ``mode`` (``roofline`` spreads the graph-level time
    over ops in proportion to their per-op times, so that they sum to it)."""
    _check_mode(mode)
    device = device.at_precision(graph.precision)
    flops = np.fromiter((op.flops for op in graph.ops), dtype=float, count=len(graph.ops))
    nbytes = op_bytes(graph, device, "per_op" if mode == "roofline" else mode)
    t = np.maximum(flops / device.achievable_flop_per_s, nbytes / device.achievable_bytes_per_s)
    if mode == "roofline" and t.sum() > 0:
        t *= roofline_step_s(graph, device) / t.sum()
    return t


def roofline_step_s(graph: Graph, device: Device) -> float:
    device = device.at_precision(graph.precision)
    return max(graph.flops / device.achievable_flop_per_s, graph.nbytes / device.achievable_bytes_per_s)


def per_op_step_s(graph: Graph, device: Device) -> float:
    return float(op_times_s(graph, device, "per_op").sum())


def cache_aware_step_s(graph: Graph, device: Device) -> float:
    return float(op_times_s(graph, device, "cache_aware").sum())


def utilization(flops: float, device: Device, seconds: float, accelerators: int = 1) -> float:
    """Algorithmic FLOP utilization: FLOPs / (accelerators x peak x time)."""
    return flops / (accelerators * device.flop_per_s * seconds)


def analyze_step(graph: Graph, device: Device) -> dict:
    """Everything ``distsim step --json`` prints, as a flat dict (SI units)."""
    device = device.at_precision(graph.precision)
    roof = roofline_step_s(graph, device)
    per_op = per_op_step_s(graph, device)
    cache = cache_aware_step_s(graph, device)
    flops, nbytes = graph.flops, graph.nbytes
    return {
        "workload": graph.name,
        "device": device.name,
        "precision": device.precision,
        "params": graph.params,
        "flops": flops,
        "bytes": nbytes,
        "operational_intensity": flops / nbytes if nbytes else math.inf,
        "footprint_total_bytes": graph.footprint_total_bytes,
        "footprint_min_bytes": graph.footprint_min_bytes(),
        "persistent_bytes": graph.persistent_bytes,
        "cache_aware_bytes": float(op_bytes(graph, device, "cache_aware").sum()),
        "roofline_step_s": roof,
        "per_op_step_s": per_op,
        "cache_aware_step_s": cache,
        "roofline_utilization": utilization(flops, device, roof),
        "per_op_utilization": utilization(flops, device, per_op),
        "cache_aware_utilization": utilization(flops, device, cache),
    }
