"""Binomial-tree collectives rooted at rank 0."""

from __future__ import annotations

from . import COLLECTIVES
from . import closed_form as cf
from .schedule import Algorithm, Step, ceil_log2


class BinomialTree(Algorithm):
    """Whole-buffer messages along a binomial tree; ``L = ceil(log2 n)`` levels.

    - broadcast: in step ``k`` every rank ``r < 2**k`` sends S to ``r + 2**k``:
      ``T = L (a + S/B)``;
    - allreduce: the mirror-image reduce to rank 0 (step ``j`` with
      ``h = 2**(L-1-j)``: ranks ``h..2h-1`` send S to ``r - h``), then the
      broadcast: ``T = 2 L (a + S/B)``.  Exact for n a power of two; for other
      n some reduce steps overlap and the simulation can be faster.
    """

    name = "tree"
    ops = ("allreduce", "broadcast")

    @staticmethod
    def _bcast(n, nbytes):
        return [Step(tuple((r, r + (1 << k), nbytes) for r in range(min(1 << k, n - (1 << k)))), 1, f"broadcast level {k}")
                for k in range(ceil_log2(n))]

    @staticmethod
    def _reduce(n, nbytes):
        levels = ceil_log2(n)
        steps = []
        for j in range(levels):
            h = 1 << (levels - 1 - j)
            steps.append(Step(tuple((r, r - h, nbytes) for r in range(h, min(2 * h, n))), 1, f"reduce level {j}"))
        return steps

    def _schedule_broadcast(self, n, nbytes):
        return self._bcast(n, nbytes)

    def _schedule_allreduce(self, n, nbytes):
        return self._reduce(n, nbytes) + self._bcast(n, nbytes)

    def _closed_form_broadcast(self, n, s, b, a):
        return cf.tree_broadcast_s(n, s, b, a)

    def _closed_form_allreduce(self, n, s, b, a):
        return cf.tree_allreduce_s(n, s, b, a)


COLLECTIVES.register("tree")(BinomialTree())
