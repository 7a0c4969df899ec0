"""`distsim plan` from the command line, on a tiny word LM that runs in about a second."""

from __future__ import annotations

import json

import pytest

from distsim.cli import main

TINY = ["plan", "wordlm", "--set", "hidden=64", "--set", "vocab=1000", "--set", "seq_len=4", "--set", "batch=8",
        "--dataset", "billion-word", "--data-parallel", "1,8", "--max-stages", "2", "--latency-us", "0",
        "--no-progress"]
FITS = ["--memory-gb", "0.0008"]  # 8e5 bytes: some plans fit


def test_json_records_are_the_frontier(capsys):
    assert main(TINY + FITS + ["--json", "--target-days", "0.0005"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert rows and all(r["pareto"] and r["fits"] for r in rows)
    for key in ("plan", "accelerators", "days_per_epoch", "utilization", "memory_gib", "meets_target"):
        assert key in rows[0]
    assert "best plan for <= 0.0005 days/epoch" in captured.err


def test_all_lists_every_fitting_plan(capsys):
    assert main(TINY + FITS + ["--json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert main(TINY + FITS + ["--json", "--all"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert len(every) > len(front) and {r["plan"] for r in front} <= {r["plan"] for r in every}


def test_text_ends_with_the_best_plan(capsys):
    assert main(TINY + FITS + ["--target-days", "0.0005"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("hardware: paper-2019: paper-v100") and "56 GB/s links, 0 us per hop" in lines[0]
    assert lines[1].startswith("searched ") and "memory checks" in lines[1]
    assert lines[2].split()[:3] == ["plan", "accel", "batch"]
    assert lines[-1].startswith("best plan for <= 0.0005 days/epoch: dp")
    assert "accelerators" in lines[-1] and "GiB" in lines[-1]


def test_unreachable_target_names_the_fastest(capsys):
    assert main(TINY + FITS + ["--target-days", "1e-9"]) == 0
    assert "no fitting plan reaches 1e-09 days/epoch; fastest: dp" in capsys.readouterr().out


def test_nothing_fits_is_not_an_error(capsys):
    assert main(TINY + ["--memory-gb", "0.0002"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("no plan fits in 0.000186 GiB per accelerator; closest: dp") and "over by" in last


def test_out_writes_csv_and_png(tmp_path, capsys):
    assert main(TINY + FITS + ["--out", str(tmp_path)]) == 0
    assert (tmp_path / "plans.csv").read_text().startswith("plan,")
    assert (tmp_path / "plans.png").stat().st_size > 0
    assert list((tmp_path / "results").glob("part-*.parquet"))  # the results store
    capsys.readouterr()
    assert main(TINY + FITS + ["--out", str(tmp_path), "--json"]) == 0  # from the store: the same plans
    from_store = json.loads(capsys.readouterr().out)
    assert main(TINY + FITS + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == from_store


@pytest.mark.parametrize("extra,needle", [
    (["--device", "nosuch"], "unknown device 'nosuch'"),
    (["--memory-gib", "-3"], "--memory-GiB must be positive, got -3.0"),
    (["--memory-gb", "0"], "--memory-GB must be positive"),
    (["--target-days", "-1"], "--target-days must be positive"),
    (["--max-accelerators", "0"], "--max-accelerators must be a positive integer"),
    (["--link-GBps", "-5"], "--link-GBps must be positive"),
    (["--latency-us", "-1"], "--latency-us must be non-negative"),
    (["--data-parallel", "4,x"], "--data-parallel expects comma-separated integers"),
    (["--data-parallel", "0"], "--data-parallel entry must be a positive integer"),
    (["--preset", "nope"], "unknown preset 'nope' for wordlm"),
    (["--set", "hiden=3"], "unknown option 'hiden'"),
    (["--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    (["--workers", "0"], "--workers must be a positive integer"),
])
def test_bad_input_exit_2_one_line(capsys, extra, needle):
    assert main(TINY + extra) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_unknown_workload(capsys):
    assert main(["plan", "nosuch"]) == 2
    assert "unknown workload 'nosuch'" in capsys.readouterr().err


def test_case_study_quick_experiment():
    """The planner's answer for the case study on 32 GiB (quick: 512 workers, fused, chunked): only the
    five-stage split with the table sharded over all five accelerators fits."""
    from distsim.experiments import plan_search

    df = plan_search.run(quick=True)
    assert list(df["plan"]) == ["dp512 x [embedding | lstm0 | lstm1 | output | step] shard5 fused-acc chunked-buffers"]
    row = df.iloc[0]
    assert row["accelerators"] == 2560 and row["max_memory_gib"] <= 32 and row["meets_target"]
