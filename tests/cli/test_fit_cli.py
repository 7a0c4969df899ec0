"""``distsim fit`` and ``distsim experiment`` on the scaling experiments, through distsim.cli.main."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distsim.cli import main


@pytest.fixture
def curve_csv(tmp_path):
    m = np.logspace(5, 9, 6)
    path = tmp_path / "curve.csv"
    lines = ["data,loss,other"] + [f"{x:.6g},{13.0 * x**-0.066:.12g},1" for x in m]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_json(curve_csv, capsys):
    assert main(["fit", "learning-curve", str(curve_csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["law"] == "learning-curve" and out["n_points"] == 6
    assert out["constants"]["alpha"] == pytest.approx(13.0, rel=1e-6)
    assert out["constants"]["beta_g"] == pytest.approx(-0.066, rel=1e-6)
    assert out["r2_log"] == pytest.approx(1.0)
    assert len(out["intervals"]["beta_g"]) == 2


def test_fit_text_with_columns(curve_csv, capsys):
    assert main(["fit", "model-size", str(curve_csv), "--x", "data", "--y", "loss"]) == 0
    out = capsys.readouterr().out
    assert "sigma =" in out and "beta_p =" in out and "R^2" in out


@pytest.mark.parametrize(
    "content, args, match",
    [("data,loss\n1e6,5\n1e7,4\n", [], "at least 3 points"),
     ("data,loss\n1e6,5\n1e6,4\n1e6,3\n", [], "all x are equal"),
     ("data,loss\n1e6,5\n1e7,\n1e8,3\n", [], "non-finite"),
     ("data,loss\n1e6,5\n1e7,-4\n1e8,3\n", [], "must be positive"),
     ("data,loss\n1e6,5\n1e7,abc\n1e8,3\n", [], "non-numeric"),
     ("data,loss\n1e6,5\n1e7,4\n1e8,3\n", ["--y", "steps"], "column 'steps' not in"),
     ("", [], "cannot read")],
)
def test_fit_bad_input_exit_2(tmp_path, capsys, content, args, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["fit", "learning-curve", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distsim fit: error:") and match in err
    assert err.count("\n") == 1


def test_fit_unknown_law_and_missing_file(tmp_path, capsys):
    assert main(["fit", "nope", str(tmp_path / "x.csv")]) == 2
    assert "unknown law 'nope'" in capsys.readouterr().err
    assert main(["fit", "steps", str(tmp_path / "x.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_experiment_table1_json(capsys):
    assert main(["experiment", "table1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["domain"] for r in rows] == ["wordlm", "charlm", "nmt", "speech", "resnet"]
    keys = {"data_scale", "model_scale", "target_data", "target_params"}
    for r in rows:
        assert keys | {f"paper_{k}" for k in keys} <= r.keys()
        assert all(v is not None for v in r.values())
