"""Building blocks shared by the recurrent and convolutional workload builders.

:class:`StepBuilder` wraps :class:`distsim.graph.GraphBuilder` with the pieces
every training step has: parameters, forward and backward matrix multiplies,
element-wise ops, per-time-step gradient accumulation and the optimizer update.

Conventions (those of Catamount's TensorFlow graphs, which the paper profiled):

- fp32 tensors (4 bytes an element) unless a ``precision`` is given
  (:mod:`distsim.precision`); an op's bytes are its input plus output bytes,
  except embedding gathers and sparse updates, which touch only the rows they
  look up;
- the backward of ``y = x @ W`` is two matrix multiplies of the forward's size,
  ``dx = dy @ W^T`` and ``dW = x^T @ dy`` (2x the forward FLOPs);
- a weight used inside an unrolled recurrence gets one gradient tensor per time
  step, summed into an accumulator with one add per step, the first add onto a
  zero-filled tensor (TensorFlow's while-loop gradient accumulators); the add
  is in place, so the accumulator is one buffer for the minimal footprint;
- values saved for the backward of a while loop (TensorFlow's stack push/pop)
  cost no bytes, as Catamount counts them (``catamount/ops/stack_ops.py``);
  they stay live until their last backward reader;
- an embedding's gradient is sparse: the rows of the step's tokens (as
  TensorFlow's IndexedSlices), applied with a sparse update;
- the optimizer is SGD (``var -= lr * grad``: reads var and grad, writes var),
  or momentum / Adam with one / two state tensors per parameter (plus an fp32
  master copy of the weights under mixed precision).
"""

from __future__ import annotations

from distsim.errors import ConfigError
from distsim.graph import GraphBuilder, OpKind, Phase, TensorKind

OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2}  # name -> state tensors per parameter
OPTIMIZER_FLOPS = {"sgd": 2, "momentum": 4, "adam": 10}  # per parameter element


