"""Links and transfers inside a simpy environment: the seam to the topology.

Link model (alpha-beta, circuit switched)
-----------------------------------------
A transfer of ``nbytes`` from ``src`` to ``dst`` takes the topology's route
(shortest path by hops) and acquires every link resource on it, one after the
other in a global order (so two transfers can never deadlock), holding those
it has while it waits for the next; then it holds them all for

    duration = sum(latency_s over the path) + nbytes / min(bandwidth over the path)

and releases them.  Each link serves one transfer at a time and its waiting
transfers first come, first served, so transfers that share a link contend:
the later one waits.  With full-duplex links (the default) each direction is
its own resource.

Engine
------
Transfers are callbacks, not simpy processes: a link is a flag and a FIFO
queue, a transfer that finds its links free starts at once, and every
transfer ending at the same instant shares one simpy timeout.  At an instant
where transfers end, all of them first release their links (each freed link
goes to its first waiter), then the waiters granted a link go on acquiring
theirs, in grant order, then the ``on_done`` callbacks run in the order the
transfers started (and may start new transfers).  So an uncontended
collective step costs one event however many transfers it has.

Everything that happens is appended as plain tuples to lists on the
:class:`Network`; :mod:`distsim.result` turns them into DataFrames once.
"""

from __future__ import annotations

import gc
from collections import defaultdict, deque
from contextlib import contextmanager

import numpy as np
import pandas as pd
import simpy

from .topology import Topology


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector inside the block.

    The engine's hot loops allocate millions of small long-lived tuples (routes,
    transfer rows) and no reference cycles; each allocation burst would otherwise
    trigger full collections that scan every live object again and free nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class CountingEnvironment(simpy.Environment):
    """A simpy Environment that counts the events it processes (``events_processed``).

    A timeout that ends ``k`` transfers at once (see :class:`Network`) counts
    as ``k`` events: the count is that of the events simulated, whatever the
    batching, so exact mode counts one per transfer end.
    """

    def __init__(self, initial_time: float = 0):
        super().__init__(initial_time)
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


class LinkSpans:
    """Iterable of ``(link_key, start_s, end_s, tag)`` per transfer per link, made when iterated."""

    def __init__(self, columns: tuple, span_keys: list):
        self._columns, self._span_keys = columns, span_keys

    def __iter__(self):
        tags, starts, ends = self._columns[0], self._columns[5], self._columns[6]
        for tag, start, end, keys in zip(tags, starts, ends, self._span_keys):
            for key in keys:
                yield (key, start, end, tag)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._span_keys)


#: Fields of a transfer record (the columns of :attr:`distsim.result.Result.transfers`).
TRANSFER_FIELDS = ("tag", "src", "dst", "nbytes", "count", "start_s", "end_s", "hops")
_NUMERIC_FIELDS = {"nbytes", "count", "start_s", "end_s", "hops"}

