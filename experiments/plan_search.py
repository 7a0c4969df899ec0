"""Which plans of the word-LM case study fit 32 GiB accelerators, and which reach 7 days per epoch?

Hestness et al. (PPoPP 2019, section 6) split the case-study LSTM-p over
accelerators by hand until it fit and trained an epoch in about a week.  Here
the planner (:func:`distsim.search.search_plans`) tries the whole grid --
data-parallel degree x contiguous stage partition x embedding shards x fused
accumulation x gradient buffers -- on the Table 4 system (``paper-v100``,
32 GiB, 56 GB/s links) and keeps every plan that fits, with the Pareto
frontier over accelerators, days per epoch and utilization marked.

``--quick`` tries only fused accumulation, chunked buffers and 512 workers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from distsim.hardware import paper_hardware
from distsim.search import SearchOptions, best_plan, search_plans
from distsim.workload import build_workload
from distsim.workloads.wordlm import PRESETS

TARGET_DAYS = 7.0


def run(quick: bool = False) -> pd.DataFrame:
    graph = build_workload("wordlm", **PRESETS["case-study"])
    if quick:
        options = SearchOptions(fuse_accumulation=(True,), comm_buffer=("chunked",), progress=False)
        df = search_plans(graph, paper_hardware(), data_parallel=(512,), target_days=TARGET_DAYS, options=options)
    else:
        df = search_plans(graph, paper_hardware(), target_days=TARGET_DAYS)
    best = best_plan(df, TARGET_DAYS)
    df.attrs["notes"] = [
        f"{df.attrs['candidates']} candidate plans, {len(df)} fit in 32 GiB; search took {df.attrs['elapsed_s']:.1f} s",
        "best plan within 7 days/epoch: " + ("none" if best is None else
                                              f"{best['plan']} ({best['accelerators']} accelerators, "
                                              f"{best['days_per_epoch']:.2f} days/epoch)"),
    ]
    return df


def paper_plan() -> dict:
    """The paper's final plan (Table 5's last row): accelerators, days per epoch and its label."""
    from distsim.experiments.table5 import PAPER

    row = PAPER[-1]
    return {"accelerators": row["accelerators"], "days_per_epoch": row["days_per_epoch"],
            "label": f"paper's plan (Table 5: {row['accelerators']} accelerators, {row['days_per_epoch']:g} days)"}


def plot(df: pd.DataFrame, out_dir, name: str = "plan_search", paper: bool = True) -> list[Path]:
    """Days per epoch vs accelerators of every fitting plan, the Pareto frontier joined by a line, the chosen
    plan (star) and, with ``paper``, the paper's plan (Table 5's last row); the legend lists only what is drawn."""
    if not len(df):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    others = df[~df["pareto"].astype(bool)]
    if len(others):
        ax.scatter(others["accelerators"], others["days_per_epoch"], s=12, color="0.65",
                   label="fits in memory (not on the frontier)")
    front = df[df["pareto"].astype(bool)].sort_values("accelerators", kind="mergesort")
    ax.plot(front["accelerators"], front["days_per_epoch"], "o-", color="tab:red", ms=4, zorder=3,
            label="Pareto frontier")
    target = df.attrs.get("target_days")
    best = best_plan(df, target)
    if best is None:
        best = df.sort_values("days_per_epoch", kind="mergesort").iloc[0]
    ax.plot([best["accelerators"]], [best["days_per_epoch"]], "*", ms=18, color="tab:green", ls="none", zorder=1,
            label=f"chosen plan ({int(best['accelerators'])} accelerators, {best['days_per_epoch']:.3g} days)")
    ys = list(df["days_per_epoch"])
    if paper:
        ref = paper_plan()
        ax.plot([ref["accelerators"]], [ref["days_per_epoch"]], "D", ms=7, mfc="none", mec="black", ls="none",
                label=ref["label"])
        ys.append(ref["days_per_epoch"])
    if target is not None:
        ax.axhline(target, color="tab:blue", ls=":", label=f"target {target:g} days per epoch")
        ys.append(target)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(min(ys) / 1.5, max(ys) * 1.5)  # every labelled mark inside the axes
    ax.set_xlabel("accelerators")
    ax.set_ylabel("days per epoch")
    ax.legend(fontsize=7, loc="best")
    ax.set_title("Plans that fit in memory: days per epoch vs accelerators", fontsize=9)
    fig.tight_layout()
    path = Path(out_dir) / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    from distsim.experiments._runner import script_main

    script_main(run, plot)
