"""Compute graphs of one training step: ops, tensors, and what follows from them.

Definitions follow section 2.1 of Hestness et al., PPoPP 2019:

- *algorithmic FLOPs* of an op: the arithmetic it must do (a multiply-add is 2);
- *algorithmic bytes* of an op: the bytes of its input and output tensors
  (unless the op says otherwise, e.g. an embedding gather that reads only the
  rows it looks up);
- *total footprint*: the bytes of every tensor of one step, nothing freed;
- *minimal footprint*: the smallest peak of live tensors over topological
  traversals that allocate an op's outputs before it runs and free each input
  after its last consumer ran.  Persistent tensors (weights, optimizer state)
  are live for the whole step.

Dependencies are edges derived from tensors: op B depends on op A when B reads
a tensor A writes.  Ops are slotted dataclasses so that graphs of tens of
thousands of ops stay cheap.
"""

from __future__ import annotations

import enum
import heapq
from dataclasses import dataclass
from typing import Iterable, Sequence

import networkx as nx

from .errors import ConfigError


class OpKind(str, enum.Enum):
    MATMUL = "matmul"
    CONV = "conv"
    ELEMENTWISE = "elementwise"
    EMBEDDING = "embedding"
    REDUCTION = "reduction"
    SOFTMAX = "softmax"
    OPTIMIZER = "optimizer"
    DATA = "data"  # data movement without arithmetic: concat, split, copy


class Phase(str, enum.Enum):
    FORWARD = "fwd"
    BACKWARD = "bwd"
    UPDATE = "update"


class TensorKind(str, enum.Enum):
    WEIGHT = "weight"
    OPTIMIZER_STATE = "optimizer_state"
    GRADIENT = "gradient"  # a parameter's gradient (transient: freed by its update)
    ACTIVATION = "activation"
    INPUT = "input"  # training data fed to the step (token ids, labels, images)

    @property
    def persistent(self) -> bool:
        """Weights and optimizer state live across steps."""
        return self in (TensorKind.WEIGHT, TensorKind.OPTIMIZER_STATE)

    @property
    def resident(self) -> bool:
        """Live for the whole step: persistent tensors and the step's inputs."""
        return self.persistent or self is TensorKind.INPUT


@dataclass(frozen=True, slots=True)
class Tensor:
    """A tensor of one step.  ``nbytes`` is its size in bytes."""

    name: str
    nbytes: int
    kind: TensorKind = TensorKind.ACTIVATION
    layer: str = ""


@dataclass(frozen=True, slots=True)
class Gemm:
    """Shape of a matrix multiply ``[m, k] x [k, n] -> [m, n]`` (``batch`` of them).

    Used by the cache-aware timing model; element size in bytes.
    """

    m: int
    n: int
    k: int
    batch: int = 1
    element_bytes: int = 4

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * self.k * self.batch


@dataclass(frozen=True, slots=True)
class Op:
    """One op of a step.

    ``flops`` and ``nbytes`` are algorithmic (see module docstring); ``layer`` is
    the model layer the op belongs to (the unit of layer parallelism);
    ``gemm`` is set for matrix multiplies.
    """

    name: str
    kind: OpKind
    flops: int
    nbytes: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layer: str
    phase: Phase
    gemm: Gemm | None = None
    inplace: bool = False  # the output reuses the first input's buffer (e.g. acc += x)


