"""Every kind of hostile input issue 14 lists is a one-line ConfigError (CLI: exit 2), never a traceback or a hang."""

from __future__ import annotations

import time

import pytest

from distsim.cli import main
from distsim.config import load_scenario
from distsim.device import load_devices
from distsim.errors import ConfigError, short
from distsim.files import MAX_NODES, StagedOutputs, parse_yaml, write_atomic
from distsim.topology import load_topology, topology_from_dict

BOMB = ("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n")
LOADERS = [load_devices, load_topology, load_scenario]


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize("text,match", [
    (BOMB, "aliases are expanded"),
    ("a: " + "[" * 5000 + "]" * 5000, "nesting deeper"),
    ("schema: " + "9" * 5000, "digits"),
    (b"schema: 1\n\xff\xfe", "not UTF-8"),
    ("[1, 2", "not valid YAML"),
    ("schema: 1\n5: x\n", "must be a string"),
], ids=["alias-bomb", "deep-nesting", "huge-int", "not-utf8", "bad-yaml", "int-key"])
def test_hostile_files_refused_fast(tmp_path, load, text, match):
    path = tmp_path / "f.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=match) as exc:
        load(path)
    assert time.perf_counter() - start < 2
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300  # one short line, no expanded value


def test_alias_guard_counts_expanded_values():
    ok = "a: &a [1, 2]\nb: [*a, *a]\n"
    assert parse_yaml(ok)["b"] == [[1, 2], [1, 2]]
    with pytest.raises(ConfigError, match=str(MAX_NODES)):
        parse_yaml(BOMB)


def test_short_cuts_values():
    assert len(short("x" * 10_000)) < 100 and short(10 ** 5000) == "<int>"


TOPO = {"nodes": ["a", "b"], "links": [["a", "b"]]}


@pytest.mark.parametrize("change,match", [
    ({"duplex": "false"}, "duplex must be true or false"),
    ({"switches": "sw"}, "'switches' must be a list"),
    ({"nodes": ["a", "a"]}, "declared twice"),
    ({"links": [["a", "a"]]}, "joins a node to itself"),
    ({"nodes": [["a"], "b"]}, "must be a name"),
    ({"nodes": None}, "'nodes' must list"),
    ({"schema": True}, "unsupported schema"),
    ({"name": ["x"]}, "name must be a string"),
    ({"builder": "ring", "nodes": 4}, "does not apply with 'builder'"),
])
def test_topology_types_strict(change, match):
    doc = {**TOPO, **change}
    if doc.get("links") is None:
        doc.pop("links")
    with pytest.raises(ConfigError, match=match):
        topology_from_dict(doc)


def test_topology_duplex_false_is_half_duplex():
    assert topology_from_dict({**TOPO, "duplex": False}).duplex is False


def test_builder_refuses_huge_and_non_string():
    with pytest.raises(ConfigError, match="the limit"):
        topology_from_dict({"builder": "torus2d", "nodes": 10 ** 12})
    with pytest.raises(ConfigError, match="builder must be a name"):
        topology_from_dict({"builder": ["ring"], "nodes": 4})
    with pytest.raises(ConfigError, match="option name 5 must be a string"):
        topology_from_dict({"builder": "ring", "nodes": 4, "options": {5: 1}})


DEVICE = "schema: 1\ndevices:\n  d: {peak_TFLOPS: {fp32: 15}, memory_bandwidth_GBps: 900, cache_MiB: 6, memory_GiB: 32%s}\n"


@pytest.mark.parametrize("extra,match", [
    (", compute_efficiency: true", "compute_efficiency must be a number"),
    (", precision: [fp32]", "precision must be a string"),
    (", bandwidth_efficiency: .nan", "finite"),
    (", memory_GiB: -1", "duplicate key|positive"),
])
def test_device_types_strict(tmp_path, extra, match):
    path = tmp_path / "d.yaml"
    path.write_text(DEVICE % extra)
    with pytest.raises(ConfigError, match=match):
        load_devices(path)