# A transfer in flight is a list (cheaper than an object on this hot path); its fields:
_KEYS, _HELD, _SRC, _DST, _NBYTES, _TAG, _DURATION, _COUNT, _ACCOUNT, _HOPS, _START, _ON_DONE, _ARG, _IDS = range(14)


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
        self._columns: tuple[list, ...] = tuple([] for _ in TRANSFER_FIELDS)  # the transfers, column by column
        index = topology.link_index()
        self._link_keys = list(index)  # link number -> key
        self._bytes = np.zeros(len(index))  # per link number, accumulated in event order (np.add.at)
        self._busy = np.zeros(len(index))
        self._touched = np.zeros(len(index), dtype=bool)
        self._span_keys: list[tuple] = []  # link keys of each row of transfers
        self._held: set = set()  # link keys in use
        self._waiting: dict[tuple, deque] = {}  # link key -> transfers waiting for it, in arrival order
        self._due: dict[float, list] = {}  # end time -> transfers ending then, in start order
        self._routes: dict[tuple, tuple] = {}  # (src, dst) -> (keys, latency, bandwidth, hops, link numbers)
        self._counting = isinstance(env, CountingEnvironment)

    def _link_dict(self, values: np.ndarray) -> dict[tuple, float]:
        keys = self._link_keys
        out: dict[tuple, float] = defaultdict(float)
        for i in np.flatnonzero(self._touched).tolist():
            out[keys[i]] = float(values[i])
        return out

    @property
    def link_bytes(self) -> dict[tuple, float]:
        """Bytes carried per link resource key (links that carried traffic; a new dict each time)."""
        return self._link_dict(self._bytes)

    @property
    def link_busy_s(self) -> dict[tuple, float]:
        """Seconds held per link resource key (links that carried traffic; a new dict each time)."""
        return self._link_dict(self._busy)

    @property
    def link_spans(self) -> "LinkSpans":
        """``(link_key, start_s, end_s, tag)`` per transfer per link of its route (an iterable built on demand)."""
        return LinkSpans(self._columns, self._span_keys)

    @property
    def transfers(self) -> list[tuple]:
        """``(tag, src, dst, nbytes, count, start_s, end_s, hops)`` per transfer (a new list each time)."""
        return list(zip(*self._columns))

    def transfer_frame(self) -> pd.DataFrame:
        """The transfers as a DataFrame with columns :data:`TRANSFER_FIELDS` (numeric ones from arrays)."""
        cols = self._columns
        if not cols[0]:
            return pd.DataFrame([], columns=list(TRANSFER_FIELDS))
        return pd.DataFrame({name: (np.array(col) if name in _NUMERIC_FIELDS else col)
                             for name, col in zip(TRANSFER_FIELDS, cols)})

    def path_links(self, path) -> list[tuple]:
        """Link resource keys of a path, in the global acquisition order."""
        topo = self.topology
        keys = {topo.link_key(u, v) for u, v in zip(path, path[1:])}
        return sorted(keys, key=topo.link_order)

    def _route(self, src, dst) -> tuple:
        route = self._routes.get((src, dst))
        if route is None:
            path, lat, bw, _, _ = self.topology.route_info(src, dst)
            keys = tuple(self.path_links(path))
            index = self.topology.link_index()
            route = self._routes[(src, dst)] = (keys, lat, bw, len(path) - 1, tuple([index[k] for k in keys]))
        return route

    def start(self, src, dst, nbytes: float, on_done, arg=None, *, tag: str = "", duration_s: float | None = None,
              count: int = 1, account=None) -> None:
        """Start a transfer now; ``on_done(arg)`` is called when it has ended (see module doc).

        Parameters
        ----------
        duration_s : float, optional
            Hold the route's links this long instead of the alpha-beta time
            (symmetric mode holds a repeated step's links once for all repeats).
        count : int
            How many identical transfers this one stands for (recorded only).
        account : iterable of (link_ids, bytes, busy_s), optional
            Link statistics to record instead of this transfer's own route
            (symmetric mode records every link its step uses); ``link_ids``
            number links as :meth:`Topology.link_index` does.
        """
        route = self._routes.get((src, dst)) or self._route(src, dst)
        if duration_s is None:
            duration_s = route[1] + nbytes / route[2]
        self.start_on(route, src, dst, float(nbytes), duration_s, tag, int(count), account, on_done, arg)

    def route_of(self, src, dst) -> tuple:
        """``(link keys in acquisition order, latency_s, bandwidth_bytes_per_s, hops, link numbers)``, cached."""
        return self._routes.get((src, dst)) or self._route(src, dst)

    def start_on(self, route: tuple, src, dst, nbytes: float, duration_s: float, tag: str, count: int, account,
                 on_done, arg) -> None:
        """:meth:`start` with everything resolved (``route`` from :meth:`route_of`): the hot path."""
        keys = route[0]
        held = self._held
        if held.isdisjoint(keys):  # the common case: every link free, start now (as _begin does)
            held.update(keys)
            env = self.env
            now = env._now
            end = now + duration_s
            tr = [keys, len(keys), src, dst, nbytes, tag, duration_s, count, account, route[3], now, on_done, arg,
                  route[4]]
            batch = self._due.get(end)
            if batch is None:
                self._due[end] = [tr]
                env.timeout(duration_s).callbacks.append(lambda _event, end=end: self._end(end))
            else:
                batch.append(tr)
        else:
            self._acquire([keys, 0, src, dst, nbytes, tag, duration_s, count, account, route[3], 0.0, on_done, arg,
                           route[4]])

    def _acquire(self, tr: list) -> None:
        """Take ``tr``'s links from ``tr[_HELD]`` on; queue at the first busy one, else begin."""
        keys, held = tr[_KEYS], self._held
        i = tr[_HELD]
        while i < len(keys):
            key = keys[i]
            if key in held:
                tr[_HELD] = i
                queue = self._waiting.get(key)
                if queue is None:
                    queue = self._waiting[key] = deque()
                queue.append(tr)
                return
            held.add(key)
            i += 1
        tr[_HELD] = i
        self._begin(tr)

    def _begin(self, tr: list) -> None:
        """``tr`` holds its whole route: it ends ``duration`` from now (one timeout per end time)."""
        env = self.env
        tr[_START] = now = env._now
        duration = tr[_DURATION]
        end = now + duration
        batch = self._due.get(end)
        if batch is None:
            self._due[end] = [tr]
            env.timeout(duration).callbacks.append(lambda _event, end=end: self._end(end))
        else:
            batch.append(tr)

    def _end(self, end: float) -> None:
        """Transfers ending now: release links and record, let granted waiters go on, call back."""
        batch = self._due.pop(end)
        if self._counting:
            self.env.events_processed += len(batch) - 1
        held, waiting = self._held, self._waiting
        granted = []
        span_keys = self._span_keys
        tags, srcs, dsts, sizes, counts, starts, ends, hops = (col.append for col in self._columns)
        ids, nbs, busys = [], [], []  # link bookkeeping of the batch, applied in order by np.add.at
        for tr in batch:
            keys, nbytes, account = tr[_KEYS], tr[_NBYTES], tr[_ACCOUNT]
            if waiting:
                for key in keys:
                    queue = waiting.get(key)
                    if queue:
                        nxt = queue.popleft()
                        nxt[_HELD] += 1  # the link passes straight to the first waiter
                        granted.append(nxt)
                        if not queue:
                            del waiting[key]
                    else:
                        held.discard(key)
            else:
                held.difference_update(keys)
            if account is None:
                link_ids = tr[_IDS]
                if len(link_ids) == 1:
                    ids.append(link_ids[0])
                    nbs.append(nbytes)
                    busys.append(tr[_DURATION])
                else:
                    ids.extend(link_ids)
                    nbs.extend([nbytes] * len(link_ids))
                    busys.extend([tr[_DURATION]] * len(link_ids))
            else:
                self._account(ids, nbs, busys)
                ids, nbs, busys = [], [], []
                for link_ids, nb, busy in account:
                    self._account(link_ids, nb, busy)
            tags(tr[_TAG])
            srcs(tr[_SRC])
            dsts(tr[_DST])
            sizes(nbytes)
            counts(tr[_COUNT])
            starts(tr[_START])
            ends(end)
            hops(tr[_HOPS])
            span_keys.append(keys)
        self._account(ids, nbs, busys)
        for tr in granted:
            self._acquire(tr)
        for tr in batch:
            tr[_ON_DONE](tr[_ARG])

    def _account(self, link_ids, nbytes, busy_s) -> None:
        """Add bytes and busy time to links, one after the other in order (repeats accumulate)."""
        if len(link_ids):
            np.add.at(self._bytes, link_ids, nbytes)
            np.add.at(self._busy, link_ids, busy_s)
            self._touched[link_ids] = True

    def transfer(self, src, dst, nbytes: float, *, tag: str = "", duration_s: float | None = None,
                 count: int = 1, account=None):
        """Process body: send ``nbytes`` from ``src`` to ``dst`` (``yield from`` it); see :meth:`start`."""
        done = self.env.event()
        self.start(src, dst, nbytes, done.succeed, None, tag=tag, duration_s=duration_s, count=count, account=account)
        yield done