class Graph:
    """A training-step compute graph.

    Build with :class:`GraphBuilder`; ops are stored in a valid topological
    order (the order they were added).
    """

    def __init__(self, name: str, ops: Sequence[Op], tensors: dict[str, Tensor], dims: dict | None = None):
        self.name = name
        self.ops: tuple[Op, ...] = tuple(ops)
        self.tensors: dict[str, Tensor] = dict(tensors)
        self.dims: dict = dict(dims or {})
        self._producer: dict[str, int] = {}
        self._consumers: dict[str, list[int]] = {t: [] for t in self.tensors}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                if t not in self.tensors:
                    raise ValueError(f"op {op.name!r} reads unknown tensor {t!r}")
                producer = self._producer.get(t)
                if producer is None and not self.tensors[t].kind.resident:
                    raise ValueError(f"op {op.name!r} reads {t!r} before it is produced")
                self._consumers[t].append(i)
            for t in op.outputs:
                if t in self._producer:
                    raise ValueError(f"tensor {t!r} produced twice")
                self._producer[t] = i
        self._nx: nx.DiGraph | None = None

    # ---- structure -------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, ops={len(self.ops)}, tensors={len(self.tensors)})"

    def producer(self, tensor: str) -> Op | None:
        i = self._producer.get(tensor)
        return None if i is None else self.ops[i]

    def consumers(self, tensor: str) -> list[Op]:
        return [self.ops[i] for i in self._consumers[tensor]]

    def producer_index(self, tensor: str) -> int | None:
        """Index of the op producing ``tensor`` (None for resident tensors)."""
        return self._producer.get(tensor)

    def consumer_indices(self, tensor: str) -> list[int]:
        """Indices of the ops reading ``tensor``, in graph order."""
        return list(self._consumers[tensor])

    def predecessors(self, index: int) -> set[int]:
        """Indices of the ops that op ``index`` depends on."""
        return {self._producer[t] for t in self.ops[index].inputs if t in self._producer}

    @property
    def nx(self) -> nx.DiGraph:
        """The dependency graph as a networkx DiGraph of op indices (built once)."""
        if self._nx is None:
            g = nx.DiGraph()
            g.add_nodes_from(range(len(self.ops)))
            for i in range(len(self.ops)):
                g.add_edges_from((p, i) for p in self.predecessors(i))
            self._nx = g
        return self._nx

    def layers(self) -> list[str]:
        """Layer names in order of first appearance."""
        seen: dict[str, None] = {}
        for op in self.ops:
            seen.setdefault(op.layer, None)
        for t in self.tensors.values():
            if t.layer:
                seen.setdefault(t.layer, None)
        return list(seen)

    # ---- totals ----------------------------------------------------------
    def tensors_of_kind(self, *kinds: TensorKind) -> list[Tensor]:
        return [t for t in self.tensors.values() if t.kind in kinds]

    @property
    def param_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors_of_kind(TensorKind.WEIGHT))

    @property
    def params(self) -> int:
        """Parameter count (elements of the weight tensors)."""
        return self.param_bytes // int(self.dims.get("element_bytes", 4))

    @property
    def flops(self) -> int:
        return sum(op.flops for op in self.ops)

    @property
    def nbytes(self) -> int:
        """Algorithmic bytes accessed by one step."""
        return sum(op.nbytes for op in self.ops)

    @property
    def persistent_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values() if t.kind.persistent)

    @property
    def footprint_total_bytes(self) -> int:
        """Every tensor of the step, nothing freed."""
        return sum(t.nbytes for t in self.tensors.values())

    def footprint_min_bytes(self) -> int:
        """Minimal footprint: the lower peak of two traversals (see :func:`traversal_peak`)."""
        return min(traversal_peak(self, order) for order in (range(len(self.ops)), greedy_order(self)))



def traversal_peak(graph: Graph, order: Iterable[int]) -> int:
    """Peak live bytes when the ops run in ``order``.

    Persistent tensors and step inputs are live throughout.  Before op ``i``
    runs its outputs are allocated; after it runs, each input whose consumers
    have all run is freed, and an output nobody consumes is freed at once.
    """
    live = sum(t.nbytes for t in graph.tensors.values() if t.kind.resident)
    peak = live
    remaining = {t: len(c) for t, c in graph._consumers.items()}
    tensors = graph.tensors
    for i in order:
        op = graph.ops[i]
        live += sum(tensors[t].nbytes for t in op.outputs)
        if op.inplace:
            live -= tensors[op.inputs[0]].nbytes  # the buffer passes from input to output
        peak = max(peak, live)
        for j, t in enumerate(op.inputs):
            remaining[t] -= 1
            if op.inplace and j == 0:
                continue
            if remaining[t] == 0 and not tensors[t].kind.resident:
                live -= tensors[t].nbytes
        for t in op.outputs:
            if remaining[t] == 0:
                live -= tensors[t].nbytes
    return peak


