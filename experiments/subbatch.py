"""PPoPP 2019 Figure 11 and section 5.2.1: choosing the subbatch size.

Sweeps the subbatch of one workload (default: Table 3's word LM, hidden
38,100, vocabulary 10,004, 2 layers, 80 steps) over powers of two from 1 to
262,144 (and the midpoints 3 x 2^(k-1), so that Table 3's 96 is a candidate)
and reports, per subbatch:

- graph-level operational intensity (algorithmic FLOPs / bytes of the step);
- per-op step time (each op at its own roofline on ``paper-v100``, summed:
  memory-bound ops below the ridge point cost their bandwidth time) and that
  time per sample; algorithmic FLOP utilization;
- total footprint (every tensor; exactly affine in the subbatch).

It marks three points (section 5.2.1):

- *ridge*: the smallest integer subbatch whose graph-level intensity reaches
  the accelerator's ridge point (17.4 FLOP/B at peak rates, the figure's
  dotted line; added to the sweep's points);
- *saturation*: the smallest subbatch whose intensity reaches
  ``SATURATION`` (80%) of its large-subbatch asymptote;
- *chosen*: the paper's rule, the smallest subbatch whose time per sample is
  within ``TOLERANCE`` (5%) of the sweep's minimum: it keeps the footprint
  small while giving nearly the best throughput.

``ridge_subbatch`` (in the notes and :func:`choose_subbatch`) is the exact,
fractional subbatch where the intensity equals the ridge point: intensity is
``(F0 + F1 b) / (A0 + A1 b)``, so ``b = (R A0 - F0) / (F1 - R A1)``.

The per-op time fuses each per-time-step weight-gradient accumulation into
the matmul that produces it (:func:`fused_accumulation`).  Unfused, those
adds are memory-bound, batch-independent passes over every recurrent weight
at every time step (a third of the word LM's step at subbatch 128), and the
time per sample would keep falling until subbatches of about 1,000; the
``*_unfused`` columns show that variant (docs/reproduction_domains.md).

Minimal footprints are traversed at the three marked points.  For speed the
graph is built at subbatches 1 and 2 only: every op's FLOPs and bytes are
affine in the subbatch (checked exactly against a build at 4), so each op's
values at any subbatch follow.  ``--quick``: a smaller word LM (hidden 2,048,
16 steps) and every fourth power of two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distsim import units
from distsim.device import get_device
from distsim.graph import OpKind
from distsim.workload import build_workload

from distsim.experiments._domains import DOMAINS, size_for_params

WORKLOAD = ("wordlm", dict(hidden=38100, vocab=10004, layers=2, seq_len=80))
QUICK_WORKLOAD = ("wordlm", dict(hidden=2048, vocab=10004, layers=2, seq_len=16))
# powers of two from 1 to 262,144 and the midpoints 3 * 2^(k-1) (Table 3 uses 96)
BATCHES = tuple(sorted({2**k for k in range(19)} | {3 * 2 ** (k - 1) for k in range(1, 18)}))
QUICK_BATCHES = tuple(4**k for k in range(10))  # 1 .. 262,144
TOLERANCE = 0.05  # chosen: time per sample within 5% of the minimum
SATURATION = 0.80  # saturation: intensity at 80% of its asymptote


def fused_accumulation(graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-op (keep mask, extra FLOPs, extra bytes) when gradient accumulation is fused.

    An in-place accumulate ``acc += dW_t`` whose addend comes straight from a
    weight-gradient matmul is merged into that matmul, as a GEMM accumulating
    into its output does (cuBLAS ``beta = 1``; cuDNN's RNN weight-gradient
    kernels accumulate over time steps): the fused op does both ops' FLOPs and
    reads and writes the accumulator instead of writing ``dW_t`` and running a
    separate, memory-bound add.  The result: the matmul's bytes plus one
    ``dW_t``-sized tensor, and no add op.
    """
    n = len(graph.ops)
    keep = np.ones(n, dtype=bool)
    extra_flops = np.zeros(n)
    extra_bytes = np.zeros(n)
    producer = {t: i for i, op in enumerate(graph.ops) for t in op.outputs}
    for j, op in enumerate(graph.ops):
        if not (op.inplace and op.kind == OpKind.ELEMENTWISE and len(op.inputs) == 2):
            continue
        src = producer.get(op.inputs[1])
        if src is None or graph.ops[src].kind != OpKind.MATMUL or len(graph.consumers(op.inputs[1])) != 1:
            continue
        keep[j] = False
        extra_flops[src] += op.flops
        extra_bytes[src] += graph.tensors[op.inputs[1]].nbytes
    return keep, extra_flops, extra_bytes


