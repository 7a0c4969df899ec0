"""Running a :class:`~distsim.collectives.schedule.Schedule` over a :class:`~distsim.network.Network`.

Exact mode
----------
Every rank is a small state machine driven by callbacks (no simpy process per
rank or per transfer).  For each step (repeats unrolled) a rank starts all its
sends of the step (:meth:`distsim.network.Network.start`) and waits until they
have ended and every transfer of the step addressed to it has arrived; then it
starts the next step at once.  Transfers that end at the same instant share
one simpy timeout, so an uncontended step of ``n`` transfers is one event;
the cost is a few microseconds of Python per transfer, ``O(n * steps)``
(``benchmarks/bench_collectives.py``: a 1 GB ring all-reduce over 512 ranks,
523,264 transfers, in about 2 s).

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

import numpy as np

from ..errors import ConfigError
from ..network import Network, gc_paused
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
    account: tuple  # (link_ids, bytes, busy_s): what each of those links (topology.link_index) carries


def _first_shared_link(infos) -> tuple[int, tuple] | None:
    """``(transfer index, link key)`` of the first link a transfer shares with an earlier one."""
    used: set = set()
    for i, info in enumerate(infos):
        for key in info[3]:
            if key in used:
                return i, key
        used.update(info[3])
    return None


def symmetric_plan(schedule: Schedule, participants: list, topology: Topology) -> tuple[list[StepPlan] | None, str]:
    """Plans for symmetric mode, or ``(None, reason)`` naming the violated condition.

    A violation found at an earlier transfer of a step is reported first.
    """
    with gc_paused():
        return _symmetric_plan(schedule, participants, topology)


def _symmetric_plan(schedule: Schedule, participants: list, topology: Topology):
    plans: list[StepPlan] = []
    previous: set | None = None
    route_info = topology.route_info
    cached = topology._route_info.get  # route_info's own cache, read inline on this hot path
    star = topology.star_arrays(participants) if len(participants) > 64 else None
    for index, step in enumerate(schedule.steps):
        transfers = step.transfers
        sizes = [t[2] for t in transfers]
        infos = None
        if star is not None:  # every route is (src, hub, dst): the whole step in numpy, same arithmetic
            ranks = np.array([(t[0], t[1]) for t in transfers], dtype=np.intp)
            src, dst = ranks[:, 0], ranks[:, 1]
            lat = star["up_latency_s"][src] + star["down_latency_s"][dst]
            bw = np.minimum(star["up_bandwidth"][src], star["down_bandwidth"][dst])
            durations = (lat + np.array(sizes) / bw).tolist()
            ids_all = np.empty(2 * len(transfers), dtype=np.intp)
            ids_all[0::2], ids_all[1::2] = star["up_id"][src], star["down_id"][dst]
        else:
            infos = [cached((participants[s], participants[d])) or route_info(participants[s], participants[d])
                     for s, d, _ in transfers]
            durations = [info[1] + nb / info[2] for info, nb in zip(infos, sizes)]
            ids_all = np.fromiter((i for info in infos for i in info[4]), dtype=np.intp)
        duration = durations[0]
        uneven = next((i for i, d in enumerate(durations) if d != duration), None)
        shared = None
        if len(np.unique(ids_all)) != len(ids_all):
            if infos is None:
                infos = [route_info(participants[s], participants[d]) for s, d, _ in transfers]
            shared = _first_shared_link(infos)
        if shared is not None and (uneven is None or shared[0] < uneven):
            key = shared[1]
            return None, f"step {index} ({step.label}): two transfers share link {key[0]}->{key[1]}"
        if uneven is not None:
            return None, f"step {index} ({step.label}): transfers of different durations"
        repeat = step.repeat
        if sizes.count(sizes[0]) == len(sizes):  # one account entry for the whole step
            account = ((ids_all, repeat * sizes[0], repeat * duration),)
        else:
            per_transfer = np.split(ids_all, np.cumsum([len(route_info(participants[s], participants[d])[4])
                                                        for s, d, _ in transfers])[:-1])
            account = tuple((ids, repeat * nb, repeat * duration) for ids, nb in zip(per_transfer, sizes))
        senders = {t[0] for t in transfers}
        if previous is not None and not senders <= previous:
            return None, f"step {index} ({step.label}): a sender took no part in the previous step"
        previous = senders | {t[1] for t in transfers}
        first = transfers[0]
        plans.append(StepPlan(participants[first[0]], participants[first[1]], sizes[0], duration, repeat,
                              repeat * len(transfers), account))
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
    """Process body: every transfer simulated; ranks are state machines driven by callbacks.

    Rank ``r`` in step ``k`` (repeats unrolled) has started its sends of the
    step and waits until they have ended and the step's transfers addressed to
    it have arrived; then it starts the next step at once.  Arrivals for a step
    a rank has not reached yet are counted ahead.  When a transfer ends its
    receiver is told first, then its sender.
    """
    env = network.env
    n = schedule.n
    # per distinct step: each rank's sends and its number of receives
    patterns = []
    for step in schedule.steps:
        sends: list[list] = [[] for _ in range(n)]
        recvs = [0] * n
        for s, d, nb in step.transfers:
            route = network.route_of(participants[s], participants[d])
            sends[s].append((route, participants[s], participants[d], float(nb), route[1] + nb / route[2], d))
            recvs[d] += 1
        patterns.append((sends, recvs))
    order = [i for i, step in enumerate(schedule.steps) for _ in range(step.repeat)]
    if not order:
        return
    last = len(order)
    step_of = [-1] * n  # each rank's current step
    waiting_for = [0] * n  # sends and arrivals it still waits for in that step
    ahead: dict[tuple[int, int], int] = {}  # (step, rank) -> arrivals before the rank got there
    finished = env.event()
    left = [n]
    start = network.start_on

    def advance(rank: int) -> None:
        """``rank`` has finished its current step: start the next ones until one must wait."""
        k = step_of[rank] + 1
        while k < last:
            sends, recvs = patterns[order[k]]
            mine = sends[rank]
            need = len(mine) + recvs[rank]
            if ahead:
                need -= ahead.pop((k, rank), 0)
            step_of[rank] = k
            waiting_for[rank] = need
            if need:
                for route, src, dst, nbytes, duration, dst_rank in mine:
                    start(route, src, dst, nbytes, duration, tag, 1, None, ended, (k, rank, dst_rank))
                return
            k += 1
        step_of[rank] = last
        left[0] -= 1
        if not left[0]:
            finished.succeed()

    def ended(arg: tuple) -> None:
        k, src_rank, dst_rank = arg
        if step_of[dst_rank] == k:
            waiting_for[dst_rank] -= 1
            if not waiting_for[dst_rank]:
                advance(dst_rank)
        else:
            ahead[(k, dst_rank)] = ahead.get((k, dst_rank), 0) + 1
        waiting_for[src_rank] -= 1
        if not waiting_for[src_rank]:
            advance(src_rank)

    for rank in range(n):
        advance(rank)
    yield finished