def greedy_order(graph: Graph, ops: Iterable[int] | None = None) -> list[int]:
    """A memory-greedy topological order of ``ops`` (default: every op).

    Among the ready ops, run first the one whose net change of live bytes
    (outputs allocated minus inputs it frees) is smallest, ties by build order.
    With a subset, dependencies on ops outside it count as met (one
    accelerator's share of the graph).  A heuristic: the exact minimum over
    all traversals is NP-hard in general.
    """
    tensors = graph.tensors
    subset = list(range(len(graph.ops))) if ops is None else list(ops)
    local = set(subset)
    indeg = {i: 0 for i in subset}
    succ: dict[int, list[int]] = {i: [] for i in subset}
    for i in subset:
        for p in graph.predecessors(i):
            if p in local:
                indeg[i] += 1
                succ[p].append(i)
    remaining: dict[str, int] = {}
    for i in subset:
        for t in graph.ops[i].inputs:
            remaining[t] = remaining.get(t, 0) + 1

    def net(i: int) -> int:
        op = graph.ops[i]
        freed = sum(
            tensors[t].nbytes
            for t in set(op.inputs)
            if remaining[t] == op.inputs.count(t) and not tensors[t].kind.resident
        )
        return sum(tensors[t].nbytes for t in op.outputs) - freed  # in-place: the reused input counts as freed

    ready = [(net(i), i) for i in subset if indeg[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        score, i = heapq.heappop(ready)
        current = net(i)
        if current != score:  # stale priority: a sibling freed something since
            heapq.heappush(ready, (current, i))
            continue
        order.append(i)
        for t in graph.ops[i].inputs:
            remaining[t] -= 1
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, (net(j), j))
    assert len(order) == len(subset), "graph has a cycle"
    return order


#: Most ops a builder makes: a larger graph is refused while it is being built (about 5 s to build,
#: far longer to search), naming the limit, instead of running for minutes.
MAX_GRAPH_OPS = 500_000
#: Largest integer workload dimension accepted (2**40, about 1.1e12).
MAX_DIMENSION = 1 << 40


class GraphBuilder:
    """Accumulates tensors and ops; :meth:`build` returns the :class:`Graph`.

    Sizes are in elements times ``element_bytes`` (4 for fp32 by default).
    """

    def __init__(self, name: str, *, element_bytes: int = 4):
        self.name = name
        self.element_bytes = element_bytes
        self._ops: list[Op] = []
        self._tensors: dict[str, Tensor] = {}
        self.layer = ""
        self.phase = Phase.FORWARD

    def tensor(self, name: str, elements: int, kind: TensorKind = TensorKind.ACTIVATION) -> str:
        if name in self._tensors:
            raise ValueError(f"tensor {name!r} defined twice")
        self._tensors[name] = Tensor(name, int(elements) * self.element_bytes, kind, self.layer)
        return name

    def size(self, tensor: str) -> int:
        return self._tensors[tensor].nbytes

    def op(
        self,
        name: str,
        kind: OpKind,
        inputs: Sequence[str],
        outputs: Sequence[tuple[str, int] | str],
        *,
        flops: int = 0,
        nbytes: int | None = None,
        gemm: Gemm | None = None,
        out_kind: TensorKind = TensorKind.ACTIVATION,
        inplace: bool = False,
    ) -> tuple[str, ...]:
        """Add an op.  ``outputs`` are new ``(name, elements)`` or existing names.

        ``nbytes`` defaults to the sizes of inputs plus outputs.
        """
        if len(self._ops) >= MAX_GRAPH_OPS:
            raise ConfigError(f"workload {self.name}: the graph grows past {MAX_GRAPH_OPS} ops (the limit); "
                              "use smaller dimensions (e.g. seq_len, layers)")
        out_names = []
        for out in outputs:
            if isinstance(out, tuple):
                out_names.append(self.tensor(out[0], out[1], out_kind))
            else:
                out_names.append(out)
        if nbytes is None:
            nbytes = sum(self._tensors[t].nbytes for t in inputs) + sum(self._tensors[t].nbytes for t in out_names)
        if inplace and (not inputs or len(out_names) != 1 or self._tensors[inputs[0]].nbytes != self._tensors[out_names[0]].nbytes):
            raise ValueError(f"in-place op {name!r} needs one output the size of its first input")
        self._ops.append(Op(name, kind, int(flops), int(nbytes), tuple(inputs), tuple(out_names), self.layer, self.phase,
                            gemm, inplace))
        return tuple(out_names)

    def matmul(self, name: str, a: str, b: str, out: str, m: int, n: int, k: int, *, batch: int = 1,
               out_kind: TensorKind = TensorKind.ACTIVATION) -> str:
        """``out[m, n] = a[m, k] @ b[k, n]`` (``batch`` independent products)."""
        gemm = Gemm(m, n, k, batch, self.element_bytes)
        return self.op(name, OpKind.MATMUL, [a, b], [(out, m * n * batch)], flops=gemm.flops, gemm=gemm,
                       out_kind=out_kind)[0]

    def elementwise(self, name: str, inputs: Sequence[str], out: str, elements: int, *, flops_per_element: int = 1,
                    kind: OpKind = OpKind.ELEMENTWISE, out_kind: TensorKind = TensorKind.ACTIVATION,
                    inplace: bool = False) -> str:
        return self.op(name, kind, inputs, [(out, elements)], flops=flops_per_element * elements, out_kind=out_kind,
                       inplace=inplace)[0]

    def build(self, dims: dict | None = None) -> Graph:
        return Graph(self.name, self._ops, self._tensors, dims)


def check_dims(dims: dict, spec: dict[str, tuple[type, object]]) -> dict:
    """Validate builder options against ``spec`` {name: (type, default)}.

    Unknown names and non-positive integers raise ConfigError naming the option.
    """
    from .errors import require_positive_int

    unknown = set(dims) - set(spec)
    if unknown:
        raise ConfigError(f"unknown option {sorted(unknown)[0]!r}; accepted: {', '.join(spec)}")
    out = {}
    for name, (typ, default) in spec.items():
        value = dims.get(name, default)
        if typ is int:
            value = require_positive_int(name, value, allow_zero=(default == 0))
            if value > MAX_DIMENSION:
                raise ConfigError(f"{name} {value:.3g} is more than {MAX_DIMENSION} (the limit)")
        elif typ is str:
            if not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, got {value!r}")
        out[name] = value
    return out