@dataclass
class AffineOps:
    """Per-op FLOPs and bytes as ``base + slope * subbatch`` (exact), unfused and fused."""

    flops0: np.ndarray
    flops1: np.ndarray
    bytes0: np.ndarray
    bytes1: np.ndarray
    total0: float  # total footprint
    total1: float
    keep: np.ndarray  # fused view: ops that remain
    fused_flops0: np.ndarray
    fused_bytes0: np.ndarray

    @classmethod
    def of(cls, name: str, options: dict) -> "AffineOps":
        graphs = [build_workload(name, batch=b, **options) for b in (1, 2, 4)]
        f = [np.array([op.flops for op in g.ops], dtype=float) for g in graphs]
        a = [np.array([op.nbytes for op in g.ops], dtype=float) for g in graphs]
        tot = [float(g.footprint_total_bytes) for g in graphs]
        for x in (f, a, [np.array(t) for t in tot]):
            if not np.array_equal(x[2] - x[1], 2 * (x[1] - x[0])):
                raise AssertionError(f"{name}: op FLOPs/bytes are not affine in the subbatch")
        keep, ef, ea = fused_accumulation(graphs[0])
        f0, a0 = 2 * f[0] - f[1], 2 * a[0] - a[1]
        return cls(f0, f[1] - f[0], a0, a[1] - a[0], 2 * tot[0] - tot[1], tot[1] - tot[0], keep, f0 + ef, a0 + ea)

    def at(self, b: float, *, fused: bool = False):
        if fused:
            return ((self.fused_flops0 + self.flops1 * b)[self.keep], (self.fused_bytes0 + self.bytes1 * b)[self.keep])
        return self.flops0 + self.flops1 * b, self.bytes0 + self.bytes1 * b


def sweep(name: str, options: dict, batches=BATCHES, device_name: str = "paper-v100") -> pd.DataFrame:
    """One row per subbatch: intensity, per-op and roofline step time, utilization, total footprint.

    ``per_op_*`` columns time the step with fused gradient accumulation
    (:func:`fused_accumulation`); ``*_unfused`` with every op separate.
    Intensity and roofline use the algorithmic (unfused) FLOPs and bytes.
    """
    device = get_device(device_name)
    ops = AffineOps.of(name, options)
    cf, ca = device.achievable_flop_per_s, device.achievable_bytes_per_s
    F0, F1, A0, A1 = ops.flops0.sum(), ops.flops1.sum(), ops.bytes0.sum(), ops.bytes1.sum()
    R = device.ridge_point
    ridge_b = float((R * A0 - F0) / (F1 - R * A1)) if F1 > R * A1 else None
    grid = set(batches)
    if ridge_b is not None and ridge_b >= 1:  # add the (rounded-up) ridge subbatch as a sweep point
        batches = sorted(grid | {int(np.ceil(ridge_b))})
    rows = []
    for b in batches:
        f, a = ops.at(b)
        ff, fa = ops.at(b, fused=True)
        per_op = float(np.maximum(ff / cf, fa / ca).sum())
        unfused = float(np.maximum(f / cf, a / ca).sum())
        roof = max(f.sum() / cf, a.sum() / ca)
        rows.append(dict(workload=name, subbatch=b, on_grid=b in grid, flops=f.sum(), bytes=a.sum(), intensity=f.sum() / a.sum(),
                         per_op_step_s=per_op, per_op_s_per_sample=per_op / b,
                         per_op_utilization=f.sum() / (device.flop_per_s * per_op),
                         per_op_s_per_sample_unfused=unfused / b,
                         per_op_utilization_unfused=f.sum() / (device.flop_per_s * unfused),
                         roofline_step_s=roof, footprint_total_gb=units.to_gib(ops.total0 + ops.total1 * b)))
    df = pd.DataFrame(rows)
    df.attrs["intensity_asymptote"] = float(F1 / A1)
    df.attrs["ridge_point"] = R
    df.attrs["ridge_subbatch"] = ridge_b
    return df


def mark_points(df: pd.DataFrame) -> dict:
    """Subbatches of the ridge, saturation and chosen points (see module docstring)."""
    ridge = df.attrs["ridge_point"]
    asym = df.attrs["intensity_asymptote"]

    def first(mask) -> int | None:
        hits = df.loc[mask, "subbatch"]
        return int(hits.iloc[0]) if len(hits) else None

    best = df["per_op_s_per_sample"].min()
    return dict(ridge=first(df["intensity"] >= ridge), saturation=first(df["intensity"] >= SATURATION * asym),
                chosen=first(df["on_grid"] & (df["per_op_s_per_sample"] <= (1 + TOLERANCE) * best)),
                ridge_subbatch=df.attrs.get("ridge_subbatch"))


def choose_subbatch(domain: str) -> dict:
    """The marked points for one domain of Table 3 at its projected size."""
    dom = DOMAINS[domain]
    opts = dict(dom.fixed)
    opts[dom.size_option] = size_for_params(dom, dom.table3_params)
    return mark_points(sweep(domain, opts)) | dict(domain=domain, table3_subbatch=dom.subbatch)