class StepBuilder:
    """A :class:`GraphBuilder` plus parameter and gradient bookkeeping.

    Parameters
    ----------
    name : str
        Graph name.
    optimizer : str
        ``"sgd"``, ``"momentum"`` or ``"adam"``.
    precision : str
        Training precision (:mod:`distsim.precision`): element sizes and the
        optimizer's fp32 master copy under mixed precision.
    """

    def __init__(self, name: str, optimizer: str = "sgd", precision: str = "fp32"):
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.g = GraphBuilder(name, precision=precision)
        self.optimizer = optimizer
        self.params: dict[str, int] = {}  # weight tensor -> elements
        self._acc: dict[str, str] = {}  # weight -> current accumulated gradient tensor
        self._acc_count: dict[str, int] = {}
        self._sparse: dict[str, tuple[str, int]] = {}  # embedding -> (gradient rows tensor, elements)
        self._trainable: list[str] = []
        # TensorFlow builds the gradient of a same-shape binary element-wise op
        # (mul, add, sub) as the op plus reduce_sum and reshape over broadcast
        # axes unless every shape is static; graphs fed by dynamic-shaped
        # iterators (Catamount's NMT) keep those two extra passes per operand.
        self.dynamic_shapes = False
        self.reshape_grads = True

    # ---- context -----------------------------------------------------------
    def at(self, layer: str, phase: Phase) -> "StepBuilder":
        self.g.layer = layer
        self.g.phase = phase
        return self

    def fwd(self, layer: str) -> "StepBuilder":
        return self.at(layer, Phase.FORWARD)

    def bwd(self, layer: str) -> "StepBuilder":
        return self.at(layer, Phase.BACKWARD)

    # ---- tensors -----------------------------------------------------------
    def param(self, name: str, elements: int, *, trainable: bool = True) -> str:
        """A weight tensor; trainable ones get an optimizer update in :meth:`finish`."""
        self.g.tensor(name, elements, TensorKind.WEIGHT)
        self.params[name] = int(elements)
        if trainable:
            self._trainable.append(name)
        return name

    def input(self, name: str, elements: int) -> str:
        return self.g.tensor(name, elements, TensorKind.INPUT)

    def elements(self, tensor: str) -> int:
        return self.g.size(tensor) // self.g.element_bytes

    # ---- ops ---------------------------------------------------------------
    def matmul(self, name: str, a: str, b: str, m: int, n: int, k: int, *, batch: int = 1,
               out_kind: TensorKind = TensorKind.ACTIVATION) -> str:
        """``name[m, n] = a[m, k] @ b[k, n]``: 2mnk FLOPs."""
        return self.g.matmul(name, a, b, name, m, n, k, batch=batch, out_kind=out_kind)

    def ew(self, name: str, inputs, elements: int, flops_per_element: int = 1,
           kind: OpKind = OpKind.ELEMENTWISE, out_kind: TensorKind = TensorKind.ACTIVATION) -> str:
        """An element-wise op writing a new tensor ``name`` of ``elements``."""
        return self.g.elementwise(name, list(inputs), name, elements, flops_per_element=flops_per_element,
                                  kind=kind, out_kind=out_kind)

    def accumulate(self, name: str, acc: str, x: str, *, out_kind: TensorKind = TensorKind.ACTIVATION) -> str:
        """``acc + x`` in place (the output reuses ``acc``'s buffer; bytes: 2 reads, 1 write)."""
        return self.g.elementwise(name, [acc, x], name, self.elements(acc), out_kind=out_kind, inplace=True)

    def data(self, name: str, inputs, outputs) -> tuple[str, ...]:
        """Data movement (concat, split, copy, pad): no FLOPs, bytes in + out."""
        return self.g.op(name, OpKind.DATA, list(inputs), list(outputs))

    def reduce(self, name: str, x: str, out_elements: int, *, out_kind: TensorKind = TensorKind.ACTIVATION) -> str:
        """Sum ``x`` down to ``out_elements`` (a bias gradient): one FLOP an input element."""
        return self.g.op(name, OpKind.REDUCTION, [x], [(name, out_elements)], flops=self.elements(x),
                         out_kind=out_kind)[0]

    def bgrad(self, x: str, tag: str = "") -> str:
        """The gradient of one operand of a binary element-wise op (see ``dynamic_shapes``)."""
        if not self.dynamic_shapes:
            return x
        n = self.elements(x)
        r = self.g.op(f"{x}/sum{tag}", OpKind.REDUCTION, [x], [(f"{x}/sum{tag}", n)], flops=n)[0]
        if not self.reshape_grads:
            return r
        return self.data(f"{x}/reshape{tag}", [r], [(f"{x}/reshape{tag}", n)])[0]

    def push(self, x: str, tag: str = "") -> str:
        """Save forward value ``x`` for the backward of a while loop (TensorFlow's StackPush).

        Catamount counts stack ops as zero bytes and zero footprint
        (``catamount/ops/stack_ops.py``), so the saved value is simply kept
        alive until the backward reads it: this returns ``x`` itself.
        """
        return x

    def pop(self, saved: str) -> str:
        """The backward's view of a pushed value (TensorFlow's StackPop): ``saved`` itself."""
        return saved

    # ---- dense layers ------------------------------------------------------
    def dense_bwd(self, prefix: str, dy: str, x: str, w: str, m: int, n: int, k: int, *,
                  need_dx: bool = True, accumulate: bool = False) -> str | None:
        """Backward of ``y[m, n] = x[m, k] @ w[k, n]``: dx and dw, each 2mnk FLOPs.

        Returns dx (or None); dw goes to :meth:`grad`.
        """
        dx = None
        if need_dx:
            dx = self.matmul(f"{prefix}/dx", dy, w, m, k, n)
        dw = self.matmul(f"{prefix}/dw", x, dy, k, n, m, out_kind=TensorKind.GRADIENT)
        self.grad(w, dw, accumulate=accumulate)
        return dx

    def bias_bwd(self, prefix: str, dy: str, bias: str, *, accumulate: bool = False) -> None:
        """Bias gradient: the sum of ``dy`` over its rows."""
        db = self.reduce(f"{prefix}/db", dy, self.params[bias], out_kind=TensorKind.GRADIENT)
        self.grad(bias, db, accumulate=accumulate)

    # ---- gradients and update ---------------------------------------------
    def grad(self, w: str, g: str, *, accumulate: bool) -> None:
        """Register gradient ``g`` of weight ``w``.

        ``accumulate``: ``g`` is one time step's contribution; it is added to
        the running accumulator (one add per step, the first onto zeros).
        Otherwise ``g`` is the whole gradient of ``w`` (set once).
        """
        if not accumulate:
            if w in self._acc:
                raise ValueError(f"gradient of {w!r} set twice")
            self._acc[w] = g
            return
        n = self.params[w]
        count = self._acc_count.get(w, 0)
        prev = self._acc.get(w)
        if prev is None:
            prev = self.g.op(f"{w}/grad_acc/zeros", OpKind.DATA, [], [(f"{w}/grad_acc/zeros", n)],
                             out_kind=TensorKind.GRADIENT)[0]
        self._acc[w] = self.accumulate(f"{w}/grad_acc/{count}", prev, g, out_kind=TensorKind.GRADIENT)
        self._acc_count[w] = count + 1

    def sparse_grad(self, w: str, rows_grad: str) -> None:
        """Sparse gradient of embedding ``w``: ``rows_grad`` holds the looked-up rows."""
        self._sparse[w] = (rows_grad, self.elements(rows_grad))
        self._acc[w] = rows_grad

    def weight_decay(self, weights) -> None:
        """L2 regularization of ``weights`` (as TensorFlow adds it to the loss).

        Forward: one L2Loss (a reduction reading the weight) per weight and their
        sum; backward: the regularizer's gradient ``decay * w`` (reads w, writes
        a weight-sized tensor) added to the weight's gradient (reads both).
        """
        g = self.g
        losses = []
        g.phase = Phase.FORWARD
        for w in weights:
            g.layer = g._tensors[w].layer
            losses.append(self.g.op(f"{w}/l2_loss", OpKind.REDUCTION, [w], [(f"{w}/l2_loss", 1)],
                                    flops=2 * self.params[w])[0])
        g.layer = "regularizer"
        self.g.op("regularizer/sum", OpKind.REDUCTION, losses, [("regularizer/sum", 1)], flops=len(losses))
        g.phase = Phase.BACKWARD
        for w in weights:
            g.layer = g._tensors[w].layer
            n = self.params[w]
            reg = self.ew(f"{w}/l2_grad", [w], n, out_kind=TensorKind.GRADIENT)
            self._acc[w] = self.ew(f"{w}/grad_with_l2", [self._acc[w], reg], n, out_kind=TensorKind.GRADIENT)

    def clip_by_global_norm(self) -> None:
        """Gradient clipping by global norm (TensorFlow's ``clip_by_global_norm``).

        One squared-norm reduction per gradient, their sum, and a rescaled copy
        of every gradient (sparse ones: their rows), which the update then reads.
        """
        g = self.g
        g.phase = Phase.BACKWARD
        g.layer = "optimizer"
        norms = []
        for w in self._trainable:
            grad = self._acc[w]
            norms.append(self.reduce(f"{w}/grad_norm", grad, 1))
        total = self.g.op("global_norm", OpKind.REDUCTION, norms, [("global_norm", 1)], flops=2 * len(norms))[0]
        for w in self._trainable:
            grad = self._acc[w]
            g.layer = g._tensors[w].layer
            clipped = self.ew(f"{w}/grad_clipped", [grad, total], self.elements(grad), out_kind=TensorKind.GRADIENT)
            self._acc[w] = clipped
            if w in self._sparse:
                self._sparse[w] = (clipped, self._sparse[w][1])

    def finish(self, dims: dict):
        """Add the optimizer update of every trainable weight and build the graph."""
        g = self.g
        nstate = OPTIMIZERS[self.optimizer]
        flops_per = OPTIMIZER_FLOPS[self.optimizer]
        g.phase = Phase.UPDATE
        for w in self._trainable:
            if w not in self._acc:
                raise ValueError(f"weight {w!r} has no gradient")
            grad = self._acc[w]
            g.layer = g._tensors[w].layer
            touched = self._sparse[w][1] if w in self._sparse else None  # sparse: only the looked-up rows
            g.optimizer_update(w, grad, self.params[w], moments=nstate, flops_per_element=flops_per,
                               touched=touched, state_prefix="opt")
        dims = dict(dims)
        dims["optimizer"] = self.optimizer
        return g.build(dims)


