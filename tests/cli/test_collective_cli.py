"""``distsim collective``: JSON output, nccl-tests bus bandwidth, traces, bad input (exit 2)."""

from __future__ import annotations

import json

import pytest

from distsim.cli import main


def run_json(capsys, *args):
    assert main(["collective", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ring_allreduce_json(capsys):
    out = run_json(capsys, "allreduce", "--nodes", "8", "--bytes", "1e9")
    n, s, b, a = 8, 1e9, 56e9, 1e-6
    t = 2 * (n - 1) * a + 2 * (n - 1) / n * s / b
    assert {"op", "algorithm", "nodes", "bytes", "time_s", "bus_bandwidth_gbps", "events", "wall_s"} <= set(out)
    assert (out["op"], out["algorithm"], out["nodes"], out["bytes"]) == ("allreduce", "ring", 8, 1e9)
    assert out["time_s"] == pytest.approx(t, rel=1e-12)
    assert out["closed_form_s"] == pytest.approx(t, rel=1e-12)
    # nccl-tests: algbw = S/t; busbw = algbw * 2(n-1)/n, in units of 1e9 B/s
    assert out["bus_bandwidth_gbps"] == pytest.approx(s / t * 2 * (n - 1) / n / 1e9)
    assert out["bus_bandwidth_gbps"] < 56 and out["events"] > 0


@pytest.mark.parametrize("op,factor", [("allgather", 7 / 8), ("reducescatter", 7 / 8), ("broadcast", 1.0)])
def test_bus_bandwidth_factors(capsys, op, factor):
    out = run_json(capsys, op, "--nodes", "8", "--bytes", "1e8", "--latency", "0")
    assert out["bus_bandwidth_gbps"] == pytest.approx(1e8 / out["time_s"] * factor / 1e9)


def test_bandwidth_and_latency_flags(capsys):
    out = run_json(capsys, "allreduce", "--nodes", "4", "--bytes", "4e9", "--bandwidth", "1e9", "--latency", "0.5")
    assert out["time_s"] == pytest.approx(2 * 3 * 0.5 + 2 * 3 / 4 * 4)


@pytest.mark.parametrize("args", [
    ["allreduce", "--algorithm", "halving_doubling", "--nodes", "16"],
    ["broadcast", "--algorithm", "tree", "--nodes", "8"],
    ["allreduce", "--algorithm", "hierarchical", "--nodes", "32", "--local-size", "8"],
    ["broadcast", "--nodes", "8", "--chunks", "4"],
    ["allreduce", "--nodes", "16", "--topology", "torus2d", "--mode", "exact"],
])
def test_other_algorithms_run(capsys, args):
    out = run_json(capsys, *args, "--bytes", "1e8")
    assert out["time_s"] > 0
    if out["closed_form_s"] is not None and out["mode"] == "symmetric":
        assert out["time_s"] == pytest.approx(out["closed_form_s"], rel=1e-12)


def test_large_ring_json(capsys):
    out = run_json(capsys, "allreduce", "--nodes", "65536", "--bytes", "1e9")
    assert out["mode"] == "symmetric" and out["wall_s"] < 5


def test_trace_and_text_output(capsys, tmp_path):
    trace = tmp_path / "t.json"
    assert main(["collective", "allreduce", "--nodes", "4", "--bytes", "1e6", "--trace", str(trace)]) == 0
    assert "bus_bandwidth_gbps" in capsys.readouterr().out
    assert json.loads(trace.read_text())["traceEvents"]


def test_topology_file(capsys):
    out = run_json(capsys, "allreduce", "--nodes", "8", "--bytes", "1e8", "--topology",
                   "topologies/presets/dgx_pair.yaml")
    assert out["topology"] == "dgx_pair" and out["nodes"] == 8


@pytest.mark.parametrize("args,message", [
    (["--nodes", "8", "--bytes", "0"], "bytes must be positive, got 0.0"),
    (["--nodes", "8", "--bytes", "-5"], "bytes must be positive, got -5.0"),
    (["--nodes", "0", "--bytes", "1e6"], "nodes must be a positive integer, got 0"),
    (["--nodes", "-2", "--bytes", "1e6"], "nodes must be a positive integer, got -2"),
    (["--nodes", "8", "--bytes", "1e6", "--algorithm", "butterfly"], "unknown collective algorithm 'butterfly'"),
    (["--nodes", "8", "--bytes", "1e6", "--bandwidth", "0"], "--bandwidth must be positive"),
    (["--nodes", "8", "--bytes", "1e6", "--topology", "hypercube"], "unknown topology 'hypercube'"),
    (["--nodes", "9", "--bytes", "1e6", "--topology", "topologies/presets/dgx_pair.yaml"],
     "topology 'dgx_pair' has 8 accelerators, asked for 9"),
    (["--nodes", "6", "--bytes", "1e6", "--algorithm", "halving_doubling"], "power-of-two number of nodes, got 6"),
    (["--nodes", "8", "--bytes", "1e6", "--topology", "missing.yaml"], "cannot read topology file 'missing.yaml'"),
])
def test_bad_input_exit_2_one_line(capsys, args, message):
    assert main(["collective", "allreduce", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("distsim collective: error: ")
    assert message in err


def test_disconnected_topology_exit_2(capsys, tmp_path):
    f = tmp_path / "split.yaml"
    f.write_text("nodes: [a, b, c, d]\nlinks: [[a, b], [c, d]]\n")
    assert main(["collective", "allreduce", "--nodes", "4", "--bytes", "1e6", "--topology", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not connect nodes 'a' and 'c'" in err


def test_op_unsupported_by_algorithm_exit_2(capsys):
    assert main(["collective", "allgather", "--algorithm", "tree", "--nodes", "8", "--bytes", "1e6"]) == 2
    assert "algorithm 'tree' does not implement 'allgather'" in capsys.readouterr().err


def test_help_documents_units(capsys):
    with pytest.raises(SystemExit):
        main(["collective", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "bandwidth in bytes/s" in text and "latency in seconds" in text and "56e9" in text
