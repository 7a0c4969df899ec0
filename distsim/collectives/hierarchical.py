"""Hierarchical all-reduce: inside nodes, across nodes, inside nodes again."""

from __future__ import annotations

from . import COLLECTIVES
from . import closed_form as cf
from ..errors import ConfigError, require_positive, require_positive_int
from .schedule import Algorithm, Step


def _groups(n: int, local_size) -> tuple[int, int]:
    k = require_positive_int("local_size", local_size)
    if n % k:
        raise ConfigError(f"hierarchical: nodes={n} is not a multiple of local_size={k}")
    return k, n // k


class Hierarchical(Algorithm):
    """Ranks ``g*k .. g*k+k-1`` form group (server) ``g``; ``m = n/k`` groups.

    1. ring reduce-scatter inside each group: ``k-1`` steps of ``S/k``;
    2. ring all-reduce of each ``S/k`` shard across the groups, among ranks of
       equal local rank: ``2(m-1)`` steps of ``S/(k m)``;
    3. ring all-gather inside each group: ``k-1`` steps of ``S/k``.

    ``T = 2(k-1)(a_l + S/(k B_l)) + 2(m-1)(a_g + S/(k m B_g))`` where ``a_l,
    B_l`` are a transfer's latency and bandwidth inside a group and ``a_g,
    B_g`` between groups (on ``two_level`` the inter-group route crosses two
    NIC links: ``a_g = 2 inter_latency_s``).
    """

    name = "hierarchical"
    ops = ("allreduce",)

    def _schedule_allreduce(self, n, nbytes, local_size: int = 8):
        k, m = _groups(n, local_size)
        intra = tuple((g * k + l, g * k + (l + 1) % k, nbytes / k) for g in range(m) for l in range(k))
        inter = tuple((g * k + l, ((g + 1) % m) * k + l, nbytes / (k * m)) for g in range(m) for l in range(k))
        steps = []
        if k > 1:
            steps.append(Step(intra, k - 1, "intra reduce-scatter"))
        if m > 1:
            steps.append(Step(inter, 2 * (m - 1), "inter all-reduce"))
        if k > 1:
            steps.append(Step(intra, k - 1, "intra all-gather"))
        return steps

    def _closed_form_allreduce(self, n, s, b, a, local_size: int = 8, inter_bandwidth_bytes_per_s: float | None = None,
                               inter_latency_s: float | None = None):
        k, m = _groups(n, local_size)
        ib = b if inter_bandwidth_bytes_per_s is None else require_positive("inter_bandwidth_bytes_per_s", inter_bandwidth_bytes_per_s)
        ia = a if inter_latency_s is None else require_positive("inter_latency_s", inter_latency_s, allow_zero=True)
        return cf.hierarchical_allreduce_s(n, s, k, b, a, ib, ia)


COLLECTIVES.register("hierarchical")(Hierarchical())
