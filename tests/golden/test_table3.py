"""Table 3 (PPoPP 2019): each domain at its projected size on the Table 4 accelerator.

Paper values: Hestness et al., PPoPP 2019, Table 3 (facts file): params,
subbatch, TFLOPs/step (1e12), TB/step (1e12), minimal footprint (GiB), roofline
step seconds, days per epoch.  Tolerance 10% per number; the residuals beyond
it (minimal footprints; NMT's row, inconsistent with Table 2; ResNet's TB)
are asserted as documented in docs/reproduction_domains.md.
"""

import pytest

from distsim.experiments import table3
from distsim.experiments._domains import DOMAINS, params_of, size_for_params

TOL = table3.TOLERANCE


def test_quick_run_structure():
    df = table3.run(quick=True)
    assert list(df["domain"]) == ["wordlm", "charlm", "nmt", "speech", "resnet"]
    for key in ("params", "subbatch", "tflops_per_step", "tb_per_step", "min_footprint_gb", "step_s", "epoch_days"):
        assert key in df and (df[key] > 0).all()
    assert list(df["subbatch"]) == [128, 96, 96, 128, 32]
    assert any("NMT" in n for n in df.attrs["notes"])


@pytest.mark.parametrize("name", ["charlm", "nmt", "speech", "resnet"])
def test_model_grows_to_projected_size(name):
    dom = DOMAINS[name]
    assert params_of(dom, size_for_params(dom, dom.table3_params)) == pytest.approx(dom.table3_params, rel=0.01)


@pytest.fixture(scope="module")
def rows():
    return {name: table3.row_for(name) for name in ("charlm", "nmt", "speech", "resnet")}


@pytest.mark.parametrize("name", ["charlm", "speech"])
def test_recurrent_rows_within_10pct(rows, name):
    r = rows[name]
    for key in ("params", "tflops_per_step", "tb_per_step", "step_s", "epoch_days"):
        assert r[f"{key}_rel_diff"] == pytest.approx(0, abs=TOL), (name, key, r[key], r[f"paper_{key}"])


def test_resnet_row(rows):
    r = rows["resnet"]
    for key in ("params", "tflops_per_step", "step_s", "epoch_days"):
        assert abs(r[f"{key}_rel_diff"]) <= TOL, key
    # documented residual: Table 3's 0.4 TB exceeds Table 2's own formula (0.28 TB); ours 0.26
    assert r["tb_per_step"] == pytest.approx(66.7 * 732e6 / 1e12 + 268862 * 32 * 732e6**0.5 / 1e12, rel=0.15)


def test_nmt_row_follows_table2_not_table3(rows):
    """Table 3's NMT row is ~1.8x Table 2's formulas; ours follows Table 2 (documented residual)."""
    r = rows["nmt"]
    p, b = 18.9e9, 96
    assert r["tflops_per_step"] == pytest.approx(149 * b * p / 1e12, rel=0.10)
    assert r["tb_per_step"] == pytest.approx((533 * p + 22653 * b * p**0.5) / 1e12, rel=0.10)
    assert r["tflops_per_step_rel_diff"] < -0.4


@pytest.mark.parametrize("name", ["charlm", "nmt", "speech", "resnet"])
def test_min_footprint_is_a_documented_residual(rows, name):
    """Our traversal's minimal footprint is 15-35% below Table 3's (see docs/reproduction_domains.md)."""
    r = rows[name]
    assert r["min_footprint_gb"] < r["paper_min_footprint_gb"]
    assert r["min_footprint_gb_rel_diff"] > -0.35
    assert r["min_footprint_gb"] * 2**30 > r["params"] * 4  # at least the weights
