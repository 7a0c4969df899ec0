"""The discrete-event engine: devices with streams run tasks; collectives run over links.

The planner's seam
------------------
A :class:`Simulator` holds a topology and a list of *tasks*, each added with
the ids of the tasks it depends on (ids of tasks added earlier, so the task
graph is acyclic by construction):

- :meth:`Simulator.add_compute`: a duration on one device's stream;
- :meth:`Simulator.add_collective`: a collective (``allreduce``, ...) by a
  registered algorithm over topology nodes, occupying the given devices'
  streams while it runs;
- :meth:`Simulator.add_send`: a point-to-point transfer.

Each device stream executes its tasks one at a time *in the order they were
added* (as a CUDA stream does): a task starts when it is the stream's next
task and its dependencies are done.  A task on several devices (a collective)
starts when every one of its streams has reached it.  Separate streams on one
device run concurrently, which is how communication overlaps computation:
put collectives on a ``"comm"`` stream (overlap) or on the ``"compute"``
stream (no overlap).  A collective with no device is started as soon as its
dependencies are done.

:func:`distsim.parallel.simulate_plan` builds the tasks of one training step
of any plan (data, layer and embedding-shard parallel) from a
:class:`~distsim.lower.Lowering`; it is the only path from a graph to a
simulated step.

No deadlock: every stream lists its tasks in id order and dependencies point
to lower ids, so the unfinished task with the lowest id can always start.

Determinism: no randomness; ties are broken by simpy's (time, priority,
insertion) order, which follows the order tasks were added, and inside the
network by the rule in :mod:`distsim.network` (transfers ending at one
instant release, then waiters go on, then callbacks run in start order).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Hashable, Iterable

from .collectives import get_algorithm
from .collectives.executor import resolve_mode, run_exact, run_symmetric
from .collectives.schedule import Schedule
from .errors import ConfigError, DistsimError, require_positive
from .network import CountingEnvironment, Network, gc_paused
from .result import Result, build_frames
from .topology import Topology

KINDS = ("compute", "collective", "send")


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of work (see :class:`Simulator`); built by the ``add_*`` methods."""

    id: int
    name: str
    kind: str
    devices: tuple
    stream: str
    deps: tuple[int, ...]
    duration_s: float = 0.0
    schedule: Schedule | None = None
    participants: tuple | None = None
    mode: str = "auto"  # resolved: "exact" or "symmetric"
    plans: tuple | None = None  # symmetric mode's step plans
    layer: str = ""
    phase: str = ""


