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
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    import networkx as nx

from .errors import ConfigError, require_positive, require_positive_int
from .precision import get_precision


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
    """A tensor of one step.  ``nbytes`` is its size in bytes, ``element_bytes``
    the size of one element (so ``nbytes // element_bytes`` elements)."""

    name: str
    nbytes: int
    kind: TensorKind = TensorKind.ACTIVATION
    layer: str = ""
    element_bytes: int = 4

    @property
    def elements(self) -> int:
        return self.nbytes // self.element_bytes


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
        self._layers: tuple[str, ...] | None = None

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
        import networkx as nx  # here, not at import: start-up of commands that never need it

        if self._nx is None:
            g = nx.DiGraph()
            g.add_nodes_from(range(len(self.ops)))
            for i in range(len(self.ops)):
                g.add_edges_from((p, i) for p in self.predecessors(i))
            self._nx = g
        return self._nx

    def layers(self) -> list[str]:
        """Layer names in order of first appearance."""
        if self._layers is None:  # found once: a search resolves thousands of plans against one graph
            seen: dict[str, None] = {}
            for op in self.ops:
                seen.setdefault(op.layer, None)
            for t in self.tensors.values():
                if t.layer:
                    seen.setdefault(t.layer, None)
            self._layers = tuple(seen)
        return list(self._layers)

    # ---- totals ----------------------------------------------------------
    def tensors_of_kind(self, *kinds: TensorKind) -> list[Tensor]:
        return [t for t in self.tensors.values() if t.kind in kinds]

    @property
    def param_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors_of_kind(TensorKind.WEIGHT))

    @property
    def params(self) -> int:
        """Parameter count: elements of the weight tensors, whatever their element size."""
        return sum(t.elements for t in self.tensors.values() if t.kind is TensorKind.WEIGHT)

    @property
    def precision(self) -> str:
        """The training precision (see :mod:`distsim.precision`); fp32 unless the builder said."""
        return str(self.dims.get("precision", "fp32"))

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
    if len(order) != len(subset):
        stuck = sorted(set(subset) - set(order))
        raise ConfigError(f"graph {graph.name!r} has a cycle through op {graph.ops[stuck[0]].name!r}: an op reads "
                          f"a tensor that a later op writes")
    return order


#: Most ops a builder makes: a larger graph is refused while it is being built (about 5 s to build,
#: far longer to search), naming the limit, instead of running for minutes.
MAX_GRAPH_OPS = 500_000
#: Largest integer workload dimension accepted (2**40, about 1.1e12).
MAX_DIMENSION = 1 << 40


