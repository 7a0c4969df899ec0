"""Closed-form (alpha-beta) times of the collectives, for analytic costing.

``n`` ranks, ``nbytes`` S (package size conventions), ``bandwidth`` B in
bytes/s and ``latency`` a in seconds per transfer (the latency of the route one
transfer takes: one link on a ring, two on a switch).  Uncontended; each is
the time the simulator reproduces when every transfer of a step has its links
to itself (tests/test_collectives.py).  ``n == 1`` costs nothing.
"""

from __future__ import annotations

from . import get_algorithm
from ..topology import DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S


def ring_allreduce_s(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """``2(n-1) a + 2(n-1)/n S/B``: reduce-scatter then all-gather, n-1 steps each of S/n bytes."""
    return 2 * (n - 1) * (latency + nbytes / (n * bandwidth)) if n > 1 else 0.0


def ring_allgather_s(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """``(n-1) a + (n-1)/n S/B``; a ring reduce-scatter costs the same."""
    return (n - 1) * (latency + nbytes / (n * bandwidth)) if n > 1 else 0.0


ring_reducescatter_s = ring_allgather_s


def ring_broadcast_s(n: int, nbytes: float, bandwidth: float, latency: float, chunks: int = 1) -> float:
    """Pipelined chain of P = ``chunks`` pieces: ``(n-2+P) (a + S/(P B))``."""
    return (n - 2 + chunks) * (latency + nbytes / (chunks * bandwidth)) if n > 1 else 0.0


def tree_broadcast_s(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Binomial tree: ``ceil(log2 n) (a + S/B)``."""
    return (n - 1).bit_length() * (latency + nbytes / bandwidth)


def tree_allreduce_s(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Binomial reduce then broadcast: ``2 ceil(log2 n) (a + S/B)`` (exact for n a power of two)."""
    return 2 * tree_broadcast_s(n, nbytes, bandwidth, latency)


def halving_doubling_allreduce_s(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Rabenseifner: ``2 log2(n) a + 2 (n-1)/n S/B`` (n a power of two)."""
    return 2 * halving_doubling_allgather_s(n, nbytes, bandwidth, latency)


def halving_doubling_allgather_s(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Recursive doubling: ``log2(n) a + (n-1)/n S/B``; recursive halving reduce-scatter the same."""
    return (n.bit_length() - 1) * latency + (n - 1) / n * nbytes / bandwidth


def hierarchical_allreduce_s(n: int, nbytes: float, local_size: int, bandwidth: float, latency: float,
                             inter_bandwidth: float, inter_latency: float) -> float:
    """Ring reduce-scatter inside each group of k, ring all-reduce across the m = n/k groups
    (among equal local ranks, S/k bytes each), ring all-gather inside:

    ``2(k-1)(a_l + S/(k B_l)) + 2(m-1)(a_g + S/(k m B_g))``.
    """
    k = local_size
    m = n // k
    intra = 2 * (k - 1) * (latency + nbytes / (k * bandwidth))
    inter = 2 * (m - 1) * (inter_latency + nbytes / (k * m * inter_bandwidth))
    return intra + inter


def p2p_send_s(nbytes: float, bandwidth: float, latency: float) -> float:
    """One message: ``a + S/B`` (a and B of its route)."""
    return latency + nbytes / bandwidth


def collective_time_s(op: str, algorithm: str, n: int, nbytes: float, *,
                      bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S,
                      latency_s: float = DEFAULT_LATENCY_S, **options) -> float:
    """Closed-form time of ``op`` by ``algorithm`` (the planner's analytic path).

    Examples
    --------
    >>> t = collective_time_s("allreduce", "ring", 4, 4e9, bandwidth_bytes_per_s=1e9, latency_s=0.0)
    >>> round(t, 9)   # 2 * 3/4 * 4 s
    6.0
    """
    return get_algorithm(algorithm).closed_form_s(op, n, nbytes, bandwidth_bytes_per_s=bandwidth_bytes_per_s,
                                                  latency_s=latency_s, **options)


def bus_bandwidth_factor(op: str, n: int) -> float:
    """nccl-tests' busbw / algbw: 2(n-1)/n allreduce, (n-1)/n allgather and reduce-scatter, 1 otherwise."""
    if op == "allreduce":
        return 2 * (n - 1) / n
    if op in ("allgather", "reducescatter"):
        return (n - 1) / n
    return 1.0
