"""``--trace FILE`` on step, plan and run: a Chrome/Perfetto trace of the simulated step (issue 14).

Structure checked as Perfetto's JSON importer needs it: every event has ph, pid,
tid and ts; complete events (``X``) have a name and a non-negative duration;
events on one track nest (here: never overlap); one process per accelerator
with compute and communication tracks; moved bytes and op FLOPs in args.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from distsim.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--set", "hidden=64", "--set", "vocab=500", "--set", "seq_len=3", "--set", "batch=4"]


def check_structure(doc: dict) -> list[dict]:
    events = doc["traceEvents"]
    assert events
    for e in events:
        assert {"ph", "pid", "tid", "ts", "name"} <= set(e), e
        assert e["ph"] in ("X", "M")
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)
    tracks = defaultdict(list)
    for e in spans:
        tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for intervals in tracks.values():  # nesting valid: sorted by start, each one ends before the next starts
        intervals.sort()
        for (s0, e0), (s1, e1) in zip(intervals, intervals[1:]):
            assert s1 >= e0 - 1e-6 or e1 <= e0 + 1e-6, (s0, e0, s1, e1)
    named = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert set(tracks) <= named  # every track has a name
    return spans


def names(doc: dict, kind: str) -> set[str]:
    return {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == kind}


def test_run_single_plan_trace(tmp_path):
    """The acceptance example: the case study's final plan (5 stages) as a trace."""
    path = tmp_path / "t.json"
    assert main(["run", str(ROOT / "examples" / "case_study_final_plan.yaml"), "--trace", str(path)]) == 0
    doc = json.loads(path.read_text())
    spans = check_structure(doc)
    processes = names(doc, "process_name")
    assert {f"device {i}" for i in range(5)} <= processes  # one per accelerator of a worker
    assert {"compute", "send"} <= {n.split(" #")[0] for n in names(doc, "thread_name")}
    compute = [e for e in spans if e["cat"] == "compute"]
    assert compute and all("flops" in e["args"] and "memory_bytes" in e["args"] for e in compute)
    moved = [e for e in spans if e["cat"] in ("collective", "transfer")]
    assert moved and all(e["args"]["bytes"] > 0 for e in moved)
    assert {e["args"]["layer"] for e in compute} >= {"embedding", "lstm0", "lstm1", "output"}


def test_step_trace_one_accelerator(tmp_path):
    path = tmp_path / "s.json"
    assert main(["step", "wordlm", *SMALL, "--trace", str(path)]) == 0
    doc = json.loads(path.read_text())
    spans = check_structure(doc)
    assert names(doc, "process_name") == {"device 0"}
    assert {e["args"]["phase"] for e in spans} >= {"fwd", "bwd"}


def test_plan_traces_the_chosen_plan(tmp_path, capsys):
    path = tmp_path / "p.json"
    assert main(["plan", "wordlm", *SMALL, "--data-parallel", "2", "--max-stages", "2", "--no-progress",
                 "--trace", str(path)]) == 0
    assert "wrote" in capsys.readouterr().err
    spans = check_structure(json.loads(path.read_text()))
    assert any(e["cat"] == "collective" for e in spans)  # the gradient all-reduce of 2 workers


def test_run_trace_refuses_a_table_of_plans():
    assert main(["run", str(ROOT / "examples" / "small_lm_plans.yaml"), "--trace", "x.json"]) == 2


@pytest.mark.parametrize("target", ["", "missing-dir/t.json"])
def test_trace_target_checked_before_work(target, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["step", "wordlm", "--trace", target])
    assert exc.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