class GraphBuilder:
    """Accumulates tensors and ops of one training step; :meth:`build` returns the :class:`Graph`.

    Add ops in the order they run (forward, backward, update): an op may read
    only tensors that exist before the step (weights, optimizer state, inputs:
    :meth:`tensor` with that kind) or that an earlier op wrote.  Conventions:

    - sizes are in elements; bytes = elements x ``element_bytes``, which follows
      ``precision`` (4 bytes for the default fp32; see :mod:`distsim.precision`)
      unless given;
    - FLOPs are algorithmic, a multiply-add is 2 (:meth:`matmul` computes them);
      the backward of ``y = x @ W`` is two matmuls, ``dx = dy @ W^T`` and
      ``dW = x^T @ dy``;
    - set :attr:`layer` before adding a layer's weights and ops (the unit a
      pipeline stage holds) and :attr:`phase` (``Phase.FORWARD``,
      ``BACKWARD``, ``UPDATE``) before each phase;
    - a weight's gradient is written with ``out_kind=TensorKind.GRADIENT``;
      its update is an ``UPDATE``-phase op that reads the weight and the
      gradient and has no outputs (the weight changes in place).  What the
      update ops read is what data parallelism all-reduces;
    - pass ``dims={"batch": B, ...}`` to :meth:`build`: ``batch`` is the
      sub-batch per worker that steps per epoch and the batch of a plan use.

    Mistakes (a tensor read before anything wrote it, a tensor written twice,
    a weight or input written by an op, an update with outputs, unknown
    kinds, non-positive sizes, negative or non-finite FLOPs or bytes) raise
    :class:`~distsim.errors.ConfigError` naming the op or tensor.

    Examples
    --------
    One step of a linear layer ``y = x @ W`` (batch 32, 784 -> 10) with SGD:

    >>> from distsim.graph import GraphBuilder, OpKind, Phase, TensorKind
    >>> b = GraphBuilder("linear")
    >>> b.layer = "fc"
    >>> w = b.tensor("fc/W", 784 * 10, TensorKind.WEIGHT)
    >>> x = b.tensor("x", 32 * 784, TensorKind.INPUT)
    >>> y = b.matmul("fc/y", x, w, "fc/y", m=32, n=10, k=784)
    >>> dy = b.elementwise("loss/dy", [y], "loss/dy", 32 * 10, flops_per_element=3)
    >>> b.phase = Phase.BACKWARD
    >>> dw = b.matmul("fc/dW", x, dy, "fc/dW", m=784, n=10, k=32, out_kind=TensorKind.GRADIENT)
    >>> b.phase = Phase.UPDATE
    >>> b.op("fc/update", OpKind.OPTIMIZER, [w, dw], [], flops=2 * 784 * 10)
    ()
    >>> g = b.build(dims={"batch": 32})
    >>> g.params, g.flops
    (7840, 1020160)

    A mistake names the op:

    >>> b2 = GraphBuilder("bad")
    >>> b2.elementwise("relu", ["h"], "a", 10)
    Traceback (most recent call last):
    ...
    distsim.errors.ConfigError: op 'relu' reads tensor 'h', which is not defined; define it with tensor() (weights, optimizer state, inputs) or as an output of an earlier op
    """

    def __init__(self, name: str, *, element_bytes: int | None = None, precision: str = "fp32"):
        self.name = name
        self.precision = get_precision(precision)
        self.element_bytes = self.precision.element_bytes if element_bytes is None else element_bytes
        self._ops: list[Op] = []
        self._tensors: dict[str, Tensor] = {}
        self._producer: dict[str, str] = {}  # tensor -> name of the op writing it
        self.layer = ""
        self.phase = Phase.FORWARD

    def tensor(self, name: str, elements: int, kind: TensorKind = TensorKind.ACTIVATION, *,
               element_bytes: int | None = None) -> str:
        """Define a tensor of ``elements`` elements (of ``element_bytes``, default the builder's); returns its name.

        Weights, optimizer state and inputs (``kind``) exist before the step;
        other tensors are normally defined as an op's ``(name, elements)`` output.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"tensor name must be a non-empty string, got {name!r}")
        if name in self._tensors:
            raise ConfigError(f"tensor {name!r} defined twice")
        if type(kind) is not TensorKind:
            kind = _enum_value(TensorKind, kind, f"tensor {name!r}: kind")
        if type(elements) is not int or elements <= 0:
            elements = require_positive_int(f"tensor {name!r}: elements", elements)
        eb = self.element_bytes if element_bytes is None else element_bytes
        self._tensors[name] = Tensor(name, elements * eb, kind, self.layer, eb)
        return name

    def optimizer_update(self, weight: str, grad: str, elements: int, *, moments: int, flops_per_element: int,
                         touched: int | None = None, state_prefix: str = "opt_state") -> None:
        """The optimizer update of ``weight`` by ``grad``, with its state tensors.

        State (persistent, :attr:`TensorKind.OPTIMIZER_STATE`): ``moments``
        tensors of ``elements`` (fp32 under mixed precision) named
        ``{weight}/{state_prefix}{i}``, plus ``{weight}/master``, the fp32
        master copy, when the precision is mixed.  ``touched`` (default all)
        elements are read and written: a sparse update touches only its rows.
        Bytes: :meth:`distsim.precision.Precision.update_bytes_per_element`.
        """
        p = self.precision
        state_bytes = p.state_bytes if p.mixed else self.element_bytes
        states = [self.tensor(f"{weight}/{state_prefix}{i}", elements, TensorKind.OPTIMIZER_STATE,
                              element_bytes=state_bytes) for i in range(moments)]
        if p.mixed:
            states.append(self.tensor(f"{weight}/master", elements, TensorKind.OPTIMIZER_STATE,
                                      element_bytes=p.master_bytes))
        n = elements if touched is None else touched
        flops = (flops_per_element + (1 if p.mixed else 0)) * n  # mixed: + the cast to the compute copy
        if p.mixed:
            nbytes = n * p.update_bytes_per_element(moments)
        else:  # the weights are the master copy, in the builder's element size
            nbytes = n * self.element_bytes * (3 + 2 * moments)
        self.phase = Phase.UPDATE
        self.op(f"{weight}/update", OpKind.OPTIMIZER, [weight, grad, *states], [], flops=flops, nbytes=nbytes)

    def size(self, tensor: str) -> int:
        """Bytes of ``tensor`` (see :meth:`elements` for its elements)."""
        if tensor not in self._tensors:
            raise ConfigError(f"unknown tensor {tensor!r}")
        return self._tensors[tensor].nbytes

    def elements(self, tensor: str) -> int:
        """Elements of ``tensor``."""
        return self.size(tensor) // self.element_bytes

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
        """Add an op; returns the names of its outputs.

        Parameters
        ----------
        name : str
            Unique op name (used in errors, traces and plans).
        kind : OpKind
            What the op does (``OpKind.MATMUL``, ``ELEMENTWISE``, ...).
        inputs : sequence of str
            Tensors it reads: defined ones that exist before the step, or
            outputs of earlier ops.
        outputs : sequence of (str, int) or str
            New tensors as ``(name, elements)`` (of kind ``out_kind``), or
            names defined with :meth:`tensor` that no op wrote yet.
        flops : int
            Algorithmic FLOPs (>= 0; a multiply-add is 2).
        nbytes : int, optional
            Algorithmic bytes accessed (>= 0); default: inputs plus outputs.
        gemm : Gemm, optional
            Matrix-multiply shape, for the cache-aware timing model.
        inplace : bool
            The single output reuses the first input's buffer (``acc += x``).
        """
        if len(self._ops) >= MAX_GRAPH_OPS:
            raise ConfigError(f"workload {self.name}: the graph grows past {MAX_GRAPH_OPS} ops (the limit); "
                              "use smaller dimensions (e.g. seq_len, layers)")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"op name must be a non-empty string, got {name!r}")
        if type(kind) is not OpKind:
            kind = _enum_value(OpKind, kind, f"op {name!r}: kind")
        phase = self.phase
        if type(phase) is not Phase:
            phase = _enum_value(Phase, phase, f"op {name!r}: builder phase")
        if isinstance(inputs, str) or isinstance(outputs, str):
            raise ConfigError(f"op {name!r}: inputs and outputs must be lists of tensor names, "
                              f"got {inputs!r}, {outputs!r}")
        tensors, producer = self._tensors, self._producer
        for t in inputs:
            tensor = tensors.get(t)
            if tensor is None or (tensor.kind not in _RESIDENT_KINDS and t not in producer):
                self._unreadable(name, t)
        if outputs:
            if phase is Phase.UPDATE:
                names = [out[0] if isinstance(out, tuple) else out for out in outputs]
                raise ConfigError(f"op {name!r} is an update but has outputs {names!r}; an update reads "
                                  f"the weight, its gradient and optimizer state and changes them in place, "
                                  f"so it has no outputs")
            seen: set[str] = set()
            for out in outputs:
                t = out[0] if isinstance(out, tuple) else out
                if t in seen:
                    raise ConfigError(f"op {name!r} lists output {t!r} twice")
                seen.add(t)
                if not isinstance(out, tuple):
                    self._check_writable(name, out)
                elif t in tensors:
                    raise ConfigError(f"op {name!r}: output {t!r} already exists; give a new name, or its name "
                                      f"alone if it was defined with tensor() and nothing wrote it yet")
                elif len(out) != 2:
                    raise ConfigError(f"op {name!r}: a new output is (name, elements), got {out!r}")
        if type(out_kind) is not TensorKind:
            out_kind = _enum_value(TensorKind, out_kind, f"op {name!r}: out_kind")
        if type(flops) is not int or flops < 0:
            flops = _count(f"op {name!r}: flops", flops)
        if nbytes is not None and (type(nbytes) is not int or nbytes < 0):
            nbytes = _count(f"op {name!r}: nbytes", nbytes)
        if gemm is not None:
            for dim in ("m", "n", "k", "batch"):
                require_positive_int(f"op {name!r}: gemm {dim}", getattr(gemm, dim))
        out_names = [self.tensor(out[0], out[1], out_kind) if isinstance(out, tuple) else out for out in outputs]
        if nbytes is None:
            nbytes = sum(tensors[t].nbytes for t in inputs) + sum(tensors[t].nbytes for t in out_names)
        if inplace and (not inputs or len(out_names) != 1 or tensors[inputs[0]].nbytes != tensors[out_names[0]].nbytes):
            raise ConfigError(f"in-place op {name!r} needs one output the size of its first input")
        for t in out_names:
            producer[t] = name
        self._ops.append(Op(name, kind, int(flops), int(nbytes), tuple(inputs), tuple(out_names), self.layer, phase,
                            gemm, inplace))
        return tuple(out_names)

    def _unreadable(self, op: str, tensor) -> None:
        if tensor not in self._tensors:
            raise ConfigError(f"op {op!r} reads tensor {tensor!r}, which is not defined; define it with tensor() "
                              f"(weights, optimizer state, inputs) or as an output of an earlier op")
        kind = self._tensors[tensor].kind.value
        raise ConfigError(f"op {op!r} reads {kind} {tensor!r} before any op writes it; add the op that "
                          f"writes it first (ops go in the order they run), or define it as an input")

    def _check_writable(self, op: str, tensor) -> None:
        if tensor not in self._tensors:
            raise ConfigError(f"op {op!r} writes tensor {tensor!r}, which is not defined; give a new output "
                              f"as (name, elements)")
        t = self._tensors[tensor]
        if t.kind in _RESIDENT_KINDS:
            raise ConfigError(f"op {op!r} writes {t.kind.value} {tensor!r}; weights, optimizer state and inputs "
                              f"exist before the step and no op writes them (an update reads them and has no outputs)")
        if tensor in self._producer:
            raise ConfigError(f"op {op!r} writes {tensor!r}, which op {self._producer[tensor]!r} already wrote; "
                              f"a tensor is written once: give the new value a new name")

    def matmul(self, name: str, a: str, b: str, out: str, m: int, n: int, k: int, *, batch: int = 1,
               out_kind: TensorKind = TensorKind.ACTIVATION) -> str:
        """``out[m, n] = a[m, k] @ b[k, n]`` (``batch`` independent products): ``2 m n k batch`` FLOPs."""
        for dim, value in (("m", m), ("n", n), ("k", k), ("batch", batch)):
            require_positive_int(f"op {name!r}: {dim}", value)
        gemm = Gemm(m, n, k, batch, self.element_bytes)
        return self.op(name, OpKind.MATMUL, [a, b], [(out, m * n * batch)], flops=gemm.flops, gemm=gemm,
                       out_kind=out_kind)[0]

    def elementwise(self, name: str, inputs: Sequence[str], out: str, elements: int, *, flops_per_element: int = 1,
                    kind: OpKind = OpKind.ELEMENTWISE, out_kind: TensorKind = TensorKind.ACTIVATION,
                    inplace: bool = False) -> str:
        """An op writing a new tensor ``out`` of ``elements``: ``flops_per_element x elements`` FLOPs."""
        if type(elements) is not int or elements <= 0:
            elements = require_positive_int(f"op {name!r}: elements", elements)
        if type(flops_per_element) is not int or flops_per_element < 0:
            flops_per_element = _count(f"op {name!r}: flops_per_element", flops_per_element)
        return self.op(name, kind, inputs, [(out, elements)], flops=flops_per_element * elements, out_kind=out_kind,
                       inplace=inplace)[0]

    def build(self, dims: dict | None = None) -> Graph:
        """The graph of the ops added so far; ``dims`` are its named dimensions (include ``batch``).

        ``dims`` gain ``precision`` and ``element_bytes`` unless they name them.
        """
        if not self._ops:
            raise ConfigError(f"graph {self.name!r} has no ops")
        if dims is not None and not isinstance(dims, dict):
            raise ConfigError(f"graph {self.name!r}: dims must be a mapping of name: value, got {dims!r}")
        dims = dict(dims or {})
        dims.setdefault("precision", self.precision.name)
        dims.setdefault("element_bytes", self.element_bytes)
        return Graph(self.name, self._ops, self._tensors, dims)


_RESIDENT_KINDS = frozenset(k for k in TensorKind if k.resident)


def _enum_value(enum_type, value, field: str):
    """``value`` as a member of ``enum_type`` (a member or its string value), else ConfigError listing them."""
    try:
        return enum_type(value)
    except ValueError:
        accepted = ", ".join(f"{enum_type.__name__}.{m.name}" for m in enum_type)
        raise ConfigError(f"{field} must be one of {accepted}, got {value!r}") from None


def _count(field: str, value) -> float:
    """A non-negative, finite FLOP or byte count."""
    return require_positive(field, value, allow_zero=True)


def check_dims(dims: dict, spec: dict[str, tuple[type, object]]) -> dict:
    """Validate builder options against ``spec`` {name: (type, default)}.

    Unknown names and non-positive integers raise ConfigError naming the option.
    """
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


def critical_path_s(graph: Graph, durations) -> float:
    """Longest dependency chain of ``graph`` with ``durations`` (seconds per op): a lower bound on a step."""
    finish = [0.0] * len(graph.ops)
    for i in range(len(graph.ops)):
        preds = graph.predecessors(i)
        finish[i] = float(durations[i]) + (max(finish[p] for p in preds) if preds else 0.0)
    return max(finish, default=0.0)
