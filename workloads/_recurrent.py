"""Unrolled recurrent layers (LSTM, recurrent highway network) for the builders.

Each layer runs forward over a list of per-time-step input tensors ``[batch,
in_dim]`` and returns the per-step outputs plus a handle; calling the handle's
``backward`` with the per-step output gradients (after the layers above have
run their backward) adds the backward ops in reverse time order and returns
the per-step input gradients.  Weights used at every step accumulate their
gradients with one add per step (see :mod:`workloads._blocks`).

Element-wise FLOP counts per element: add/sub/mul 1, sigmoid 4, tanh 4 (as a
few multiply-adds of a rational approximation), their gradients 3 and 2.
They matter little: matrix multiplies dominate every recurrent workload.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distsim.graph import OpKind

from ._blocks import StepBuilder

SIGMOID, TANH, SIGMOID_GRAD, TANH_GRAD = 4, 4, 3, 2


def zeros(sb: StepBuilder, name: str, elements: int) -> str:
    """A zero-filled tensor (initial recurrent state)."""
    return sb.g.op(name, OpKind.DATA, [], [(name, elements)])[0]


def unstack(sb: StepBuilder, name: str, x: str, steps: int, width: int, batch: int) -> list[str]:
    """Split ``[steps * batch, width]`` into per-step ``[batch, width]`` tensors.

    As ``dynamic_rnn`` does it: a TensorArray scatter (one copy of the
    sequence) and one read per step (reads and writes one step's rows).
    """
    n = batch * width
    ta = sb.data(f"{name}/scatter", [x], [(f"{name}/ta", steps * n)])[0]
    eb = sb.g.element_bytes
    return [sb.g.op(f"{name}/read{t}", OpKind.DATA, [ta], [(f"{name}/{t}", n)], nbytes=2 * n * eb)[0]
            for t in range(steps)]


def stack(sb: StepBuilder, name: str, xs: list[str], width: int, batch: int) -> str:
    """Per-step ``[batch, width]`` tensors into ``[steps * batch, width]``: a TensorArray
    write per step and a gather."""
    n = batch * width
    written = [sb.data(f"{name}/write{t}", [x], [(f"{name}/w{t}", n)])[0] for t, x in enumerate(xs)]
    return sb.data(name, written, [(name, len(xs) * n)])[0]


def add_n(sb: StepBuilder, name: str, xs: list[str], elements: int) -> str:
    xs = [x for x in xs if x is not None]
    if len(xs) == 1:
        return xs[0]
    return sb.ew(name, xs, elements, flops_per_element=len(xs) - 1)


@dataclass
class _Layer:
    sb: StepBuilder
    name: str
    batch: int
    hidden: int
    in_dim: int
    steps: int
    saved: list = field(default_factory=list)


class LSTMLayer(_Layer):
    """One LSTM direction (TensorFlow's BasicLSTMCell, forget bias 1).

    Weights: kernel ``[in_dim + hidden, 4 hidden]`` and bias ``[4 hidden]``.
    Per step and batch row the forward does ``2 (in_dim + hidden) 4 hidden``
    matrix FLOPs; the backward twice that.

    ``dropout``: input dropout as TensorFlow's DropoutWrapper builds it (uniform
    random tensor, scale, shift, add keep probability, floor, divide, multiply).
    ``seq_mask``: per-step ``where(time >= length, ...)`` selects on the output
    and both states, as ``dynamic_rnn`` adds when given sequence lengths.
    """

    def __init__(self, sb: StepBuilder, name: str, batch: int, hidden: int, in_dim: int, steps: int, *,
                 dropout: bool = False, seq_mask: bool = False):
        super().__init__(sb, name, batch, hidden, in_dim, steps)
        self.kernel = sb.param(f"{name}/kernel", (in_dim + hidden) * 4 * hidden)
        self.bias = sb.param(f"{name}/bias", 4 * hidden)
        self.dropout = dropout
        self.seq_mask = seq_mask

    def start(self, h0: str | None = None, c0: str | None = None) -> None:
        """Set the initial state (zero-filled unless given)."""
        n = self.batch * self.hidden
        self.h_prev = h0 or zeros(self.sb, f"{self.name}/h_init", n)
        self.c_prev = c0 or zeros(self.sb, f"{self.name}/c_init", n)
        self._dh_next = self._dc_next = None
        if self.seq_mask:
            self.zero_out = zeros(self.sb, f"{self.name}/zero_output", n)
            self.lengths = self.sb.input(f"{self.name}/lengths", self.batch)
        self.masks = []
        self.keeps = []

    def step(self, x: str) -> str:
        """One forward time step on input ``x`` ``[batch, in_dim]``; returns h ``[batch, hidden]``."""
        sb, b, h, k = self.sb, self.batch, self.hidden, self.in_dim + self.hidden
        n = b * h
        p = f"{self.name}/t{len(self.saved)}"
        h_prev, c_prev = self.h_prev, self.c_prev
        if self.dropout:
            m = b * self.in_dim
            r = zeros(sb, f"{p}/dropout/uniform", m)
            r = sb.ew(f"{p}/dropout/scale", [r], m)
            r = sb.ew(f"{p}/dropout/shift", [r], m)
            r = sb.ew(f"{p}/dropout/add_keep", [r], m)
            keep = sb.ew(f"{p}/dropout/floor", [r], m)
            xd = sb.ew(f"{p}/dropout/div", [x], m)
            x = sb.ew(f"{p}/dropout/mul", [xd, keep], m)
            self.keeps.append(sb.push(keep))
        xh = sb.data(f"{p}/concat", [x, h_prev], [(f"{p}/concat", b * k)])[0]
        z = sb.matmul(f"{p}/matmul", xh, self.kernel, b, 4 * h, k)
        zb = sb.ew(f"{p}/biasadd", [z, self.bias], 4 * n)
        gi, gj, gf, go = sb.data(f"{p}/split", [zb], [(f"{p}/{g}", n) for g in "ijfo"])
        f1 = sb.ew(f"{p}/forget_bias", [gf], n)
        si = sb.ew(f"{p}/sig_i", [gi], n, SIGMOID)
        tj = sb.ew(f"{p}/tanh_j", [gj], n, TANH)
        sf = sb.ew(f"{p}/sig_f", [f1], n, SIGMOID)
        so = sb.ew(f"{p}/sig_o", [go], n, SIGMOID)
        c1 = sb.ew(f"{p}/c_keep", [c_prev, sf], n)
        c2 = sb.ew(f"{p}/c_new", [si, tj], n)
        c = sb.ew(f"{p}/c", [c1, c2], n)
        tc = sb.ew(f"{p}/tanh_c", [c], n, TANH)
        hh = sb.ew(f"{p}/h", [tc, so], n)
        self.saved.append(tuple(sb.push(x) for x in (xh, c_prev, si, tj, sf, so, tc)))
        out = hh
        if self.seq_mask:
            cond = sb.ew(f"{p}/copy_cond", [self.lengths], b)
            out = sb.ew(f"{p}/select_out", [cond, self.zero_out, hh], n)
            c = sb.ew(f"{p}/select_c", [cond, c_prev, c], n)
            hh = sb.ew(f"{p}/select_h", [cond, h_prev, hh], n)
            self.masks.append(sb.push(cond))
        self.h_prev, self.c_prev = hh, c
        return out

    def forward(self, xs: list[str], h0: str | None = None, c0: str | None = None) -> list[str]:
        self.start(h0, c0)
        return [self.step(x) for x in xs]

    def _select_grad(self, p: str, cond: str, g: str | None) -> tuple[str | None, str | None]:
        """Gradient of ``where(cond, a, b)``: (to a, to b), each a select against zeros."""
        if g is None:
            return None, None
        sb, n = self.sb, self.batch * self.hidden
        z = sb.ew(f"{p}/zeros_like", [g], n, 0)
        return sb.ew(f"{p}/to_copy", [cond, g, z], n, 0), sb.ew(f"{p}/to_new", [cond, z, g], n, 0)

    def backward_step(self, t: int, dy: str | None, *, need_dx: bool = True, dc_extra: str | None = None) -> str | None:
        """Backward of step ``t`` (call for t = steps-1 down to 0) given its output gradient.

        ``dc_extra``: a gradient reaching the step's cell state from outside the cell.
        """
        sb, b, h, k = self.sb, self.batch, self.hidden, self.in_dim + self.hidden
        n = b * h
        p = f"{self.name}/t{t}/grad"
        xh, c_prev, si, tj, sf, so, tc = (sb.pop(x) for x in self.saved[t])
        dh_copy = dc_copy = None
        dh_next, dc_next = self._dh_next, self._dc_next
        if self.seq_mask:
            cond = sb.pop(self.masks[t])
            _, dy = self._select_grad(f"{p}/select_out", cond, dy)
            dh_copy, dh_next = self._select_grad(f"{p}/select_h", cond, dh_next)
            dc_copy, dc_next = self._select_grad(f"{p}/select_c", cond, dc_next)
        dh = add_n(sb, f"{p}/dh", [dy, dh_next], n)
        if dh is None:
            raise ValueError(f"{self.name}: no gradient reaches step {t}")
        bg = sb.bgrad
        dso = bg(sb.ew(f"{p}/d_sig_o", [dh, tc], n))
        dtc = bg(sb.ew(f"{p}/d_tanh_c", [dh, so], n))
        dca = sb.ew(f"{p}/d_c_tanh", [tc, dtc], n, TANH_GRAD)
        dc = add_n(sb, f"{p}/dc", [dca, dc_next, dc_extra], n)
        dc1, dc2 = bg(dc, "1"), bg(dc, "2")  # c = c_keep + c_new
        dsf = bg(sb.ew(f"{p}/d_sig_f", [dc1, c_prev], n))
        dcp = bg(sb.ew(f"{p}/d_c_prev", [dc1, sf], n)) if t > 0 else None
        dsi = bg(sb.ew(f"{p}/d_sig_i", [dc2, tj], n))
        dtj = bg(sb.ew(f"{p}/d_tanh_j", [dc2, si], n))
        di = sb.ew(f"{p}/d_i", [si, dsi], n, SIGMOID_GRAD)
        dj = sb.ew(f"{p}/d_j", [tj, dtj], n, TANH_GRAD)
        df = bg(sb.ew(f"{p}/d_f", [sf, dsf], n, SIGMOID_GRAD))  # f + forget_bias
        do = sb.ew(f"{p}/d_o", [so, dso], n, SIGMOID_GRAD)
        dz = sb.data(f"{p}/d_z", [di, dj, df, do], [(f"{p}/d_z", 4 * n)])[0]
        sb.bias_bwd(p, dz, self.bias, accumulate=True)
        dxh = sb.dense_bwd(p, dz, xh, self.kernel, b, 4 * h, k, need_dx=need_dx or t > 0, accumulate=True)
        dx = dhp = None
        if dxh is not None:
            outs = [(f"{p}/d_x", b * self.in_dim), (f"{p}/d_h_prev", n)]
            dx, dhp = sb.data(f"{p}/d_split", [dxh], outs)
            if self.dropout and need_dx:
                m = b * self.in_dim
                keep = sb.pop(self.keeps[t])
                dx = bg(sb.ew(f"{p}/dropout/d_mul", [dx, keep], m))
                dx = bg(sb.ew(f"{p}/dropout/d_div", [dx], m))
            dx = dx if need_dx else None
        if t > 0:
            self._dh_next = add_n(sb, f"{p}/d_h_prev_sum", [dhp, dh_copy], n)
            self._dc_next = add_n(sb, f"{p}/d_c_prev_sum", [dcp, dc_copy], n)
        else:
            self._dh_next = self._dc_next = None
        return dx

    def backward(self, dys: list[str | None], *, need_dx: bool = True) -> list[str | None]:
        """Per-step output gradients (None: no gradient from above) -> input gradients."""
        self._dh_next = self._dc_next = None
        dxs: list[str | None] = [None] * len(dys)
        for t in reversed(range(len(dys))):
            dxs[t] = self.backward_step(t, dys[t], need_dx=need_dx)
        return dxs


class RHNLayer(_Layer):
    """A recurrent highway network layer (Zilly et al. 2017), coupled carry gate.

    Recurrence depth ``depth``; sublayer 0 reads ``[x_t, s_{t-1}]`` (weights
    ``[in_dim + hidden, hidden]``), sublayers 1..depth-1 read the previous
    sublayer's state (``[hidden, hidden]``).  Each sublayer has a transform
    ``h = tanh(in W_h + b_h)`` and a gate ``t = sigmoid(in W_t + b_t)``;
    ``s = h t + s_in (1 - t)``.  Parameters ``2 (in_dim + hidden) hidden +
    2 (depth - 1) hidden^2 + 2 depth hidden`` (``22 h^2 + 20 h`` at depth 10).
    """

    def __init__(self, sb: StepBuilder, name: str, batch: int, hidden: int, in_dim: int, steps: int, depth: int):
        super().__init__(sb, name, batch, hidden, in_dim, steps)
        self.depth = depth
        self.w = []
        for l in range(depth):
            k = in_dim + hidden if l == 0 else hidden
            self.w.append({
                "h": sb.param(f"{name}/h_{l}/Matrix", k * hidden), "bh": sb.param(f"{name}/h_{l}/Bias", hidden),
                "t": sb.param(f"{name}/t_{l}/Matrix", k * hidden), "bt": sb.param(f"{name}/t_{l}/Bias", hidden),
                "k": k,
            })

    def forward(self, xs: list[str], s0: str | None = None) -> list[str]:
        sb, b, h = self.sb, self.batch, self.hidden
        n = b * h
        s = s0 or zeros(sb, f"{self.name}/s_init", n)
        outs = []
        for t, x in enumerate(xs):
            saved = []
            for l, w in enumerate(self.w):
                p = f"{self.name}/t{t}/l{l}"
                if l == 0:
                    inp = sb.data(f"{p}/concat", [x, s], [(f"{p}/concat", b * w["k"])])[0]
                else:
                    inp = s
                zh = sb.matmul(f"{p}/h_matmul", inp, w["h"], b, h, w["k"])
                ah = sb.ew(f"{p}/h_bias", [zh, w["bh"]], n)
                hh = sb.ew(f"{p}/h_tanh", [ah], n, TANH)
                zt = sb.matmul(f"{p}/t_matmul", inp, w["t"], b, h, w["k"])
                at = sb.ew(f"{p}/t_bias", [zt, w["bt"]], n)
                tt = sb.ew(f"{p}/t_sigmoid", [at], n, SIGMOID)
                cc = sb.ew(f"{p}/carry", [tt], n)
                p1 = sb.ew(f"{p}/transform", [hh, tt], n)
                p2 = sb.ew(f"{p}/keep", [s, cc], n)
                s_new = sb.ew(f"{p}/s", [p1, p2], n)
                saved.append(tuple(sb.push(x) for x in ((inp, hh, tt, cc) if l else (inp, s, hh, tt, cc))))
                s = s_new
            self.saved.append(saved)
            outs.append(s)
        return outs

    def backward(self, dys: list[str | None], *, need_dx: bool = True) -> list[str | None]:
        sb, b, h = self.sb, self.batch, self.hidden
        n = b * h
        dxs: list[str | None] = [None] * len(dys)
        ds_next = None
        for t in reversed(range(len(dys))):
            ds = add_n(sb, f"{self.name}/t{t}/grad/ds", [dys[t], ds_next], n)
            for l in reversed(range(self.depth)):
                w = self.w[l]
                p = f"{self.name}/t{t}/l{l}/grad"
                popped = [sb.pop(x) for x in self.saved[t][l]]
                if l:
                    inp, hh, tt, cc = popped
                    s_in = inp
                else:
                    inp, s_in, hh, tt, cc = popped
                bg = sb.bgrad
                ds1, ds2 = bg(ds, "1"), bg(ds, "2")  # s = transform + keep
                dhh = bg(sb.ew(f"{p}/d_h", [ds1, tt], n))
                dt1 = bg(sb.ew(f"{p}/d_t_transform", [ds1, hh], n))
                dkeep = bg(sb.ew(f"{p}/d_s_keep", [ds2, cc], n)) if (l > 0 or t > 0) else None
                dcc = bg(sb.ew(f"{p}/d_carry", [ds2, s_in], n))
                dtt = sb.ew(f"{p}/d_t", [dt1, bg(dcc, "neg")], n)  # carry = 1 - t
                dat = sb.ew(f"{p}/d_t_sigmoid", [tt, dtt], n, SIGMOID_GRAD)
                dah = sb.ew(f"{p}/d_h_tanh", [hh, dhh], n, TANH_GRAD)
                sb.bias_bwd(f"{p}/h", dah, w["bh"], accumulate=True)
                sb.bias_bwd(f"{p}/t", dat, w["bt"], accumulate=True)
                want_din = l > 0 or t > 0 or need_dx
                din_h = sb.dense_bwd(f"{p}/h", dah, inp, w["h"], b, h, w["k"], need_dx=want_din, accumulate=True)
                din_t = sb.dense_bwd(f"{p}/t", dat, inp, w["t"], b, h, w["k"], need_dx=want_din, accumulate=True)
                if l > 0:
                    ds = add_n(sb, f"{p}/d_s_in", [din_h, din_t, dkeep], n)
                elif want_din:
                    din = add_n(sb, f"{p}/d_in", [din_h, din_t], b * w["k"])
                    dx, ds_from_in = sb.data(f"{p}/d_split", [din], [(f"{p}/d_x", b * self.in_dim), (f"{p}/d_s_prev", n)])
                    dxs[t] = dx if need_dx else None
                    ds_next = add_n(sb, f"{p}/d_s_prev_sum", [ds_from_in, dkeep], n) if t > 0 else None
                else:
                    ds_next = None
        return dxs
