"""PPoPP 2019 Table 1: data and model growth needed to reach the desired accuracy.

For each domain, solves the Table 1 learning curve for the data size that
reaches the desired error and the model-size law for the parameters that fit
it, and prints them beside the paper's published projections (Table 1's
"Projected Scale" columns, Table 3's projected data and parameters).

``data_scale`` etc. use the paper's reading (the curve anchored at the
current SOTA); ``data_scale_fit`` uses the fitted curve as printed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from distsim import units
from distsim.scaling import PAPER_PROJECTIONS, TABLE1, project

TOLERANCE = 0.10  # "within 10% of Table 1"

_COMPARED = ("data_scale", "model_scale", "target_data", "target_params")


def _rel(ours: float, paper: float) -> float:
    return ours / paper - 1.0


def run(quick: bool = False) -> pd.DataFrame:
    """One row per Table 1 domain; ``quick`` changes nothing (it is instant)."""
    rows = []
    for name, dom in TABLE1.items():
        sota = project(dom, method="sota")
        fit = project(dom, method="fit")
        paper = PAPER_PROJECTIONS[name]
        row = {
            "domain": name,
            "data_scale": sota.data_scale,
            "model_scale": sota.model_scale,
            "target_data": sota.target_data_samples,
            "target_params": sota.target_params,
            "paper_data_scale": paper["data_scale"],
            "paper_model_scale": paper["model_scale"],
            "paper_target_data": paper["target_data"],
            "paper_target_params": paper["target_params"],
        }
        for key in _COMPARED:
            row[f"{key}_rel_err"] = _rel(row[key], row[f"paper_{key}"])
        row["within_10pct"] = all(abs(row[f"{k}_rel_err"]) <= TOLERANCE for k in _COMPARED)
        row.update(
            sample_unit=dom.sample_unit,
            current_error=dom.current_error,
            desired_error=dom.desired_error,
            error_unit=dom.error_unit,
            fit_error_at_current_data=float(dom.learning_curve.error(dom.current_data_samples)),
            data_scale_fit=fit.data_scale,
            model_scale_fit=fit.model_scale,
            current_params=dom.current_params,
        )
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["notes"] = _notes(df)
    return df


IMAGENET_TRAIN_IMAGES = 1_281_167  # ILSVRC-2012 training set, which Table 1 rounds to 1.3M


def _notes(df: pd.DataFrame) -> list[str]:
    by = df.set_index("domain")
    notes = [
        "method: data_scale = (desired/current)^(1/beta_g) (curve anchored at the current SOTA), "
        "model_scale = data_scale^beta_p, target_data = current data x data_scale, "
        "target_params = 1e6 x sigma x target_data^beta_p (Table 1's sigma gives millions of parameters); "
        "paper_* from PPoPP 2019 Table 1 (scales) and Table 3 (targets).",
        "data_scale_fit solves the printed curve alpha m^beta_g = desired instead; it agrees with the "
        "SOTA reading where the fitted curve passes through the current SOTA "
        "(fit_error_at_current_data vs current_error) and is further from the paper where it does not, "
        "so the paper's reading is the SOTA-anchored one.",
    ]
    if "wordlm" in by.index:
        dom, paper = TABLE1["wordlm"], PAPER_PROJECTIONS["wordlm"]
        rounded = dom.current_data_samples * paper["data_scale"]
        notes.append(
            f"wordlm: {by.loc['wordlm', 'data_scale']:.1f}x data against the paper's {paper['data_scale']:g}x: "
            f"the paper rounded to {paper['data_scale']:g}x and carried the rounding into Table 3 "
            f"({dom.current_data_samples:.3g} x {paper['data_scale']:g} = {rounded:.3g} words, "
            f"p({rounded:.3g}) = {dom.model_size_law.params(rounded):.3g} parameters against "
            f"{paper['target_params']:.3g})."
        )
    if "resnet" in by.index:
        notes.append(
            f"resnet: Table 3's {PAPER_PROJECTIONS['resnet']['target_data']:.3g} images is "
            f"{IMAGENET_TRAIN_IMAGES:,} ImageNet training images x {by.loc['resnet', 'data_scale']:.1f} = "
            f"{IMAGENET_TRAIN_IMAGES * by.loc['resnet', 'data_scale']:.4g}; Table 1 prints 1.3M."
        )
    for name in by.index:
        if by.loc[name, "within_10pct"]:
            continue
        dom, paper = TABLE1[name], PAPER_PROJECTIONS[name]
        ratio = dom.desired_error / dom.current_error
        beta_needed = math.log(ratio) / math.log(paper["data_scale"])
        desired_needed = dom.current_error * paper["data_scale"] ** dom.beta_g
        implied_now = paper["target_params"] / paper["model_scale"]
        sigma_needed = implied_now / units.MEGA / dom.current_data_samples**dom.beta_p
        notes.append(
            f"{name}: not reproduced: {by.loc[name, 'data_scale']:.4g}x data (fit reading "
            f"{by.loc[name, 'data_scale_fit']:.4g}x) against the paper's {paper['data_scale']:g}x, which would need "
            f"beta_g = {beta_needed:.4f} (printed {dom.beta_g:g}) or a desired error of {desired_needed:.3g} "
            f"(printed {dom.desired_error:g}); the paper's model scale {paper['model_scale']:g}x is "
            f"{paper['data_scale']:g}^{dom.beta_p:g} = {paper['data_scale'] ** dom.beta_p:.3g}, so its model column "
            f"follows from its data column"
            + (
                f"; its Table 3 parameters imply a current model of {implied_now:.3g} against "
                f"p(m) = {by.loc[name, 'current_params']:.3g} (sigma = {sigma_needed:.3g} would match, "
                f"printed {dom.sigma:g})."
                if abs(implied_now / by.loc[name, "current_params"] - 1) > TOLERANCE
                else "."
            )
        )
    return notes


def plot(df: pd.DataFrame, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = range(len(df))
    w = 0.2
    ax.bar([i - 1.5 * w for i in x], df["data_scale"], w, label="data x (ours)")
    ax.bar([i - 0.5 * w for i in x], df["paper_data_scale"], w, label="data x (paper)")
    ax.bar([i + 0.5 * w for i in x], df["model_scale"], w, label="model x (ours)")
    ax.bar([i + 1.5 * w for i in x], df["paper_model_scale"], w, label="model x (paper)")
    ax.set_xticks(list(x), df["domain"])
    ax.set_yscale("log")
    ax.set_ylabel("growth to desired accuracy")
    ax.set_title("PPoPP 2019 Table 1 projections")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out_dir) / "table1.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    from distsim.experiments._runner import script_main

    raise SystemExit(script_main(run, plot))
