"""Table 5 of Hestness et al., PPoPP 2019 (page 10), all six rows.

Paper comparisons cite the row and state the tolerance (issue 10): rows 2-4 days within 5% and
utilization within 3 points, rows 5-6 days within 10% and utilization within 3 points, with the
cache-aware model = Coleman & McKinley tile size selection on the 6 MiB L2.  What the planner adds
on top of the baseline (communication overhead, layer-parallel speed-up) is checked against what
the paper's own numbers imply.  Regression pins of our own output are labelled as such.
"""

import json

import pytest

from distsim.cli import main
from distsim.experiments import table5


@pytest.fixture(scope="module")
def rows():
    return table5.run(quick=True).to_dict(orient="records")


def test_row1_roofline_baseline(rows):
    r = rows[0]
    assert r["days_per_epoch"] == pytest.approx(2707, rel=0.03)  # Table 5 row 1
    assert r["utilization"] == pytest.approx(0.80, abs=0.005)
    assert r["memory_gib"][0] == pytest.approx(113.8, rel=0.05)


# Table 5 (PPoPP 2019): row index, days/epoch (row 2: the text's 4671, see TYPO_NOTE), utilization,
# relative tolerance on days, absolute tolerance on utilization.
PAPER_ROWS = [
    (1, 4671, 0.46, 0.05, 0.03),   # row 2, cache-hierarchy-aware baseline
    (2, 6.2, 0.34, 0.05, 0.03),    # row 3, 1024-way data parallelism
    (3, 11.1, 0.38, 0.05, 0.03),   # row 4, 512-way data parallelism
    (4, 7.2, 0.145, 0.10, 0.03),   # row 5, + layer parallelism
    (5, 7.2, 0.145, 0.10, 0.03),   # row 6, + sharded embedding
]


@pytest.mark.parametrize("row, days, util, rel_days, abs_util", PAPER_ROWS)
def test_rows_2_to_6_match_the_paper(rows, row, days, util, rel_days, abs_util):
    """Table 5 rows 2-6 (days/epoch, algorithmic FLOP utilization) with the TSS cache-aware model."""
    r = rows[row]
    assert r["days_per_epoch"] == pytest.approx(days, rel=rel_days)
    assert r["utilization"] == pytest.approx(util, abs=abs_util)
    assert r["l2_cache_mib"] == 6


def test_row2_regression_pin(rows):
    """Regression pin (our output, not the paper): cache-aware step 16.25 s, 48.7%, 4454 days.
    Slower than roofline and per-op, as the paper's ordering implies (Table 5 rows 1-2)."""
    r = rows[1]
    assert r["step_s"] == pytest.approx(16.25, abs=0.01)
    assert r["days_per_epoch"] > rows[0]["days_per_epoch"]


def test_typo_note_in_output(capsys):
    assert main(["experiment", "table5", "--quick"]) == 0
    assert "4071" in capsys.readouterr().out


def test_json_keys(capsys):
    assert main(["experiment", "table5", "--json", "--quick"]) == 0
    doc = json.loads(capsys.readouterr().out)
    recs = doc["rows"]
    for key in ("stage", "accelerators", "batch", "memory_gib", "l2_cache_mib", "days_per_epoch", "utilization"):
        assert key in recs[0]
    assert isinstance(recs[0]["memory_gib"], list)
    assert any("4071" in note for note in doc["notes"])  # the notes survive --json


