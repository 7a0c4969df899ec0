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
    """Split a ``[steps * batch, width]`` tensor into per-step ``[batch, width]`` tensors."""
    outs = [(f"{name}/{t}", batch * width) for t in range(steps)]
    return list(sb.data(name, [x], outs))


def stack(sb: StepBuilder, name: str, xs: list[str], width: int, batch: int) -> str:
    """Concatenate per-step ``[batch, width]`` tensors into ``[steps * batch, width]``."""
    return sb.data(name, xs, [(name, len(xs) * batch * width)])[0]


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
    """

    def __init__(self, sb: StepBuilder, name: str, batch: int, hidden: int, in_dim: int, steps: int, *,
                 kernel: str | None = None, bias: str | None = None):
        super().__init__(sb, name, batch, hidden, in_dim, steps)
        self.kernel = kernel or sb.param(f"{name}/kernel", (in_dim + hidden) * 4 * hidden)
        self.bias = bias or sb.param(f"{name}/bias", 4 * hidden)

    def forward(self, xs: list[str], h0: str | None = None, c0: str | None = None) -> list[str]:
        sb, b, h, k = self.sb, self.batch, self.hidden, self.in_dim + self.hidden
        n = b * h
        h_prev = h0 or zeros(sb, f"{self.name}/h_init", n)
        c_prev = c0 or zeros(sb, f"{self.name}/c_init", n)
        outs = []
        for t, x in enumerate(xs):
            p = f"{self.name}/t{t}"
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
            outs.append(hh)
            h_prev, c_prev = hh, c
        self.last_c = c_prev
        return outs

    def backward(self, dys: list[str | None], *, need_dx: bool = True) -> list[str | None]:
        """Per-step output gradients (None: no gradient from above) -> input gradients."""
        sb, b, h, k = self.sb, self.batch, self.hidden, self.in_dim + self.hidden
        n = b * h
        dxs: list[str | None] = [None] * len(dys)
        dh_next = dc_next = None
        for t in reversed(range(len(dys))):
            p = f"{self.name}/t{t}/grad"
            xh, c_prev, si, tj, sf, so, tc = (sb.pop(x) for x in self.saved[t])
            dh = add_n(sb, f"{p}/dh", [dys[t], dh_next], n)
            if dh is None:
                raise ValueError(f"{self.name}: no gradient reaches step {t}")
            dso = sb.ew(f"{p}/d_sig_o", [dh, tc], n)
            dtc = sb.ew(f"{p}/d_tanh_c", [dh, so], n)
            dca = sb.ew(f"{p}/d_c_tanh", [tc, dtc], n, TANH_GRAD)
            dc = add_n(sb, f"{p}/dc", [dca, dc_next], n)
            dsf = sb.ew(f"{p}/d_sig_f", [dc, c_prev], n)
            dcp = sb.ew(f"{p}/d_c_prev", [dc, sf], n) if t > 0 else None
            dsi = sb.ew(f"{p}/d_sig_i", [dc, tj], n)
            dtj = sb.ew(f"{p}/d_tanh_j", [dc, si], n)
            di = sb.ew(f"{p}/d_i", [si, dsi], n, SIGMOID_GRAD)
            dj = sb.ew(f"{p}/d_j", [tj, dtj], n, TANH_GRAD)
            df = sb.ew(f"{p}/d_f", [sf, dsf], n, SIGMOID_GRAD)
            do = sb.ew(f"{p}/d_o", [so, dso], n, SIGMOID_GRAD)
            dz = sb.data(f"{p}/d_z", [di, dj, df, do], [(f"{p}/d_z", 4 * n)])[0]
            sb.bias_bwd(p, dz, self.bias, accumulate=True)
            want_dxh = need_dx or t > 0
            dxh = sb.dense_bwd(p, dz, xh, self.kernel, b, 4 * h, k, need_dx=want_dxh, accumulate=True)
            if dxh is not None:
                outs = [(f"{p}/d_x", b * self.in_dim), (f"{p}/d_h_prev", n)]
                dx, dhp = sb.data(f"{p}/d_split", [dxh], outs)
                dxs[t] = dx if need_dx else None
                dh_next = dhp if t > 0 else None
            dc_next = dcp
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
                dhh = sb.ew(f"{p}/d_h", [ds, tt], n)
                dt1 = sb.ew(f"{p}/d_t_transform", [ds, hh], n)
                dkeep = sb.ew(f"{p}/d_s_keep", [ds, cc], n) if (l > 0 or t > 0) else None
                dcc = sb.ew(f"{p}/d_carry", [ds, s_in], n)
                dtt = sb.ew(f"{p}/d_t", [dt1, dcc], n)
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
