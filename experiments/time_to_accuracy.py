"""Time to accuracy of the word LM versus model size and batch on ``paper-v100``.

Seed 000's question: larger models take fewer steps to converge but each step
costs more; which wins?  For a target validation loss, the Table 1 word-LM
learning curve gives the data needed and its model-size law the smallest
model that fits it; seed 000's ``steps = a D / M^k + b`` and the critical-batch
law give the steps; a step-time provider prices each step on the Table 4
accelerator.  Time to target = steps x step time.

A larger model reaches the target sooner exactly where the steps fall faster
with model size than the step time grows (``steps_elasticity >
step_time_elasticity``, both as -d ln / d ln params and d ln / d ln params);
past that the hardware's cost per step wins.  The steps-law constants are
illustrative (seed 000 gives the form only), so the full run also sweeps the
exponent k (seed 000: Adam "makes it steeper").

The step time comes from ``distsim.costmodels.analyze_step`` when that module
exists and otherwise from the Table 2 first-order roofline; the
``step_time_source`` column says which.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from distsim import units
from distsim.scaling import TABLE1
from distsim.scaling.steps import WORDLM_CRITICAL_BATCH, WORDLM_STEPS
from distsim.scaling.tta import table2_step_time_s, time_to_accuracy, wordlm_hidden_for_params, wordlm_params

VOCAB = 10004  # seed 000: top 10,000 words (Catamount's graph: 10,004 with specials)
SEQ_LEN = 80
LAYERS = 2
DEVICE = "paper-v100"
TARGET_LOSS = 4.5  # nat/word: ~1% of the Billion Word data on the Table 1 curve (seed 000 used 0.1%-10%)

FULL_HIDDEN = (1344, 1536, 1792, 2048, 2560, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768)
QUICK_HIDDEN = (1536, 2560, 8192)
FULL_BATCH = (32, 128, 512)
QUICK_BATCH = (128,)
FULL_K_MODEL = (1.0, 1.5)  # 1.0: seed 000's reciprocal form; 1.5: a steeper curve (illustrative)
QUICK_K_MODEL = (1.0, 1.5)

FALLBACK_SOURCE = "table2-roofline (fallback: distsim.costmodels not available)"
COSTMODEL_SOURCE = "distsim.costmodels.analyze_step roofline_step_s"


def default_step_time_provider():
    """``(provider, source)``: the simulator's cost model if present, else Table 2's roofline.

    The cost-model path prices ``build_workload("wordlm", hidden=h, batch=b,
    seq_len=80, layers=2, vocab=10004)`` on ``get_device("paper-v100")``.
    The fallback is :func:`distsim.scaling.tta.table2_step_time_s`.
    """
    try:
        from distsim.costmodels import analyze_step
        from distsim.device import get_device
        from distsim.workload import build_workload
    except ImportError:
        return table2_step_time_s, FALLBACK_SOURCE
    device = get_device(DEVICE)

    def provider(params: float, batch: int) -> float:
        h = wordlm_hidden_for_params(params, VOCAB)
        work = build_workload("wordlm", hidden=h, batch=batch, seq_len=SEQ_LEN, layers=LAYERS, vocab=VOCAB)
        return analyze_step(work, device)["roofline_step_s"]

    return provider, COSTMODEL_SOURCE


def steps_law_for(k_model: float, anchor_params: float):
    """:data:`WORDLM_STEPS` with exponent ``k_model``, rescaled so that every
    exponent gives the same steps at ``anchor_params`` (the smallest model
    that fits the data): ``a_k = a_1 * anchor**(k - 1)``."""
    base = WORDLM_STEPS
    a = base.a_steps * anchor_params ** (k_model - base.k_model)
    return replace(base, a_steps=a, k_model=k_model)


def _elasticity(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d ln y / d ln x by finite differences (one-sided at the ends)."""
    if len(x) < 2:
        return np.zeros(len(x))
    return np.gradient(np.log(y), np.log(x))