def test_report_fits_120_columns_and_reads_like_the_paper(capsys):
    """The text report: ours beside the paper (Table 5's days 2707, 4671, 6.2, 11.1, 7.2, 7.2) with a difference."""
    assert main(["experiment", "table5", "--quick"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 120
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("#  configuration") and "days/epoch" in line)
    assert "paper" in header and "diff" in header
    for days in ("2707", "4671", "6.2", "11.1", "7.2"):
        assert any(days in line for line in lines if line[:1].isdigit())
    assert "memory GiB per accelerator" in out and "note:" in out


def test_out_writes_csv(tmp_path):
    assert main(["experiment", "table5", "--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "table5.csv").exists()



def test_paper_step_is_derived_from_utilization(rows):
    # Table 5 row 2: 46% at 123.9 TFLOP/step on a 15.67 TFLOP/s accelerator -> ~17.2 s (§6.1)
    assert rows[1]["paper_step_s"] == pytest.approx(17.19, rel=0.01)


@pytest.mark.parametrize("row, paper_overhead_s", [(2, 6.07), (3, 3.62)])
def test_data_parallel_overhead_matches_paper(rows, row, paper_overhead_s):
    """Table 5 rows 3-4 vs row 2: the paper's step grows by 3.62 s (512 workers, 38%) and 6.07 s
    (1024, 34%) over the cache-aware baseline.  The per-hop latency was fitted to their difference
    (2.45 s); each overhead on its own is then a prediction (within 5%)."""
    overhead = rows[row]["step_s"] - rows[1]["step_s"]
    assert overhead == pytest.approx(rows[row]["paper_step_s"] - rows[1]["paper_step_s"], rel=0.05)
    assert overhead == pytest.approx(paper_overhead_s, rel=0.05)


def test_data_parallel_rows_shape(rows):
    """Rows 3-4: 1024 and 512 workers, batch = 128 x workers, 1024 faster but less utilized (Table 5)."""
    r3, r4 = rows[2], rows[3]
    assert (r3["accelerators"], r3["batch"]) == (1024, 131072)
    assert (r4["accelerators"], r4["batch"]) == (512, 65536)
    assert r3["days_per_epoch"] < r4["days_per_epoch"]
    assert r3["utilization"] < r4["utilization"] < rows[1]["utilization"]
    # regression pins (our output): 5.97 and 10.62 days
    assert r3["days_per_epoch"] == pytest.approx(5.97, rel=0.01)
    assert r4["days_per_epoch"] == pytest.approx(10.62, rel=0.01)


@pytest.mark.parametrize("row", [2, 3])
def test_data_parallel_memory(rows, row):
    """Table 5 rows 3-4: 125.7 GB per accelerator (within 10%)."""
    assert rows[row]["memory_gib"][0] == pytest.approx(125.7, rel=0.10)


@pytest.mark.parametrize("row", [4, 5])
def test_layer_parallel_speedup(rows, row):
    """Table 5 rows 4-6: 512 workers go from 38% to 14.5% on 4x the accelerators, a step
    20.8 s -> 13.6 s (1.53x faster).  Ours: wavefront schedule, within 5% of that ratio
    (1.52x and 1.55x: the TSS re-streaming time sits in the LSTM layers, which layer parallelism
    pipelines)."""
    ours = rows[3]["step_s"] / rows[row]["step_s"]
    paper = rows[3]["paper_step_s"] / rows[row]["paper_step_s"]
    assert paper == pytest.approx(1.53, abs=0.01)
    assert ours == pytest.approx(paper, rel=0.05)
    assert rows[row]["accelerators"] == 2048 and rows[row]["batch"] == 65536


def test_layer_parallel_memory(rows):
    """Table 5 row 5: {60, 17, 17, 32}.  The embedding accelerator holds the 59.5 GiB table (within
    10%); the output accelerator and the LSTM accelerators' own peak (weights + gradient accumulator + per-step gradient +
    all-reduce buffer) is ~48.6 GiB, not 17 (residual, docs/reproduction.md)."""
    mem = rows[4]["memory_gib"]
    assert len(mem) == 4
    assert mem[0] == pytest.approx(60, rel=0.10)
    assert mem[1] == mem[2] == pytest.approx(48.6, abs=0.2)
    # output accelerator: 27.8 GiB vs the printed 32 (-13%, beyond 10%: residual, docs/reproduction.md)
    assert mem[3] == pytest.approx(27.8, abs=0.2)


def test_sharded_embedding(rows):
    """Table 5 row 6: 3 pieces on the embedding and LSTM accelerators even out their footprints
    with trivial run-time overhead (7.2 days both rows)."""
    r5, r6 = rows[4], rows[5]
    assert r6["days_per_epoch"] == pytest.approx(r5["days_per_epoch"], rel=0.05)
    mem = r6["memory_gib"]
    assert max(mem[:3]) - min(mem[:3]) <= 0.2  # balanced pieces
    assert max(mem) < max(r5["memory_gib"])
    assert sum(r6["shard_fractions"]) == pytest.approx(1.0, abs=1e-3)
