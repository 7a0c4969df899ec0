"""Links as simpy resources and transfers as simpy processes: the seam to the topology.

Link model (alpha-beta, circuit switched)
-----------------------------------------
A transfer of ``nbytes`` from ``src`` to ``dst`` takes the topology's route
(shortest path by hops) and acquires every link resource on it, in a global
order (so two transfers can never deadlock), then holds them all for

    duration = sum(latency_s over the path) + nbytes / min(bandwidth over the path)

and releases them.  Each link resource has capacity 1 and serves waiting
transfers first come, first served (simpy's insertion order breaks ties), so
transfers that share a link contend: the later one waits.  With full-duplex
links (the default) each direction is its own resource.

Everything that happens is appended as plain tuples to lists on the
:class:`Network`; :mod:`distsim.result` turns them into DataFrames once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import simpy

from .topology import Topology


class CountingEnvironment(simpy.Environment):
    """A simpy Environment that counts the events it processes (``events_processed``)."""

    def __init__(self, initial_time: float = 0):
        super().__init__(initial_time)
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


class Network:
    """Link resources of a topology inside one simpy environment.

    Attributes
    ----------
    transfers : list of tuple
        ``(tag, src, dst, nbytes, count, start_s, end_s, hops)`` per simulated
        transfer.  ``count`` is how many identical transfers the row stands
        for (more than 1 only in symmetric mode; see
        :mod:`distsim.collectives.executor`); ``nbytes`` is per transfer.
    link_bytes, link_busy_s : dict
        Bytes carried and time held, per link resource key.
    link_spans : list of tuple
        ``(link_key, start_s, end_s, tag)``, one per transfer per link (the
        representative route only, in symmetric mode), for the trace.
    """

    def __init__(self, env: simpy.Environment, topology: Topology):
        self.env = env
        self.topology = topology
        self._resources: dict[tuple, simpy.Resource] = {}
        self.transfers: list[tuple] = []
        self.link_bytes: dict[tuple, float] = defaultdict(float)
        self.link_busy_s: dict[tuple, float] = defaultdict(float)
        self.link_spans: list[tuple] = []

    def resource(self, key: tuple) -> simpy.Resource:
        res = self._resources.get(key)
        if res is None:
            res = self._resources[key] = simpy.Resource(self.env, capacity=1)
        return res

    def path_links(self, path) -> list[tuple]:
        """Link resource keys of a path, in the global acquisition order."""
        topo = self.topology
        keys = {topo.link_key(u, v) for u, v in zip(path, path[1:])}
        return sorted(keys, key=topo.link_order)

    def transfer(self, src, dst, nbytes: float, *, tag: str = "", duration_s: float | None = None,
                 count: int = 1, account: Iterable[tuple[tuple, float, float]] | None = None):
        """Process body: send ``nbytes`` from ``src`` to ``dst`` (``yield from`` it).

        Parameters
        ----------
        duration_s : float, optional
            Hold the route's links this long instead of the alpha-beta time
            (symmetric mode holds a repeated step's links once for all repeats).
        count : int
            How many identical transfers this one stands for (recorded only).
        account : iterable of (link_key, bytes, busy_s), optional
            Link statistics to record instead of this transfer's own route
            (symmetric mode records every link its step uses).
        """
        topo = self.topology
        path = topo.route(src, dst)
        if duration_s is None:
            lat, bw = topo.path_params(path)
            duration_s = lat + nbytes / bw
        links = self.path_links(path)
        env = self.env
        requests = []
        for key in links:
            req = self.resource(key).request()
            requests.append((key, req))
            yield req
        start = env.now
        yield env.timeout(duration_s)
        end = env.now
        for key, req in requests:
            self._resources[key].release(req)
            self.link_spans.append((key, start, end, tag))
        if account is None:
            for key in links:
                self.link_bytes[key] += nbytes
                self.link_busy_s[key] += duration_s
        else:
            for key, nb, busy in account:
                self.link_bytes[key] += nb
                self.link_busy_s[key] += busy
        self.transfers.append((tag, src, dst, float(nbytes), int(count), start, end, len(path) - 1))