def run(quick: bool = False, *, step_time_provider=None) -> pd.DataFrame:
    """Sweep hidden size x batch (x steps exponent); one row per point."""
    provider, source = step_time_provider or default_step_time_provider()
    dom = TABLE1["wordlm"]
    curve, size_law = dom.learning_curve, dom.model_size_law
    hiddens = QUICK_HIDDEN if quick else FULL_HIDDEN
    batches = QUICK_BATCH if quick else FULL_BATCH
    ks = QUICK_K_MODEL if quick else FULL_K_MODEL
    need = float(size_law.params(curve.data_for_error(TARGET_LOSS)))
    sizes = [(h, wordlm_params(h, VOCAB)) for h in hiddens]
    too_small = [h for h, p in sizes if p < need]
    sizes = [(h, p) for h, p in sizes if p >= need]
    rows = []
    for k, batch, (h, params) in itertools.product(ks, batches, sizes):
        steps_law = steps_law_for(k, need)
        r = time_to_accuracy(
            target_error=TARGET_LOSS, params=params, batch=batch, step_time_s=provider,
            curve=curve, size_law=size_law, steps_law=steps_law, batch_law=WORDLM_CRITICAL_BATCH,
        )
        rows.append({
            "k_model": k, "batch": batch, "hidden": h, "params": params,
            "target_loss": TARGET_LOSS, "data_words": r.data_samples, "min_params": r.min_params,
            "steps": r.steps, "step_time_s": r.step_time_s, "time_to_target_s": r.time_s,
            "time_to_target_days": units.to_days(r.time_s),
            "batch_regime": WORDLM_CRITICAL_BATCH.classify(batch).value,
            "step_time_source": source,
            "steps_source": "illustrative (seed 000 form a D/M^k + b)",
        })
    df = pd.DataFrame(rows)
    parts = []
    for _, g in df.groupby(["k_model", "batch"], sort=True):
        g = g.sort_values("params").copy()
        x = g["params"].to_numpy(float)
        g["steps_elasticity"] = -_elasticity(g["steps"].to_numpy(float), x)
        g["step_time_elasticity"] = _elasticity(g["step_time_s"].to_numpy(float), x)
        best = int(np.argmin(g["time_to_target_s"].to_numpy()))
        g["fastest_for_batch"] = np.arange(len(g)) == best
        g["regime"] = np.where(
            np.arange(len(g)) < best, "larger model faster",
            np.where(np.arange(len(g)) == best, "fastest", "step cost wins"),
        )
        parts.append(g)
    df = pd.concat(parts, ignore_index=True)
    df.attrs["notes"] = _notes(df, need, too_small, source)
    return df


def _notes(df: pd.DataFrame, need: float, too_small: list[int], source: str) -> list[str]:
    notes = [
        f"target {TARGET_LOSS} nat/word needs {df['data_words'].iloc[0]:.3g} words on the Table 1 word-LM curve "
        f"and at least {need:.3g} parameters (Table 1 model-size law)"
        + (f"; hidden sizes {too_small} are too small and left out" if too_small else "") + ".",
        f"step time from: {source}.",
        "steps law and critical batch (b_noise = "
        f"{WORDLM_CRITICAL_BATCH.b_noise:g}) are illustrative; regime 'larger model faster' marks sizes "
        "below the fastest one at that batch and exponent, 'step cost wins' those above it.",
    ]
    for k, g in df.groupby("k_model", sort=True):
        faster = g["regime"].eq("larger model faster")
        notes.append(
            f"k={k:g}: step time grows with elasticity {g['step_time_elasticity'].min():.2f}-"
            f"{g['step_time_elasticity'].max():.2f} in parameters while steps fall with elasticity "
            f"{g['steps_elasticity'].min():.2f}-{g['steps_elasticity'].max():.2f}; "
            + (
                f"{int(faster.sum())} of {len(g)} points are in the 'larger model faster' regime."
                if faster.any()
                else "no larger model is faster: the cost per step grows at least as fast as the steps fall "
                "(seed 000's condition for 'a larger cake, eaten faster' does not hold on this step-time model)."
            )
        )
    for (k, batch), g in df.groupby(["k_model", "batch"], sort=True):
        best = g[g["fastest_for_batch"]].iloc[0]
        smallest = g.iloc[0]
        notes.append(
            f"k={k:g}, batch {batch}: fastest at hidden {int(best['hidden'])} ({best['params']:.3g} params, "
            f"{best['time_to_target_s'] / units.HOUR:.3g} h) vs {smallest['time_to_target_s'] / units.HOUR:.3g} h for the "
            f"smallest ({smallest['params']:.3g} params)."
        )
    return notes


def plot(df: pd.DataFrame, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Three panels, one quantity each: time to target (h), steps to target, step time (s).
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for (k, batch), g in df.groupby(["k_model", "batch"], sort=True):
        style = "-" if k == df["k_model"].min() else "--"
        line, = axes[0].plot(g["params"], g["time_to_target_s"] / units.HOUR, style, marker="o", ms=3,
                             label=f"batch {batch}, k={k:g}")
        best = g[g["fastest_for_batch"]]
        axes[0].plot(best["params"], best["time_to_target_s"] / units.HOUR, "*", ms=12, color=line.get_color(), ls="none")
        axes[1].plot(g["params"], g["steps"], style, color=line.get_color(), label=f"batch {batch}, k={k:g}")
    first = df[(df["k_model"] == df["k_model"].min())]
    for batch, g in first.groupby("batch"):
        axes[2].plot(g["params"], g["step_time_s"], "-", marker=".", label=f"batch {batch}")
    axes[0].plot([], [], "*", color="0.3", ms=10, ls="none", label="fastest for its batch")
    axes[0].set(xscale="log", yscale="log", xlabel="parameters", ylabel="time to target (hours)",
                title=f"word LM to {TARGET_LOSS} nat/word on {DEVICE}")
    axes[1].set(xscale="log", yscale="log", xlabel="parameters", ylabel="steps to target",
                title="steps to target")
    axes[2].set(xscale="log", yscale="log", xlabel="parameters", ylabel="step time (s)",
                title="time per training step")
    for ax, size in zip(axes, (7, 7, 7)):
        ax.title.set_fontsize(9)
        ax.legend(fontsize=size)
    src = df["step_time_source"].iloc[0]
    fig.text(0.01, 0.01, f"step time: {src}; steps law illustrative", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = Path(out_dir) / "time_to_accuracy.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    from distsim.experiments._runner import script_main

    raise SystemExit(script_main(run, plot))
