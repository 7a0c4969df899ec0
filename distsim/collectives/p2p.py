"""Point-to-point send."""

from __future__ import annotations

from . import COLLECTIVES
from . import closed_form as cf
from ..errors import ConfigError
from .schedule import Algorithm, Step


class PointToPoint(Algorithm):
    """``send``: rank 0 sends S to rank ``n-1`` (participants ``[src, dst]``): ``T = a + S/B``
    with ``a`` and ``B`` those of the route (latencies summed, slowest link)."""

    name = "p2p"
    ops = ("send",)

    def _schedule_send(self, n, nbytes):
        if n != 2:
            raise ConfigError(f"p2p send takes 2 participants (source, destination), got {n}")
        return [Step(((0, 1, nbytes),), 1, "send")]

    def _closed_form_send(self, n, s, b, a):
        return cf.p2p_send_s(s, b, a)


COLLECTIVES.register("p2p")(PointToPoint())