class Simulator:
    """Tasks on device streams and over a topology; :meth:`run` returns a :class:`~distsim.result.Result`.

    Parameters
    ----------
    topology : Topology, optional
        Needed for collectives and sends.
    compute_streams : tuple of str
        Stream names counted as compute in the step-time breakdown.

    Examples
    --------
    >>> from distsim.topology import build_topology
    >>> sim = Simulator(build_topology("ring", 4, bandwidth_bytes_per_s=1e9, latency_s=0.0))
    >>> a = sim.add_compute(0, "fwd", 1.0)
    >>> b = sim.add_collective("grad", "allreduce", 4e9, devices=[0], deps=[a])
    >>> sim.run().step_time_s    # 1 s + 2 * 3/4 * 4e9 / 1e9 s
    7.0
    """

    def __init__(self, topology: Topology | None = None, *, compute_streams: tuple[str, ...] = ("compute",)):
        self.topology = topology
        self.compute_streams = tuple(compute_streams)
        self.tasks: list[Task] = []

    # ---- building ---------------------------------------------------------
    def _deps(self, deps: Iterable[int]) -> tuple[int, ...]:
        out = []
        for d in deps:
            if not isinstance(d, int) or not 0 <= d < len(self.tasks):
                raise ConfigError(f"dependency {d!r} is not the id of a task added before (0..{len(self.tasks) - 1})")
            out.append(d)
        return tuple(dict.fromkeys(out))

    def _add(self, **fields) -> int:
        task = Task(id=len(self.tasks), **fields)
        self.tasks.append(task)
        return task.id

    def add_compute(self, device: Hashable, name: str, duration_s: float, *, deps: Iterable[int] = (),
                    stream: str = "compute", layer: str = "", phase: str = "") -> int:
        """A task that keeps ``device``'s ``stream`` busy for ``duration_s`` seconds; returns its id."""
        duration = require_positive(f"duration_s of {name}", duration_s, allow_zero=True)
        return self._add(name=name, kind="compute", devices=(device,), stream=stream, deps=self._deps(deps),
                         duration_s=duration, layer=layer, phase=phase)

    def _need_topology(self, what: str) -> Topology:
        if self.topology is None:
            raise ConfigError(f"{what} needs a topology; pass Simulator(topology)")
        return self.topology

    def add_collective(self, name: str, op: str, nbytes: float, *, participants: int | Iterable | None = None,
                       algorithm: str = "ring", devices: Iterable[Hashable] = (), deps: Iterable[int] = (),
                       stream: str = "comm", mode: str = "auto", layer: str = "", phase: str = "",
                       **options) -> int:
        """A collective ``op`` of ``nbytes`` by ``algorithm`` over topology nodes; returns its id.

        Parameters
        ----------
        participants : int, list of nodes or None
            Ranks in order: the first ``n`` accelerators, the given nodes, or all.
        devices : iterable
            Device streams (``stream``) the collective occupies while it runs;
            empty for a free-standing collective.
        mode : {"auto", "exact", "symmetric"}
            See :mod:`distsim.collectives.executor`.
        **options
            Algorithm options (``chunks``, ``local_size``).
        """
        topo = self._need_topology("a collective")
        parts = topo.participants(participants)
        schedule = get_algorithm(algorithm).schedule(op, len(parts), nbytes, **options)
        mode, plans = resolve_mode(mode, schedule, parts, topo)
        return self._add(name=name, kind="collective", devices=tuple(dict.fromkeys(devices)), stream=stream,
                         deps=self._deps(deps), schedule=schedule, participants=tuple(parts), mode=mode,
                         plans=None if plans is None else tuple(plans), layer=layer, phase=phase)

    def add_send(self, name: str, src: Hashable, dst: Hashable, nbytes: float, *, devices: Iterable[Hashable] = (),
                 deps: Iterable[int] = (), stream: str = "comm", layer: str = "", phase: str = "") -> int:
        """A point-to-point transfer of ``nbytes`` from node ``src`` to node ``dst``; returns its id."""
        return self.add_collective(name, "send", nbytes, participants=[src, dst], algorithm="p2p", devices=devices,
                                   deps=deps, stream=stream, layer=layer, phase=phase)

    # ---- running ----------------------------------------------------------
    def run(self) -> Result:
        """Simulate every task once; deterministic."""
        wall0 = time.perf_counter()
        env = CountingEnvironment()
        net = Network(env, self.topology) if self.topology is not None else None
        tasks = self.tasks
        done = [env.event() for _ in tasks]
        op_rows: list[tuple] = []
        modes: dict[str, str] = {}
        streams: dict[tuple, list[int]] = {}
        for t in tasks:
            for d in t.devices:
                streams.setdefault((d, t.stream), []).append(t.id)
        arrivals = [0] * len(tasks)

        def body(task: Task):
            if task.kind == "compute":
                yield env.timeout(task.duration_s)
                return
            modes[task.name] = task.mode
            if task.mode == "symmetric":
                yield from run_symmetric(net, task.plans, task.name)
            else:
                yield from run_exact(net, task.schedule, list(task.participants), task.name)

        def execute(task: Task):
            start = env.now
            yield from body(task)
            end = env.now
            for d in task.devices or (None,):
                op_rows.append((task.id, task.name, task.kind, d, task.stream,
                                start, end, end - start, task.layer, task.phase))
            done[task.id].succeed()

        def wait_deps(task: Task):
            pending = [done[d] for d in task.deps if not done[d].processed]
            if len(pending) == 1:
                yield pending[0]
            elif pending:
                yield env.all_of(pending)

        def stream_proc(ids: list[int]):
            for tid in ids:
                task = tasks[tid]
                yield from wait_deps(task)
                if len(task.devices) == 1:
                    yield from execute(task)
                else:
                    arrivals[tid] += 1
                    if arrivals[tid] == len(task.devices):
                        env.process(execute(task))
                    yield done[tid]

        def free_proc(task: Task):
            yield from wait_deps(task)
            yield from execute(task)

        for ids in streams.values():
            env.process(stream_proc(ids))
        for t in tasks:
            if not t.devices:
                env.process(free_proc(t))
        with gc_paused():
            env.run()
        # Cannot happen: streams list tasks in id order and deps point to lower ids, so the
        # lowest unfinished task can always start.  Kept as a guard for future task kinds.
        stuck = [t.name for t in tasks if not done[t.id].processed]
        if stuck:
            raise DistsimError(f"{len(stuck)} tasks never ran (stream order contradicts dependencies), "
                               f"first: {stuck[0]!r}")
        step = env.now
        ops, transfers, links, devices = build_frames(
            op_rows, net.transfer_frame() if net else [], net.link_bytes if net else {}, net.link_busy_s if net else {},
            self.topology, step, list(streams))
        return Result(step_time_s=step, ops=ops, transfers=transfers, links=links, devices=devices,
                      events=env.events_processed, wall_s=time.perf_counter() - wall0,
                      compute_streams=self.compute_streams, link_spans=net.link_spans if net else [],
                      modes=modes)


def simulate_collective(op: str, nbytes: float, topology: Topology, *, algorithm: str = "ring",
                        participants: int | Iterable | None = None, mode: str = "auto", **options) -> Result:
    """One free-standing collective on an otherwise idle topology.

    Examples
    --------
    >>> from distsim.topology import build_topology
    >>> topo = build_topology("ring", 8, bandwidth_bytes_per_s=56e9, latency_s=1e-6)
    >>> r = simulate_collective("allreduce", 1e9, topo)
    >>> round(r.step_time_s, 9)    # 2*7*1e-6 + 2*7/8 * 1e9/56e9
    0.031264
    """
    sim = Simulator(topology)
    sim.add_collective(op, op, nbytes, participants=participants, algorithm=algorithm, mode=mode, **options)
    return sim.run()


__all__ = ["Simulator", "Task", "simulate_collective"]
