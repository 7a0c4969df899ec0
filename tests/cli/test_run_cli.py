"""`distsim run FILE.yaml`: strict what-if files (distsim.config) and their output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distsim import units
from distsim.cli import main
from distsim.config import load_scenario, scenario_from_dict
from distsim.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY = {"name": "wordlm", "set": {"hidden": 64, "vocab": 1000, "seq_len": 4, "batch": 8}}


def write(tmp_path, text: str, name: str = "case.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def scenario(tmp_path, body: str) -> str:
    return write(tmp_path, "schema: 1\nworkload: {name: wordlm, set: {hidden: 64, vocab: 1000, seq_len: 4, batch: 8}}\n"
                           "dataset: billion-word\n" + body)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_examples_load(name):
    s = load_scenario(EXAMPLES / name)
    assert s.plans or s.search is not None


def test_small_example_runs(capsys):
    assert main(["run", str(EXAMPLES / "small_lm_plans.yaml")]) == 0
    out = capsys.readouterr().out
    assert "plans[0] does not fit: stage 0" in out and "plans[2] does not fit" not in out
    assert main(["run", str(EXAMPLES / "small_lm_plans.yaml"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["fits"] for r in rows] == [False, False, True]
    assert rows[2]["stages"] == 3 and rows[2]["embedding_shards"] == 3


def test_case_study_final_plan_example(capsys):
    assert main(["run", str(EXAMPLES / "case_study_final_plan.yaml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["accelerators"] == 2560 and out["summary"]["fits"] and out["failures"] == []
    assert out["summary"]["days_per_epoch"] < 7
    assert len(out["memory"]) == 5 and all(r["total_gib"] <= 32 for r in out["memory"])


def test_single_plan_prints_summary_and_memory(tmp_path, capsys):
    path = scenario(tmp_path, "hardware: {memory_GB: 0.0008}\nplan: {data_parallel: 2}\n")
    assert main(["run", path]) == 0
    out = capsys.readouterr().out
    assert "days_per_epoch" in out and "total_gib" in out and "does not fit: stage 0" in out
    assert main(["run", path, "--json", "--out", str(tmp_path / "out")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"summary", "memory", "failures", "hardware"} and not data["summary"]["fits"] and data["failures"]
    assert (tmp_path / "out" / "case.csv").exists() and (tmp_path / "out" / "case_memory.csv").exists()


def test_search_section(tmp_path, capsys):
    path = scenario(tmp_path, "hardware: {memory_GB: 0.0008, latency_us: 0}\n"
                              "search: {data_parallel: [1, 8], max_stages: 2, target_days: 0.001}\n")
    assert main(["run", path, "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert rows and all(r["pareto"] for r in rows)
    assert "best plan for <= 0.001 days/epoch" in captured.err


def test_human_units_are_converted_once(tmp_path):
    s = scenario_from_dict({"schema": 1, "workload": TINY, "hardware": {"link_GBps": 25, "latency_us": 5,
                                                                        "memory_GiB": 2},
                            "plan": {"data_parallel": 1}}, base_dir=tmp_path)
    assert s.hardware.link_bandwidth_bytes_per_s == 25 * units.GB
    assert s.hardware.link_latency_s == pytest.approx(5 * units.US)
    assert s.hardware.capacity_bytes == 2 * units.GiB
    s = scenario_from_dict({"schema": 1, "workload": TINY, "hardware": {"memory_GB": 2}, "plan": {}})
    assert s.hardware.capacity_bytes == 2e9
    assert s.hardware.cost_model == "cache_aware"  # the paper's model by default
    s = scenario_from_dict({"schema": 1, "workload": TINY, "hardware": {"cost_model": "tiled_best"}, "plan": {}})
    assert s.hardware.cost_model == "tiled_best"


def test_device_file_is_relative_to_the_scenario(tmp_path, capsys):
    (tmp_path / "devs").mkdir()
    (tmp_path / "devs" / "mine.yaml").write_text(
        "schema: 1\ndevices:\n  mine: {peak_TFLOPS: {fp32: 10}, memory_bandwidth_GBps: 500, cache_MiB: 4, "
        "memory_GiB: 1}\n")
    path = scenario(tmp_path, "device: devs/mine.yaml\nplans: [{data_parallel: 1}, {data_parallel: 2}]\n")
    assert load_scenario(path).hardware.device.name == "mine"
    assert main(["run", path, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


@pytest.mark.parametrize("body,needle", [
    ("plan: {data_parallel: 2, stages: [[embedding, lstm0], [lstm1, output, stepp]]}",
     "plan: stages[1] names layer 'stepp'"),
    ("plan: {data_parallel: 2, stages: [[embedding, lstm0], [lstm1, output, step]], shard_stages: [0, 2]}",
     "plan: shard_stages names stage 2, but the plan has stages 0..1"),
    ("plans: [{data_parallel: 1}, {data_parallel: 3, batch: 8}]", "plans[1]: data_parallel=3 does not divide batch=8"),
    ("plan: {data_parallel: 2, batch: 8}", "plan: batch=8 is not subbatch 8 x data_parallel 2"),
    ("plan: {embedding_shards: 0}", "plan: embedding_shards must be a positive integer, got 0"),
    ("plan: {data_paralel: 2}", "unknown plan key 'data_paralel'; accepted: data_parallel"),
    ("plan: {}\nsytem: {}", "unknown top-level key 'sytem'; accepted: schema, workload"),
    ("hardware: {memory_gb: 3}\nplan: {}", "unknown hardware key 'memory_gb'; accepted: preset, link_GBps"),
    ("hardware: {memory_GiB: -3}\nplan: {}", "hardware memory_GiB must be positive, got -3.0"),
    ("hardware: {memory_GiB: 3, memory_GB: 3}\nplan: {}", "not both"),
    ("hardware: {cost_model: magic}\nplan: {}", "unknown cost model 'magic'; accepted: cache_aware, per_op, roofline"),
    ("hardware: {cost_mode: per_op}\nplan: {}", "unknown hardware key 'cost_mode'; accepted: preset, link_GBps"),
    ("search: {data_parallel: [4], depth: 3}", "unknown search key 'depth'; accepted: data_parallel"),
    ("search: {data_parallel: [0]}", "search data_parallel entry must be a positive integer"),
    ("search: {comm_buffer: [fused]}", "search comm_buffer value 'fused'"),
    ("plan: {}\nsearch: {}", "exactly one of plan, plans or search; got plan, search"),
    ("dataset: 3\nplan: {}", "dataset must be a data set name"),
    ("device: nosuch\nplan: {}", "unknown device 'nosuch'"),
    ("device: nosuch.yaml\nplan: {}", "cannot read device file"),
    ("", "exactly one of plan, plans or search"),
])
def test_bad_scenarios_exit_2_one_line(tmp_path, capsys, body, needle):
    path = scenario(tmp_path, body + "\n")
    assert main(["run", path]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err
    assert err.startswith(f"distsim run: error: {path}: ")


@pytest.mark.parametrize("text,needle", [
    ("workload: {name: wordlm}\nplan: {}\n", "missing key 'schema'"),
    ("schema: 2\nworkload: {name: wordlm}\nplan: {}\n", "unsupported schema 2; accepted: 1"),
    ("schema: 1\nplan: {}\n", "missing key 'workload'"),
    ("schema: 1\nworkload: {name: nosuch}\nplan: {}\n", "unknown workload 'nosuch'"),
    ("schema: 1\nworkload: {name: wordlm, preset: nope}\nplan: {}\n", "unknown preset 'nope'"),
    ("schema: 1\nworkload: {name: wordlm, set: {hiden: 3}}\nplan: {}\n", "unknown option 'hiden'"),
    ("schema: 1\nworkload: {name: wordlm, size: 3}\nplan: {}\n", "unknown workload key 'size'; accepted: name, file, preset, set"),
    ("- just\n- a list\n", "top-level must be a mapping"),
    ("schema: 1\nworkload: {name: wordlm\n", "not valid YAML (line"),
])
def test_bad_files_exit_2_one_line(tmp_path, capsys, text, needle):
    path = write(tmp_path, text)
    assert main(["run", path]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_missing_file(capsys):
    assert main(["run", "/no/such/file.yaml"]) == 2
    assert "cannot read scenario file" in capsys.readouterr().err


def test_config_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing key 'schema'"):
        scenario_from_dict({"workload": TINY, "plan": {}})


def test_two_server_cluster_matches_the_closed_forms(capsys):
    """examples/two_servers_dp.yaml: a data-parallel ring that crosses servers, against closed forms.

    Overlap off, so a step = compute + its gradient collectives one after another.  Two servers of 8
    (``two_level``: 300 GB/s, 1 us inside; a transfer between servers crosses two 25 GB/s NIC links
    of 2.5 us).  16-way ring: every ring step waits for the slowest transfer, the one between servers,
    ``a = 5 us, B = 25 GB/s``: all-reduce ``2(N-1)(a + S/(N B))``, all-gather of ``S`` rows per worker
    ``(N-1)(a + S/B)``.  Hierarchical all-reduce (docs: collectives/hierarchical.py):
    ``2(k-1)(a_l + S/(k B_l)) + 2(m-1)(a_g + S/(k m B_g))``; its sparse rows still go by ring.
    8-way stays inside a server: the torus-like closed form with the fast links.
    """
    from distsim.collectives import closed_form as cf
    from distsim.plan import gradient_of, sparse_gradients

    assert main(["run", "examples/two_servers_dp.yaml", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    step = [r["step_s"] for r in rows]
    graph = load_scenario("examples/two_servers_dp.yaml").workload.build()
    sparse = sparse_gradients(graph)
    dense = [graph.tensors[g].nbytes for g in gradient_of(graph) if g not in sparse]
    sparse_rows = [graph.tensors[g].nbytes for g in sparse]
    fast, slow = (300e9, 1e-6), (25e9, 5e-6)

    def ring(n, link):
        return (sum(cf.ring_allreduce_s(n, s, *link) for s in dense)
                + sum(cf.ring_allgather_s(n, n * s, *link) for s in sparse_rows))

    assert step[1] - step[0] == pytest.approx(ring(8, fast), rel=1e-9)
    assert step[2] - step[0] == pytest.approx(ring(16, slow), rel=1e-9)
    hier = (sum(cf.hierarchical_allreduce_s(16, s, 8, *fast, *slow) for s in dense)
            + sum(cf.ring_allgather_s(16, 16 * s, *slow) for s in sparse_rows))
    assert step[3] - step[0] == pytest.approx(hier, rel=1e-9)
    assert step[3] < step[2]  # the explained difference: 1/8 of each gradient crosses the network


def test_topology_section_forms(tmp_path):
    """hardware.topology: a builder name (sized to the plan), {kind, options}, or a file; latency stated."""
    from distsim.hardware import TopologySpec
    from distsim.topology import Topology

    base = {"schema": 1, "workload": TINY, "plan": {"data_parallel": 2}}
    s = scenario_from_dict(base | {"hardware": {"topology": "ring"}})
    assert isinstance(s.hardware.topology, TopologySpec) and s.hardware.name == "custom"
    assert "ring" in s.hardware.describe() and "per hop" not in s.hardware.describe()
    s = scenario_from_dict(base | {"hardware": {"topology": "topologies/presets/line4.yaml"}}, base_dir=".")
    assert isinstance(s.hardware.topology, Topology) and "us x" in s.hardware.describe()
    s = scenario_from_dict(base | {"hardware": {"preset": "dgx-h100"}})
    assert s.hardware.device.name == "h100-sxm5-80gb" and "450 GB/s" in s.hardware.describe()


@pytest.mark.parametrize("hardware,needle", [
    ({"topology": {"kind": "nosuch"}}, "unknown topology 'nosuch'"),
    ({"topology": {"local_size": 8}}, "hardware topology needs 'kind'"),
    ({"topology": "ring", "latency_us": 3}, "hardware latency_us set the plan-shaped torus"),
    ({"topology": {"kind": "two_level", "local_size": 8, "bogus_GBps": 3}}, "topology two_level"),
    ({"preset": "nosuch"}, "unknown hardware preset 'nosuch'"),
    ({"placement": []}, "hardware placement must list"),
])
def test_bad_hardware_sections(hardware, needle):
    with pytest.raises(ConfigError, match=needle):
        scenario_from_dict({"schema": 1, "workload": TINY, "hardware": hardware, "plan": {}})
