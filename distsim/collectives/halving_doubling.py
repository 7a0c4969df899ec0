"""Recursive halving and doubling (Rabenseifner; Thakur, Rabenseifner & Gropp 2005)."""

from __future__ import annotations

from . import COLLECTIVES
from . import closed_form as cf
from .schedule import Algorithm, Step, log2_exact


class HalvingDoubling(Algorithm):
    """Pairwise exchanges at distance n/2, n/4, ... (halving) or 1, 2, ... (doubling).

    - reducescatter (recursive halving): step ``k`` exchanges ``S/2**(k+1)``
      with rank ``r XOR n/2**(k+1)``: ``T = log2(n) a + (n-1)/n S/B``;
    - allgather (recursive doubling): step ``k`` exchanges ``2**k S/n`` with
      ``r XOR 2**k``: same time;
    - allreduce: halving then doubling: ``T = 2 log2(n) a + 2 (n-1)/n S/B``.

    n must be a power of two.  Partners are far apart in rank, so on a ring or
    torus the routes share links and contention makes it slower than the
    closed form; on a fully connected topology or a switch it matches.
    """

    name = "halving_doubling"
    ops = ("allreduce", "allgather", "reducescatter")

    def _rs(self, n, nbytes):
        levels = log2_exact(n, self.name)
        return [Step(tuple((r, r ^ (n >> (k + 1)), nbytes / (2 << k)) for r in range(n)), 1, f"halving {k}")
                for k in range(levels)]

    def _ag(self, n, nbytes):
        levels = log2_exact(n, self.name)
        return [Step(tuple((r, r ^ (1 << k), nbytes * (1 << k) / n) for r in range(n)), 1, f"doubling {k}")
                for k in range(levels)]

    def _schedule_reducescatter(self, n, nbytes):
        return self._rs(n, nbytes)

    def _schedule_allgather(self, n, nbytes):
        return self._ag(n, nbytes)

    def _schedule_allreduce(self, n, nbytes):
        return self._rs(n, nbytes) + self._ag(n, nbytes)

    def _closed_form_allreduce(self, n, s, b, a):
        log2_exact(n, self.name)
        return cf.halving_doubling_allreduce_s(n, s, b, a)

    def _closed_form_allgather(self, n, s, b, a):
        log2_exact(n, self.name)
        return cf.halving_doubling_allgather_s(n, s, b, a)

    _closed_form_reducescatter = _closed_form_allgather


COLLECTIVES.register("halving_doubling")(HalvingDoubling())