def run(quick: bool = False) -> pd.DataFrame:
    """The Figure 11 sweep of the word LM, with its ridge / saturation / chosen points."""
    name, options = QUICK_WORKLOAD if quick else WORKLOAD
    df = sweep(name, options, QUICK_BATCHES if quick else BATCHES)
    points = mark_points(df)
    marked = {k: points[k] for k in ("ridge", "saturation", "chosen")}
    for key, b in marked.items():
        df[f"is_{key}"] = df["subbatch"] == b
    df["footprint_min_gb"] = np.nan
    for key, b in marked.items():
        if b is not None:
            g = build_workload(name, batch=b, **options)
            df.loc[df["subbatch"] == b, "footprint_min_gb"] = units.to_gib(g.footprint_min_bytes())
    notes = [
        f"{name} {options}: ridge point {df.attrs['ridge_point']:.1f} FLOP/B reached at subbatch {points['ridge']}; "
        f"intensity asymptote {df.attrs['intensity_asymptote']:.0f} FLOP/B, {SATURATION:.0%} of it at subbatch "
        f"{points['saturation']}; chosen (time/sample within {TOLERANCE:.0%} of the minimum) {points['chosen']}.",
    ]
    if points["ridge_subbatch"] and points["chosen"]:
        notes.append(f"intensity equals the ridge point at subbatch {points['ridge_subbatch']:.1f}; chosen / that = "
                     f"{points['chosen'] / points['ridge_subbatch']:.2f} (paper: about 1.5 for recurrent networks); "
                     "Table 3 uses 128 for the word LM.")
        r = df.loc[df["subbatch"] == points["ridge"]].iloc[0]
        c = df.loc[df["subbatch"] == points["chosen"]].iloc[0]
        best = df["per_op_s_per_sample"].min()
        notes.append(f"per-op utilization {r['per_op_utilization']:.0%} at the ridge point "
                     f"({1 - best / r['per_op_s_per_sample']:.0%} throughput loss), "
                     f"{c['per_op_utilization']:.0%} at the chosen point (paper: 79% at its choice, 40% "
                     "throughput loss at the ridge point).")
        u = df.loc[df["subbatch"] == points["ridge"]].iloc[0]
        best_u = df["per_op_s_per_sample_unfused"].min()
        notes.append(f"unfused accumulation: {1 - best_u / u['per_op_s_per_sample_unfused']:.0%} throughput loss at "
                     f"the ridge point; time/sample within {TOLERANCE:.0%} of its minimum only from subbatch "
                     f"{int(df.loc[df['per_op_s_per_sample_unfused'] <= (1 + TOLERANCE) * best_u, 'subbatch'].iloc[0])}.")
    if not quick:
        for dom in ("charlm", "nmt", "speech"):
            p = choose_subbatch(dom)
            notes.append(f"{dom} at its Table 3 size: intensity at the ridge point at subbatch "
                         f"{p['ridge_subbatch']:.1f}, chosen {p['chosen']} (Table 3: {p['table3_subbatch']}; "
                         f"{p['chosen'] / p['ridge_subbatch']:.2f}x the ridge subbatch), saturation {p['saturation']}.")
    df.attrs["notes"] = notes
    return df


def plot(df: pd.DataFrame, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(df["subbatch"], df["intensity"], color="tab:blue", label="Graph-level op intensity (left)")
    ax.axhline(df.attrs.get("ridge_point", 17.4), color="tab:blue", ls=":", label="Accelerator ridge point (left)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("Subbatch size (log scale)")
    ax.set_ylabel("Op intensity (FLOP/B, log scale)")
    ax2 = ax.twinx()
    ax2.plot(df["subbatch"], df["per_op_s_per_sample"], color="tab:orange", label="Step time / subbatch sample (right)")
    ax2.set_yscale("log", base=2)
    ax2.set_ylabel("Train step time / sample (s)")
    marks = (("ridge", "tab:blue", ax, "intensity", "o", "ridge subbatch (intensity = ridge point)"),
             ("saturation", "tab:green", ax, "intensity", "s", "saturation subbatch"),
             ("chosen", "tab:orange", ax2, "per_op_s_per_sample", "*", "chosen subbatch"))
    for key, color, axis, col, marker, label in marks:
        sel = df[df[f"is_{key}"].astype(bool)] if f"is_{key}" in df.columns else df.iloc[:0]
        if len(sel):  # only marks that are drawn get a legend entry
            axis.plot(sel["subbatch"], sel[col], marker, color=color, ms=8, ls="none",
                      label=f"{label}: {int(sel['subbatch'].iloc[0])}")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper center", fontsize=7, bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax.set_title(f"Subbatch effect: {df['workload'].iloc[0]} (cf. PPoPP 2019 Fig. 11)", fontsize=9)
    fig.tight_layout()
    path = Path(out_dir) / "subbatch.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    from distsim.experiments._runner import script_main

    raise SystemExit(script_main(run, plot))
