"""Schedules: a collective as steps of point-to-point transfers between ranks."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError, require_positive, require_positive_int


@dataclass(frozen=True, slots=True)
class Step:
    """One communication step, done ``repeat`` times in a row.

    ``transfers`` are ``(src_rank, dst_rank, nbytes)``.  Within a step every
    rank first finishes its sends and receives of the previous step (the data
    it forwards arrived there), then starts all its sends of this step.
    """

    transfers: tuple[tuple[int, int, float], ...]
    repeat: int = 1
    label: str = ""


@dataclass(frozen=True)
class Schedule:
    """The steps of one collective over ``n`` ranks moving ``nbytes`` (see package doc)."""

    op: str
    algorithm: str
    n: int
    nbytes: float
    steps: tuple[Step, ...]

    @property
    def step_count(self) -> int:
        return sum(s.repeat for s in self.steps)

    @property
    def transfer_count(self) -> int:
        return sum(s.repeat * len(s.transfers) for s in self.steps)

    @property
    def total_bytes(self) -> float:
        """Bytes all transfers carry (each counted once, not per hop)."""
        return sum(s.repeat * sum(t[2] for t in s.transfers) for s in self.steps)


class Algorithm:
    """Base of a registered collective algorithm.

    Subclasses set ``name`` and ``ops`` and implement ``_schedule_<op>`` and
    ``_closed_form_<op>``; options (``chunks``, ``local_size``, ...) are keyword
    arguments of both.
    """

    name: str = ""
    ops: tuple[str, ...] = ()

    def _check(self, op: str, n, nbytes) -> tuple[int, float]:
        if op not in self.ops:
            raise ConfigError(f"algorithm {self.name!r} does not implement {op!r}; it implements: {', '.join(self.ops)}")
        return require_positive_int("nodes", n), require_positive("bytes", nbytes)

    def schedule(self, op: str, n: int, nbytes: float, **options) -> Schedule:
        n, nbytes = self._check(op, n, nbytes)
        steps = getattr(self, f"_schedule_{op}")(n, nbytes, **options) if n > 1 else ()
        return Schedule(op, self.name, n, nbytes, tuple(s for s in steps if s.transfers and s.repeat > 0))

    def closed_form_s(self, op: str, n: int, nbytes: float, *, bandwidth_bytes_per_s: float, latency_s: float,
                      **options) -> float:
        """Uncontended alpha-beta time in seconds; ``latency_s`` is one transfer's route latency."""
        n, nbytes = self._check(op, n, nbytes)
        bw = require_positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
        lat = require_positive("latency_s", latency_s, allow_zero=True)
        if n == 1:
            return 0.0
        return float(getattr(self, f"_closed_form_{op}")(n, nbytes, bw, lat, **options))


def log2_exact(n: int, who: str) -> int:
    """log2(n) for a power of two, else ConfigError naming ``who``."""
    if n & (n - 1):
        raise ConfigError(f"{who} needs a power-of-two number of nodes, got {n}")
    return n.bit_length() - 1


def ceil_log2(n: int) -> int:
    return (n - 1).bit_length()
