"""`distsim experiment cache_sweep`: the case study's step over the L2 size (issue 10).

The sweep has no published counterpart; the checks are the models' invariants and the one
paper point on the sweep (Table 5 row 2: paper-v100 at its 6 MiB L2)."""

import json

import pytest

from distsim.cli import main
from distsim.experiments import cache_sweep


@pytest.fixture(scope="module")
def quick():
    return cache_sweep.run(quick=True)


def test_quick_grid(quick):
    assert len(quick) == len(cache_sweep.DEVICES) * len(cache_sweep.MODELS) * len(cache_sweep.QUICK_CACHE_MIB)
    assert set(quick["device"]) == set(cache_sweep.DEVICES)
    assert set(quick["cost_model"]) == {"cache_aware", "tiled_best"}


def test_never_below_the_per_op_floor(quick):
    """Re-streaming only adds traffic: every step >= the per-op (unbounded cache) step."""
    assert (quick["step_s"] >= quick["per_op_step_s"] * (1 - 1e-12)).all()


def test_cache_knob_moves_the_paper_model(quick):
    """cache_aware: 1 MiB is far slower than the device's own L2, 256 MiB reaches the floor."""
    for device, sel in quick[quick["cost_model"] == "cache_aware"].groupby("device"):
        by = sel.set_index("cache_mib")["step_s"]
        assert by[1.0] > 1.5 * by[256.0], device
        assert by[256.0] == pytest.approx(sel["per_op_step_s"].iloc[0])


def test_paper_v100_at_6_mib_is_table5_row2(quick):
    """Table 5 row 2: 46% utilization at 6 MB (within 3 points, as tests/test_table5.py)."""
    r = quick[(quick["device"] == "paper-v100") & (quick["cost_model"] == "cache_aware") & quick["is_device_l2"]]
    assert len(r) == 1 and r["cache_mib"].iloc[0] == 6
    assert r["utilization"].iloc[0] == pytest.approx(0.46, abs=0.03)


def test_notes_give_alternatives_and_binary_vs_decimal(quick):
    notes = " ".join(quick.attrs["notes"])
    assert "with 6 MiB: A resident, row-major: 16.25 s" in notes  # regression pin, docs/reproduction.md
    assert "with 6e6 B: A resident, row-major: 18.19 s" in notes  # regression pin, docs/reproduction.md


def test_plot_and_cli(quick, tmp_path, capsys):
    paths = cache_sweep.plot(quick, tmp_path)
    assert paths == [tmp_path / "cache_sweep.png"] and paths[0].read_bytes()[:4] == b"\x89PNG"
    assert main(["experiment", "cache_sweep", "--quick", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)["rows"]
    assert {"device", "cost_model", "cache_mib", "step_s", "utilization"} <= set(recs[0])
