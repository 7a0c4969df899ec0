"""What evaluations of many plans of one graph share, computed once per graph.

A plan search evaluates thousands of plans of the same graph on the same
device.  Much of an evaluation depends only on the graph (and the device):
the fused graph of ``fuse_accumulation``, the op times of a cost model, the
memory-greedy order of a stage's ops and the sequence of allocations and
frees of a traversal.  This module keeps them per graph (a weak reference: a
graph no longer used takes its entries with it), so that every caller --
:func:`distsim.evaluate.evaluate_plan`, the memory check, the search -- gets
the same values as computed afresh, only once.

Exactness
    Every cached value is what the uncached function returns for the same
    arguments.  :class:`StageTrace` replays :func:`distsim.memory.stage_peak`:
    the traversal's allocations and frees (which tensor, in which category,
    when) do not depend on tensor sizes, only the sizes do, so the trace is
    recorded once per (stage ops, order) and replayed for any row fractions
    of a sharded table with the same floating-point additions in the same
    order (``numpy.cumsum`` adds sequentially), giving bit-identical peaks.
    ``tests/test_evalcache.py`` compares both on every stage of many plans.
"""

from __future__ import annotations

import weakref
from typing import Callable, Hashable

import numpy as np

from .graph import Graph

_CACHES: "weakref.WeakKeyDictionary[Graph, dict]" = weakref.WeakKeyDictionary()


def cached(graph: Graph, key: Hashable, compute: Callable[[], object]):
    """``compute()`` the first time ``key`` is asked of ``graph``, the stored value after.

    Values are shared: callers must not modify them.
    """
    store = _CACHES.get(graph)
    if store is None:
        store = _CACHES[graph] = {}
    try:
        return store[key]
    except KeyError:
        value = store[key] = compute()
        return value


def clear(graph: Graph | None = None) -> None:
    """Forget what was computed for ``graph`` (default: for every graph)."""
    if graph is None:
        _CACHES.clear()
    else:
        _CACHES.pop(graph, None)


def fused(graph: Graph) -> Graph:
    """:func:`distsim.transforms.fuse_gradient_accumulation` of ``graph``, built once."""
    from .transforms import fuse_gradient_accumulation

    return cached(graph, "fused", lambda: fuse_gradient_accumulation(graph))


def op_times(graph: Graph, device, model: str) -> np.ndarray:
    """:func:`distsim.costmodels.op_times_s` of ``graph`` on ``device`` under ``model`` (read-only array, seconds)."""
    from .costmodels import op_times_s

    def compute():
        times = np.asarray(op_times_s(graph, device, model), dtype=float)
        times.setflags(write=False)
        return times

    return cached(graph, ("op_times", device, model), compute)


def greedy_order(graph: Graph, ops: tuple[int, ...]) -> list[int]:
    """:func:`distsim.graph.greedy_order` of a stage's ``ops``, computed once per op set."""
    from .graph import greedy_order as compute

    return cached(graph, ("greedy_order", ops), lambda: compute(graph, list(ops)))


def gradient_tensors(graph: Graph) -> frozenset[str]:
    """:func:`distsim.memory.gradient_tensors` of ``graph``, computed once."""
    from .memory import gradient_tensors as compute

    return cached(graph, "gradient_tensors", lambda: frozenset(compute(graph)))


def stage_memory(graph: Graph, ops: tuple[int, ...], scale: dict[str, float]) -> tuple[float, dict]:
    """Peak live bytes of a stage's ``ops`` and the bytes per category then: the lower of build order and the
    memory-greedy order, as :func:`distsim.memory.memory_check` takes it (gradients counted as such)."""
    key = ("stage_memory", ops, tuple(sorted(scale.items())))
    store = _CACHES.get(graph)
    if store is not None and key in store:
        return store[key]

    def compute():
        best = None
        for kind in ("build", "greedy"):
            peak, cats = stage_trace(graph, ops, kind).peak(scale)
            if best is None or peak < best[0]:
                best = (peak, cats)
        return best

    return cached(graph, key, compute)


def tensor_info(graph: Graph) -> dict[str, tuple[int, int, bool]]:
    """Tensor name -> (bytes, index of its memory category in :data:`distsim.memory.CATEGORIES`, resident)."""
    from .memory import _KIND_CATEGORY, CATEGORIES

    def compute():
        return {name: (t.nbytes, CATEGORIES.index(_KIND_CATEGORY[t.kind]), t.kind.resident)
                for name, t in graph.tensors.items()}

    return cached(graph, "tensor_info", compute)


