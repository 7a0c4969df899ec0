"""Ring collectives (Patarasuk & Yuan 2009): neighbours exchange 1/n of the buffer per step."""

from __future__ import annotations

from . import COLLECTIVES
from . import closed_form as cf
from ..errors import require_positive_int
from .schedule import Algorithm, Step


class Ring(Algorithm):
    """Rank ``i`` sends to ``i+1 mod n``.

    - allreduce: reduce-scatter then all-gather, ``2(n-1)`` steps of ``S/n``:
      ``T = 2(n-1) a + 2(n-1)/n S/B``;
    - allgather, reducescatter: ``n-1`` steps of ``S/n``: ``T = (n-1) a + (n-1)/n S/B``;
    - broadcast (root 0): a pipelined chain of ``chunks`` pieces of ``S/P``,
      ``n-2+P`` steps: ``T = (n-2+P)(a + S/(P B))``.

    All ``2(n-1)`` all-reduce steps are the same pattern (every rank sends S/n
    to its successor), so the schedule is one Step repeated: symmetric mode
    simulates it once.
    """

    name = "ring"
    ops = ("allreduce", "allgather", "reducescatter", "broadcast")

    @staticmethod
    def _around(n: int, size: float) -> tuple:
        return tuple((i, (i + 1) % n, size) for i in range(n))

    def _schedule_allreduce(self, n, nbytes):
        return [Step(self._around(n, nbytes / n), 2 * (n - 1), "reduce-scatter+all-gather")]

    def _schedule_allgather(self, n, nbytes):
        return [Step(self._around(n, nbytes / n), n - 1, "all-gather")]

    def _schedule_reducescatter(self, n, nbytes):
        return [Step(self._around(n, nbytes / n), n - 1, "reduce-scatter")]

    def _schedule_broadcast(self, n, nbytes, chunks: int = 1):
        p = require_positive_int("chunks", chunks)
        piece = nbytes / p
        steps = []
        for k in range(n - 2 + p):
            lo, hi = max(0, k - p + 1), min(k, n - 2)
            steps.append(Step(tuple((i, i + 1, piece) for i in range(lo, hi + 1)), 1, f"chain step {k}"))
        return steps

    def _closed_form_allreduce(self, n, s, b, a):
        return cf.ring_allreduce_s(n, s, b, a)

    def _closed_form_allgather(self, n, s, b, a):
        return cf.ring_allgather_s(n, s, b, a)

    def _closed_form_reducescatter(self, n, s, b, a):
        return cf.ring_reducescatter_s(n, s, b, a)

    def _closed_form_broadcast(self, n, s, b, a, chunks: int = 1):
        return cf.ring_broadcast_s(n, s, b, a, require_positive_int("chunks", chunks))


COLLECTIVES.register("ring")(Ring())