def embedding_fwd(sb: StepBuilder, name: str, table: str, ids: str, rows: int, width: int) -> str:
    """Gather ``rows`` rows of ``width`` from ``table``: reads the rows and ids, writes the rows."""
    g = sb.g
    eb = g.element_bytes
    nbytes = eb * (2 * rows * width) + g.size(ids)
    return g.op(name, OpKind.EMBEDDING, [table, ids], [(name, rows * width)], nbytes=nbytes)[0]


def embedding_bwd(sb: StepBuilder, name: str, table: str, d_rows: str, ids: str) -> None:
    """Sparse embedding gradient: the incoming row gradients, indexed by ``ids``."""
    g = sb.g
    n = sb.elements(d_rows)
    rows = g.op(name, OpKind.DATA, [d_rows, ids], [(name, n)], out_kind=TensorKind.GRADIENT)[0]
    sb.sparse_grad(table, rows)


def softmax_xent(sb: StepBuilder, name: str, logits: str, labels: str, rows: int, classes: int) -> tuple[str, str]:
    """Softmax cross-entropy: loss per row and d(loss)/d(logits) in one op (as TensorFlow's).

    About 5 FLOPs per logit: max, subtract, exp, sum, divide (the gradient reuses them).
    """
    g = sb.g
    loss, dlogits = g.op(name, OpKind.SOFTMAX, [logits, labels], [(f"{name}/loss", rows), (f"{name}/dlogits", rows * classes)],
                         flops=5 * rows * classes)
    total = sb.reduce(f"{name}/mean", loss, 1)
    return total, dlogits


def check_choice(name: str, value, accepted) -> None:
    if value not in accepted:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, accepted))}, got {value!r}")
