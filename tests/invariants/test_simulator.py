"""The engine: streams, dependencies, overlap, the data-parallel step, Result and trace."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_graphs import toy_lm
from distsim.collectives import closed_form as cf
from distsim.costmodels import op_times_s
from distsim.device import get_device
from distsim.errors import ConfigError
from distsim.evaluate import simulate_step
from distsim.graph import critical_path_s
from distsim.hardware import Hardware
from distsim.plan import Plan, gradient_of
from distsim.simulator import Simulator
from distsim.topology import build_topology

MS = 1e-3
DEVICE = get_device("paper-v100")


def ring(n, bw=1e9, lat=0.0):
    return build_topology("ring", n, bandwidth_bytes_per_s=bw, latency_s=lat)


def test_stream_runs_in_order_and_waits_for_deps():
    sim = Simulator()
    a = sim.add_compute("d0", "a", 2.0)
    sim.add_compute("d1", "b", 1.0, deps=[a])  # other device: waits for a
    sim.add_compute("d1", "c", 1.0)  # behind b on d1's stream, although it has no deps
    r = sim.run()
    rows = r.ops.set_index("name")
    assert (rows.loc["b", "start_s"], rows.loc["c", "start_s"]) == (2.0, 3.0)
    assert r.step_time_s == 4.0
    dev = r.devices.set_index("device")
    assert dev.loc["d1", "busy_s"] == 2.0 and dev.loc["d1", "idle_s"] == 2.0


def test_two_streams_overlap():
    sim = Simulator()
    sim.add_compute("d", "x", 3.0)
    sim.add_compute("d", "y", 2.0, stream="comm")
    assert sim.run().step_time_s == 3.0


def test_collective_waits_for_all_its_devices_streams():
    sim = Simulator(ring(4))
    sim.add_compute(0, "slow", 5.0)
    sim.add_compute(1, "fast", 1.0)
    sim.add_collective("ar", "allreduce", 4e9, devices=[0, 1], stream="compute")
    r = sim.run()
    # starts when both streams reach it (t = 5), takes 2 * 3/4 * 4 s
    row = r.ops[r.ops["name"] == "ar"].iloc[0]
    assert (row["start_s"], row["end_s"]) == pytest.approx((5.0, 11.0))
    assert len(r.ops[r.ops["name"] == "ar"]) == 2  # one row per device


def test_breakdown_adds_up_and_counts_only_exposed_comm():
    sim = Simulator(ring(4))
    f = sim.add_compute(0, "fwd", 2.0)
    ar = sim.add_collective("ar", "allreduce", 4e9, devices=[0], deps=[f])  # 6 s on the comm stream
    sim.add_compute(0, "other", 4.0, deps=[f])  # overlaps the first 4 s of the all-reduce
    sim.add_compute(0, "update", 1.0, deps=[ar])
    r = sim.run()
    assert r.step_time_s == pytest.approx(2 + 6 + 1)
    s = r.summary()
    assert s["compute_s"] == pytest.approx(7.0)
    assert s["exposed_comm_s"] == pytest.approx(2.0)
    assert s["compute_s"] + s["exposed_comm_s"] + s["idle_s"] == pytest.approx(r.step_time_s)


def test_bad_tasks():
    sim = Simulator()
    with pytest.raises(ConfigError, match="dependency 3"):
        sim.add_compute("d", "x", 1.0, deps=[3])
    with pytest.raises(ConfigError, match="duration_s of x must be non-negative"):
        sim.add_compute("d", "x", -1.0)
    with pytest.raises(ConfigError, match="needs a topology"):
        sim.add_collective("c", "allreduce", 1e6)
    with pytest.raises(ConfigError, match="mode 'fast'"):
        Simulator(ring(4)).add_collective("c", "allreduce", 1e6, mode="fast")


def test_tasks_on_other_streams_and_devices_chain():
    sim = Simulator()
    a = sim.add_compute("d", "a", 1.0, stream="s2")
    b = sim.add_compute("d", "b", 1.0, deps=[a])
    sim.add_compute("e", "c", 1.0, deps=[b])
    assert sim.run().step_time_s == 3.0


# ---- a data-parallel step: Plan(data_parallel=n) through the one simulation path ----
@pytest.fixture
def graph():
    return toy_lm()


def const(graph, seconds):
    return np.full(len(graph.ops), seconds)


def dp_step(graph, n, topology=None, *, seconds=MS, times=None, **plan):
    """One data-parallel step of ``graph`` on ``topology`` (a ring by default), every op ``seconds`` long."""
    hardware = Hardware(device=DEVICE, topology=topology if topology is not None else (ring(n) if n > 1 else None))
    durations = const(graph, seconds) if times is None else np.asarray(times, dtype=float)
    options = {k: plan.pop(k) for k in ("mode", "all_workers") if k in plan}
    return simulate_step(graph, Plan(data_parallel=n, **plan), hardware, durations=durations, **options)


def test_single_worker_step_is_sum_of_op_times(graph):
    r = dp_step(graph, 1)
    assert r.step_time_s == pytest.approx(len(graph.ops) * MS)
    assert r.summary()["exposed_comm_s"] == 0 and len(r.transfers) == 0


def test_cost_model_times_by_default(graph):
    times = op_times_s(graph, DEVICE, "per_op")
    assert times == pytest.approx([max(op.flops / DEVICE.achievable_flop_per_s,
                                       op.nbytes / DEVICE.achievable_bytes_per_s) for op in graph.ops])
    r = simulate_step(graph, Plan(), Hardware(device=DEVICE, cost_model="per_op"))
    assert r.step_time_s == pytest.approx(times.sum())


@pytest.mark.parametrize("grouping", ["per_tensor", "per_layer"])
def test_no_overlap_step_adds_every_allreduce(graph, grouping):
    """Overlap off: step = compute + one closed-form ring all-reduce ``2(N-1)/N S/B`` per collective.
    toy_lm has one gradient per layer, so per-tensor and per-layer grouping give the same collectives."""
    n, bw = 4, 1e9
    r = dp_step(graph, n, ring(n, bw), overlap=False, gradient_grouping=grouping)
    grads = [t.nbytes for t in graph.tensors.values() if t.kind.value == "gradient"]
    comm = sum(cf.ring_allreduce_s(n, g, bw, 0.0) for g in grads)
    assert r.step_time_s == pytest.approx(len(graph.ops) * MS + comm, rel=1e-12)


def test_overlap_hides_communication(graph):
    topo = ring(4, 1e9)
    on = dp_step(graph, 4, topo, overlap=True)
    off = dp_step(graph, 4, topo, overlap=False)
    assert on.step_time_s < off.step_time_s
    assert on.summary()["exposed_comm_s"] < off.summary()["exposed_comm_s"]
    # the output layer's all-reduce starts before the embedding's backward ops finish
    ops = on.ops.set_index("name")
    assert ops.loc["allreduce:output.dw", "start_s"] < ops.loc["embedding.bwd_weight", "end_s"]


@pytest.mark.parametrize("overlap", [True, False])
def test_representative_worker_agrees_with_every_worker(graph, overlap):
    topo = ring(4, 2e8, 1e-6)
    one = dp_step(graph, 4, topo, overlap=overlap)
    every = dp_step(graph, 4, topo, overlap=overlap, all_workers=True, mode="exact")
    assert one.step_time_s == pytest.approx(every.step_time_s, rel=1e-12)
    for key in ("compute_s", "exposed_comm_s", "idle_s", "bytes_transferred", "link_bytes"):
        assert one.summary()[key] == pytest.approx(every.summary()[key], rel=1e-9)


@settings(max_examples=15, deadline=None)
@given(times=st.lists(st.floats(0.0, 1e-2), min_size=21, max_size=21), n=st.integers(1, 6),
       bw=st.floats(1e7, 1e11), overlap=st.booleans())
def test_step_invariants(times, n, bw, overlap):
    graph = toy_lm()
    topo = ring(n, bw, 1e-6) if n > 1 else None
    r = dp_step(graph, n, topo, times=times, overlap=overlap)
    # never shorter than the compute critical path, nor than the compute itself
    assert r.step_time_s >= critical_path_s(graph, times) * (1 - 1e-12)
    assert r.step_time_s >= sum(times) * (1 - 1e-12)
    assert (r.links["utilization"] <= 1 + 1e-12).all()
    s = r.summary()
    assert s["compute_s"] + s["exposed_comm_s"] + s["idle_s"] == pytest.approx(r.step_time_s, abs=1e-12)
    if topo is not None:
        faster = dp_step(graph, n, ring(n, bw * 2, 1e-6), times=times, overlap=overlap)
        assert faster.step_time_s <= r.step_time_s * (1 + 1e-12)


def test_identical_results(graph):
    a = dp_step(graph, 4, overlap=True)
    b = dp_step(graph, 4, overlap=True)
    assert a.summary() == b.summary()
    assert a.ops.equals(b.ops) and a.transfers.equals(b.transfers) and a.links.equals(b.links)


def test_data_parallel_over_many_workers_is_fast(graph):
    r = dp_step(graph, 1024)
    assert set(r.modes.values()) == {"symmetric"}
    assert r.transfers["count"].sum() == 5 * 1024 * 2 * 1023


def test_chrome_trace(tmp_path, graph):
    r = dp_step(graph, 4, overlap=True, all_workers=True, mode="exact")
    path = r.to_chrome_trace(tmp_path / "t.json")
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert {"device 0", "device 3", "links"} <= names
    threads = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"compute", "comm", "0->1", "3->0"} <= threads
    spans = [e for e in events if e["ph"] == "X"]
    assert all(e["dur"] >= 0 for e in spans)
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(r.step_time_s * 1e6)


def test_benchmark_quick_runs(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_engine", "benchmarks/bench_engine.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ring_rows = {(r["nodes"], r["mode"]): r for r in rows if r["bench"] == "ring_allreduce_1GB"}
    # both modes agree where both ran
    assert ring_rows[(64, "exact")]["sim_time_s"] == pytest.approx(ring_rows[(64, "symmetric")]["sim_time_s"])
    assert any(r["bench"].startswith("dp_step") for r in rows)


def two_gradient_layer():
    """Layer L with two gradients; the first is read by its update before the second exists."""
    from distsim.graph import GraphBuilder, OpKind, TensorKind
    b = GraphBuilder("g")
    b.layer = "L"
    w = b.tensor("w", 10, TensorKind.WEIGHT)
    b.phase = b.phase.BACKWARD
    g1 = b.elementwise("dw1", [w], "g1", 1000, out_kind=TensorKind.GRADIENT)
    b.phase = b.phase.UPDATE
    b.op("upd1", OpKind.OPTIMIZER, [w, g1], [], nbytes=120)  # reads g1 before g2 exists
    b.phase = b.phase.BACKWARD
    g2 = b.elementwise("dw2", [w], "g2", 1000, out_kind=TensorKind.GRADIENT)
    b.phase = b.phase.UPDATE
    b.op("upd2", OpKind.OPTIMIZER, [w, g2], [], nbytes=120)
    return b.build()


def test_gradient_read_before_its_layer_completes_is_reduced_first():
    graph = two_gradient_layer()
    r = dp_step(graph, 2, ring(2, 1e6), gradient_grouping="per_layer")
    ops = r.ops.set_index("name")
    assert list(r.modes) == ["allreduce:L", "allreduce:L#2"]
    assert ops.loc["upd1", "start_s"] >= ops.loc["allreduce:L", "end_s"]
    assert ops.loc["upd2", "start_s"] >= ops.loc["allreduce:L#2", "end_s"]


def test_topology_too_small_for_the_plan():
    with pytest.raises(ConfigError, match="the plan needs 5 accelerators; topology 'ring4' has 4"):
        dp_step(toy_lm(), 5, ring(4))


def test_gradients_are_what_update_ops_read():
    from distsim.graph import GraphBuilder, OpKind, Phase, TensorKind
    b = GraphBuilder("g")
    b.layer = "A"
    w = b.tensor("w", 10, TensorKind.WEIGHT)
    x = b.tensor("x", 10, TensorKind.INPUT)
    b.phase = Phase.BACKWARD
    acc = b.elementwise("acc", [w, x], "acc_w", 10)  # an accumulated gradient stored as an activation
    b.phase = Phase.UPDATE
    b.op("upd", OpKind.OPTIMIZER, [w, acc, x], [])
    b.phase = Phase.BACKWARD
    b.elementwise("partial", [w, x], "partial_w", 10, out_kind=TensorKind.GRADIENT)  # never read by an update
    assert gradient_of(b.build()) == {"acc_w": "w"}
    assert set(gradient_of(toy_lm())) == {f"{n}.dw" for n in ["embedding", "rnn0", "rnn1", "rnn2", "output"]}
