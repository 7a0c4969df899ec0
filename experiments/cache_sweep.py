"""How much L2 does the word-LM case study need?  Step time and utilization over the cache size.

The case-study LSTM-p graph (Table 5's, subbatch 128, one accelerator) is
timed with the L2 capacity swept from 1 MiB to 256 MiB, everything else of
the device fixed, under two cost models (``distsim/costmodels/``):

- ``cache_aware``: the paper's model, matmuls tiled with Coleman & McKinley's
  tile size selection (TSS) for a direct-mapped cache;
- ``tiled_best``: the best square-tile blocking per matmul (the optimistic
  bound a tuned library approaches).

Devices: ``paper-v100`` (Table 4, 6 MiB L2) and one modern part,
``a100-sxm4-80gb`` (40 MiB L2, fp32 as the graph).  ``per_op`` (no
re-streaming, i.e. an unbounded cache) is each device's floor.

TSS depends on the arithmetic of the cache size and the matrices' leading
dimensions (the Euclidean algorithm on the two), so its curve is not
monotone: a power-of-two cache can hold fewer whole rows than a slightly
smaller one.  The notes give, per device and model, the smallest swept cache
whose step is within 1% of the floor, the paper's binary-versus-decimal
"6 MB" and which operand TSS keeps resident (docs/reproduction.md).
``--quick``: four cache sizes.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from distsim import units
from distsim.costmodels import get_cost_model, per_op_step_s, utilization
from distsim.costmodels.cache_aware import CacheAware
from distsim.datasets import WORDLM_TARGET
from distsim.device import get_device
from distsim.workload import build_workload
from distsim.workloads.wordlm import PRESETS

DEVICES = ("paper-v100", "a100-sxm4-80gb")
MODELS = ("cache_aware", "tiled_best")
CACHE_MIB = (1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 50, 64, 80, 96, 128, 160, 192, 256)
QUICK_CACHE_MIB = (1, 6, 40, 256)
#: A step within this fraction of the per-op floor counts as "the cache no longer matters".
FLOOR_TOLERANCE = 0.01
#: Resident operand / layout alternatives of the TSS model compared in the notes (the registered one first).
ALTERNATIVES = (("A", "row"), ("A", "col"), ("B", "row"), ("B", "col"), ("C", "row"))


def _step(graph, device, model) -> float:
    return float(model.op_times_s(graph, device).sum())


def run(quick: bool = False) -> pd.DataFrame:
    graph = build_workload("wordlm", **PRESETS["case-study"])
    steps = WORDLM_TARGET.steps_per_epoch(graph.dims["batch"])
    rows = []
    floors = {}
    for name in DEVICES:
        device = get_device(name)
        floors[name] = per_op_step_s(graph, device)
    for name, model_name, mib in itertools.product(DEVICES, MODELS, QUICK_CACHE_MIB if quick else CACHE_MIB):
        base = get_device(name)
        device = base.with_(cache_bytes=mib * units.MiB)
        model = get_cost_model(model_name)
        seconds = _step(graph, device, model)
        rows.append(dict(device=name, cost_model=model_name, cache_mib=float(mib),
                         is_device_l2=bool(mib * units.MiB == base.cache_bytes), step_s=seconds,
                         utilization=utilization(graph.flops, device, seconds),
                         days_per_epoch=units.to_days(steps * seconds),
                         traffic_tb=float(model.op_bytes(graph, device).sum()) / units.TB,
                         per_op_step_s=floors[name]))
    df = pd.DataFrame(rows)
    df.attrs["notes"] = _notes(df, graph, quick)
    return df


def _notes(df: pd.DataFrame, graph, quick: bool) -> list[str]:
    out = []
    if quick:
        out.append(f"--quick: caches {', '.join(f'{c:g}' for c in QUICK_CACHE_MIB)} MiB only.")
    for (name, model), sel in df.groupby(["device", "cost_model"], sort=False):
        floor = sel["per_op_step_s"].iloc[0]
        near = sel[sel["step_s"] <= floor * (1 + FLOOR_TOLERANCE)]
        own = sel[sel["is_device_l2"]]
        where = (f"reaches the per-op floor ({floor:.2f} s) from {near['cache_mib'].min():g} MiB of the swept sizes"
                 if len(near) else f"stays above the per-op floor ({floor:.2f} s) at every swept size")
        first = sel.iloc[0]
        own_text = (f"; at its own L2 ({own['cache_mib'].iloc[0]:g} MiB) {own['step_s'].iloc[0]:.2f} s, "
                    f"{own['utilization'].iloc[0]:.1%}" if len(own) else "")
        out.append(f"{name}, {model}: {first['step_s']:.2f} s ({first['utilization']:.1%}) at "
                   f"{first['cache_mib']:g} MiB{own_text}; {where}.")
    v100 = get_device("paper-v100")
    for cache_bytes, label in ((6 * units.MiB, "6 MiB"), (6 * units.MB, "6e6 B")):
        device = v100.with_(cache_bytes=cache_bytes)
        parts = []
        for resident, layout in ALTERNATIVES:
            seconds = _step(graph, device, CacheAware(resident, layout))
            parts.append(f"{resident} resident, {layout}-major: {seconds:.2f} s "
                         f"({utilization(graph.flops, device, seconds):.1%})")
        out.append(f"TSS alternatives on paper-v100 with {label}: " + "; ".join(parts)
                   + " (cache_aware = A resident, row-major).")
    return out


def plot(df: pd.DataFrame, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = list(dict.fromkeys(df["device"]))
    fig, axes = plt.subplots(2, len(devices), figsize=(5.2 * len(devices), 6.4), sharex=True, squeeze=False)
    styles = {"cache_aware": ("o-", "tab:red", "cache_aware (TSS, the paper's)"),
              "tiled_best": ("s-", "tab:blue", "tiled_best (best square tiles)")}
    for col, name in enumerate(devices):
        sel = df[df["device"] == name]
        ax_t, ax_u = axes[0][col], axes[1][col]
        for model, (marker, color, label) in styles.items():
            m = sel[sel["cost_model"] == model]
            ax_t.plot(m["cache_mib"], m["step_s"], marker, color=color, ms=3, label=label)
            ax_u.plot(m["cache_mib"], 100 * m["utilization"], marker, color=color, ms=3, label=label)
        floor = sel["per_op_step_s"].iloc[0]
        floor_utilization = sel["utilization"].iloc[0] * sel["step_s"].iloc[0] / floor  # same FLOPs and peak
        ax_t.axhline(floor, color="gray", ls=":", label="per_op (unbounded cache)")
        ax_u.axhline(100 * floor_utilization, color="gray", ls=":", label="per_op (unbounded cache)")
        own = get_device(name).cache_bytes / units.MiB
        for ax in (ax_t, ax_u):
            ax.axvline(own, color="black", lw=0.8, ls="--", label=f"{name} L2 ({own:g} MiB)")
            ax.set_xscale("log", base=2)
            ax.grid(True, alpha=0.3)
        ax_t.set_title(f"{name}: word-LM case study, 1 accelerator", fontsize=9)
        ax_t.set_ylabel("step time (s)")
        ax_u.set_ylabel("algorithmic FLOP utilization (%)")
        ax_u.set_xlabel("L2 cache size (MiB, log scale)")
        ax_u.set_ylim(bottom=0)
        ax_t.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out_dir) / "cache_sweep.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    from distsim.experiments._runner import script_main

    raise SystemExit(script_main(run, plot))