def stage_trace(graph: Graph, ops: tuple[int, ...], order: str) -> "StageTrace":
    """The recorded traversal of ``ops`` in build (``"build"``) or memory-greedy (``"greedy"``) order."""

    def compute():
        sequence = list(ops) if order == "build" else greedy_order(graph, ops)
        return StageTrace(graph, list(ops), sequence, gradient_tensors(graph))

    return cached(graph, ("stage_trace", ops, order), compute)


class StageTrace:
    """The allocations and frees of one stage's traversal, replayed for any tensor scale.

    Mirrors :func:`distsim.memory.stage_peak` step by step; :meth:`peak`
    returns what it returns for the same ``scale``, bit for bit.
    """

    def __init__(self, graph: Graph, ops: list[int], order: list[int], gradients: frozenset[str]):
        from .memory import CATEGORIES

        info = tensor_info(graph)
        consumers: dict[str, int] = {}
        for i in ops:
            for t in graph.ops[i].inputs:
                consumers[t] = consumers.get(t, 0) + 1
        names = list(consumers)
        for i in ops:
            names += [t for t in graph.ops[i].outputs if t not in consumers]
        index = {t: k for k, t in enumerate(dict.fromkeys(names))}
        self.names = list(index)
        self.nbytes = np.array([float(info[t][0]) for t in self.names])
        gradient_category = CATEGORIES.index("gradients")
        resident = {t for t in consumers if info[t][2]}  # the set stage_peak builds, iterated in the same order
        self.resident = [(index[t], info[t][1]) for t in resident]
        present: set[str] = set(resident)
        remaining = dict(consumers)
        events: list[tuple[int, int, int]] = []  # (tensor index, +1 or -1, category)
        checks: list[int] = []  # number of events applied when the peak is looked at
        plus, minus = {}, {}
        for t, k in index.items():
            c = gradient_category if t in gradients else info[t][1]
            plus[t], minus[t] = (k, 1, c), (k, -1, c)
        emit = events.append
        ops_of = graph.ops
        for i in order:
            op = ops_of[i]
            inputs = op.inputs
            for t in inputs:
                if t not in present:
                    present.add(t)
                    emit(plus[t])
            for t in op.outputs:
                emit(plus[t])
                present.add(t)
            if op.inplace and inputs[0] in present and remaining[inputs[0]] == 1:
                emit(minus[inputs[0]])
                present.discard(inputs[0])
                remaining[inputs[0]] = 0
            checks.append(len(events))
            for t in inputs:
                if remaining.get(t, 0) == 0:
                    continue
                remaining[t] -= 1
                if remaining[t] == 0 and t not in resident and t in present:
                    present.discard(t)
                    emit(minus[t])
            for t in op.outputs:
                if consumers.get(t, 0) == 0 and t in present:
                    present.discard(t)
                    emit(minus[t])
        ev = np.array(events, dtype=np.int64).reshape(-1, 3)
        self.event_tensor = ev[:, 0]
        self.event_sign = ev[:, 1].astype(float)
        self.event_category = ev[:, 2]
        self.checks = np.array(checks, dtype=np.int64)
        self.categories = CATEGORIES
        self.category_events = [np.flatnonzero(self.event_category == k) for k in range(len(CATEGORIES))]

    def peak(self, scale: dict[str, float]) -> tuple[float, dict]:
        """(peak live bytes, live bytes per category at the peak) with tensor ``t`` at ``scale[t]`` of its bytes."""
        size = self.nbytes
        if scale:
            factor = np.ones(len(self.names))
            for k, t in enumerate(self.names):
                if t in scale:
                    factor[k] = scale[t]
            size = size * factor
        start = [0.0] * len(self.categories)
        for t, c in self.resident:
            start[c] += size[t]
        live0 = sum(start)
        delta = self.event_sign * size[self.event_tensor]
        live = np.cumsum(np.concatenate(([live0], delta)))
        at_checks = np.concatenate(([live0], live[self.checks]))
        best = int(np.argmax(at_checks))  # the first maximum, as a strict ``>`` keeps it
        applied = 0 if best == 0 else int(self.checks[best - 1])
        cats = {}
        for k, name in enumerate(self.categories):
            idx = self.category_events[k]
            idx = idx[: np.searchsorted(idx, applied)]
            cats[name] = float(np.cumsum(np.concatenate(([start[k]], delta[idx])))[-1])
        return float(at_checks[best]), cats
