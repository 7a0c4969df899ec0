"""Running a :class:`~distsim.collectives.schedule.Schedule` as simpy processes.

Exact mode
----------
One process per rank.  For each step (repeats unrolled) a rank starts all its
sends of the step as transfer processes (:meth:`distsim.network.Network.transfer`)
and waits until they have finished and every transfer of the step addressed to
it has arrived; then it moves to the next step.  Cost: about seven simpy events
per transfer, i.e. ``O(n * steps)`` -- fine for tens to a few hundred ranks.

Symmetric mode
--------------
Each distinct step is simulated once, by one representative transfer that
holds its route's links for ``repeat * d`` where ``d`` is one transfer's
duration.  This gives exactly the exact mode's time when, for every step,

1. every transfer of the step has the same duration ``d`` (same size, same
   route latency and bottleneck bandwidth);
2. no link resource is on the routes of two transfers of the step (so none
   waits for another);
3. every rank that sends in a step took part (sent or received) in the
   previous step; within a repeated step this holds by itself;
4. the collective's links carry no other traffic meanwhile.

Proof sketch: by induction every transfer of step ``k`` starts at
``T_k = d_0 + ... + d_{k-1}``.  A sender of step ``k`` took part in step
``k-1``, whose transfers all started at ``T_{k-1}`` and, by (1) and (2), all
end at ``T_{k-1} + d_{k-1} = T_k``; so it finishes step ``k-1`` and starts
step ``k`` at ``T_k``.  The collective therefore ends at ``sum_k repeat_k d_k``,
which is what the representative transfers take.

Conditions 1-3 are checked (:func:`symmetry_violation`); ``mode="auto"``
picks symmetric mode when they hold and exact mode otherwise.  Condition 4 is
the caller's: inside a larger simulation a symmetric collective occupies only
its representative route, so traffic on its other links is not delayed by it
(use ``mode="exact"`` to see such contention).  Link statistics are recorded
for every link of every step, as if all transfers had run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..network import Network
from ..topology import Topology
from .schedule import Schedule

MODES = ("auto", "exact", "symmetric")


@dataclass(frozen=True, slots=True)
class StepPlan:
    """A step as symmetric mode runs it."""

    src: object
    dst: object
    nbytes: float  # per transfer
    duration_s: float  # per transfer, per repeat
    repeat: int
    count: int  # transfers represented: repeat * transfers per step
    account: tuple  # (link_key, bytes, busy_s) for every link the step uses


def symmetric_plan(schedule: Schedule, participants: list, topology: Topology) -> tuple[list[StepPlan] | None, str]:
    """Plans for symmetric mode, or ``(None, reason)`` naming the violated condition."""
    plans: list[StepPlan] = []
    previous: set | None = None
    for index, step in enumerate(schedule.steps):
        first = None
        used: set = set()
        senders: set = set()
        receivers: set = set()
        account = []
        for src_rank, dst_rank, nbytes in step.transfers:
            src, dst = participants[src_rank], participants[dst_rank]
            path = topology.route(src, dst)
            lat, bw = topology.path_params(path)
            duration = lat + nbytes / bw
            if first is None:
                first = (src, dst, nbytes, duration)
            elif duration != first[3]:
                return None, f"step {index} ({step.label}): transfers of different durations"
            for u, v in zip(path, path[1:]):
                key = topology.link_key(u, v)
                if key in used:
                    return None, f"step {index} ({step.label}): two transfers share link {key[0]}->{key[1]}"
                used.add(key)
                account.append((key, step.repeat * nbytes, step.repeat * duration))
            senders.add(src_rank)
            receivers.add(dst_rank)
        if previous is not None and not senders <= previous:
            return None, f"step {index} ({step.label}): a sender took no part in the previous step"
        previous = senders | receivers
        plans.append(StepPlan(first[0], first[1], first[2], first[3], step.repeat,
                              step.repeat * len(step.transfers), tuple(account)))
    return plans, ""


def symmetry_violation(schedule: Schedule, participants: list, topology: Topology) -> str:
    """Empty if symmetric mode is exact for this schedule, else the reason it is not."""
    return symmetric_plan(schedule, participants, topology)[1]


def resolve_mode(mode: str, schedule: Schedule, participants: list, topology: Topology):
    """``("symmetric", plans)`` or ``("exact", None)`` for a requested ``mode``."""
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r}; accepted: {', '.join(MODES)}")
    if mode == "exact":
        return "exact", None
    plans, reason = symmetric_plan(schedule, participants, topology)
    if plans is None:
        if mode == "symmetric":
            raise ConfigError(f"symmetric mode is not exact for {schedule.algorithm} {schedule.op} on "
                              f"{topology.name}: {reason}")
        return "exact", None
    return "symmetric", plans


def run_symmetric(network: Network, plans: list[StepPlan], tag: str):
    """Process body: each step once, as one representative transfer."""
    for plan in plans:
        yield from network.transfer(plan.src, plan.dst, plan.nbytes, tag=tag, duration_s=plan.repeat * plan.duration_s,
                                    count=plan.count, account=plan.account)


def run_exact(network: Network, schedule: Schedule, participants: list, tag: str):
    """Process body: one process per rank, every transfer simulated."""
    env = network.env
    n = schedule.n
    # per distinct step: each rank's sends and its number of receives
    patterns = []
    for step in schedule.steps:
        sends: list[list] = [[] for _ in range(n)]
        recvs = [0] * n
        for s, d, nb in step.transfers:
            sends[s].append((d, nb))
            recvs[d] += 1
        patterns.append((sends, recvs))
    order = [i for i, step in enumerate(schedule.steps) for _ in range(step.repeat)]
    pending: dict[tuple[int, int], int] = {}
    arrived: dict[tuple[int, int], object] = {}

    def arrival(k: int, rank: int):
        key = (k, rank)
        ev = arrived.get(key)
        if ev is None:
            ev = arrived[key] = env.event()
            pending[key] = patterns[order[k]][1][rank]
        return ev

    def xfer(k: int, src: int, dst: int, nbytes: float):
        yield from network.transfer(participants[src], participants[dst], nbytes, tag=tag)
        ev = arrival(k, dst)
        pending[(k, dst)] -= 1
        if pending[(k, dst)] == 0:
            ev.succeed()

    def rank_proc(rank: int):
        for k, p in enumerate(order):
            sends, recvs = patterns[p]
            waits = [env.process(xfer(k, rank, d, nb)) for d, nb in sends[rank]]
            if recvs[rank]:
                waits.append(arrival(k, rank))
            if len(waits) == 1:
                yield waits[0]
            elif waits:
                yield env.all_of(waits)
            if recvs[rank]:  # consumed: drop it, so that live objects stay O(n), not O(n * steps)
                del arrived[(k, rank)], pending[(k, rank)]

    if order:
        yield env.all_of([env.process(rank_proc(r)) for r in range(n)])