def test_device_empty_peaks(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(DEVICE.replace("{fp32: 15}", "{}") % "")
    with pytest.raises(ConfigError, match="peak_TFLOPS"):
        load_devices(path)


def cli_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    return err


@pytest.mark.parametrize("argv,match", [
    (["collective", "allreduce", "--nodes", "1000000000", "--bytes", "1e6"], "131072 (the limit)"),
    (["collective", "allreduce", "--nodes", "8", "--bytes", "1e6", "--bandwidth", "1e-300"], "--bandwidth"),
    (["collective", "allreduce", "--nodes", "8", "--bytes", "1e6", "--chunks", "4"], "applies only to ring broadcast"),
    (["collective", "allreduce", "--nodes", "1", "--bytes", "1e6"], "at least 2 nodes"),
    (["collective", "allreduce", "--nodes", "8192", "--bytes", "1e6", "--algorithm", "halving_doubling",
      "--mode", "exact"], "one by one"),
    (["plan", "wordlm", "--data-parallel", "9999999999999"], "accelerators (the limit)"),
    (["step", "wordlm", "--set", "seq_len=1e30"], "seq_len 1e+30 is more than"),
])
def test_sizes_refused_up_front(capsys, argv, match):
    assert match in cli_error(capsys, argv)


SMALL = ["--set", "hidden=32", "--set", "vocab=100", "--set", "seq_len=2", "--set", "batch=2"]


def test_graph_size_guard(capsys, monkeypatch):
    """The guard stops a builder as the graph grows (the limit lowered so the test is quick)."""
    import distsim.graph

    monkeypatch.setattr(distsim.graph, "MAX_GRAPH_OPS", 50)
    assert "50 ops (the limit)" in cli_error(capsys, ["step", "wordlm", *SMALL])


def test_search_grid_guard(capsys, monkeypatch):
    import distsim.search

    monkeypatch.setattr(distsim.search, "MAX_CANDIDATES", 10)
    assert "10 plans (the limit)" in cli_error(capsys, ["plan", "wordlm", *SMALL, "--no-progress"])


@pytest.mark.parametrize("plan,match", [
    ("{data_parallel: 2, stages: [5]}", "stages\\[0\\] must be a non-empty list"),
    ("{data_parallel: 2, shard_stages: 5}", "shard_stages must be a list"),
    ("{data_parallel: 2, shard_layer: [x]}", "shard_layer must be a layer name"),
])
def test_scenario_nested_types(tmp_path, capsys, plan, match):
    path = tmp_path / "s.yaml"
    path.write_text("schema: 1\nworkload: {name: wordlm, set: {hidden: 64, vocab: 500, seq_len: 3, batch: 4}}\n"
                    f"plan: {plan}\n")
    assert __import__("re").search(match, cli_error(capsys, ["run", str(path)]))


def test_scenario_schema_true_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("schema: true\nworkload: wordlm\nplan: {data_parallel: 1}\n")
    with pytest.raises(ConfigError, match="unsupported schema"):
        load_scenario(path)


@pytest.mark.parametrize("rows,cols,match", [
    ("x,y\n1,1\n2,1e300\n3,1e-300\n", ("x", "y"), "do not determine the fit"),
    ("x,y\n1,2\n2,3\n3,4\n", ("x", "x"), "same column"),
    ("x,y\n1,2\n1,3\n1,4\n", ("x", "y"), "all x are equal"),
])
def test_fit_degenerate_points(tmp_path, capsys, rows, cols, match):
    path = tmp_path / "p.csv"
    path.write_text(rows)
    assert match in cli_error(capsys, ["fit", "learning-curve", str(path), "--x", cols[0], "--y", cols[1]])


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def half(path):
        path.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "out.json", half)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with StagedOutputs(tmp_path) as stage:
            (stage.path / "a.csv").write_text("x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with StagedOutputs(tmp_path) as stage:
        (stage.path / "a.csv").write_text("x")
        (stage.path / "a.png").write_text("y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.png"]
