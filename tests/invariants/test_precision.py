"""Mixed precision: element sizes, parameter counts, optimizer state and device peaks.

Bytes per parameter of mixed-precision Adam: 2 (weight) + 2 (gradient) + 4 (fp32
master) + 4 + 4 (fp32 moments) = 16 (Rajbhandari et al., ZeRO, SC'20, section 3.1).
"""

import json

import pytest

from distsim.cli import main
from distsim.costmodels import analyze_step, op_times_s, roofline_step_s
from distsim.device import get_device
from distsim.errors import ConfigError
from distsim.graph import GraphBuilder, OpKind, TensorKind
from distsim.precision import PRECISIONS, get_precision
from distsim.workload import build_workload

SMALL = {
    "wordlm": dict(hidden=16, vocab=30, seq_len=3, batch=2),
    "charlm": dict(hidden=32, seq_len=4, batch=2),
    "nmt": dict(hidden=16, vocab=40, seq_len=3, batch=2),
    "speech": dict(hidden=16, seq_len=8, batch=2, attention=8, conv_width=3),
    "resnet": dict(depth=18, batch=2, image=64),
    "gpt": dict(layers=1, hidden=16, heads=2, seq_len=8, vocab=30, micro_batch=2),
}


def kind_bytes(g, kind):
    return sum(t.nbytes for t in g.tensors_of_kind(kind))


def test_update_bytes_per_element():
    # fp32: read w, g, moments; write w, moments: 4 (3 + 2n)
    assert [PRECISIONS["fp32"].update_bytes_per_element(n) for n in (0, 1, 2)] == [12, 20, 28]
    # bf16 Adam: read g (2), master (4), moments (8); write master (4), moments (8), the bf16 copy (2)
    assert PRECISIONS["bf16"].update_bytes_per_element(2) == 28
    assert PRECISIONS["bf16"].optimizer_bytes_per_param(2) == 12


def test_unknown_precision_names_the_accepted():
    with pytest.raises(ConfigError, match="precision must be one of fp32, tf32, bf16, fp16, fp8"):
        get_precision("fp64")


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("precision", ["bf16", "fp8"])
def test_every_workload_takes_precision(name, precision):
    fp32 = build_workload(name, **SMALL[name])
    low = build_workload(name, **SMALL[name], precision=precision)
    eb = get_precision(precision).element_bytes
    assert fp32.precision == "fp32" and low.precision == precision
    assert low.params == fp32.params  # counted in elements, whatever their size
    assert kind_bytes(low, TensorKind.WEIGHT) * 4 == kind_bytes(fp32, TensorKind.WEIGHT) * eb
    # fp32 master copy added to the optimizer state, which stays fp32
    master = sum(t.nbytes for t in low.tensors.values() if t.name.endswith("/master"))
    assert kind_bytes(low, TensorKind.OPTIMIZER_STATE) - master == kind_bytes(fp32, TensorKind.OPTIMIZER_STATE)
    trainable = sum(low.tensors[op.inputs[0]].elements for op in low.ops if op.kind is OpKind.OPTIMIZER)
    assert master == 4 * trainable
    assert low.nbytes < fp32.nbytes


def test_params_independent_of_element_size():
    gb = GraphBuilder("two-byte", element_bytes=2)
    w = gb.tensor("w", 10, TensorKind.WEIGHT)
    gb.elementwise("relu", [w], "y", 10)
    assert gb.build().params == 10  # no dims needed


def test_graph_timed_at_its_precision_peak():
    a100 = get_device("a100-sxm4-80gb")
    g = build_workload("gpt", **SMALL["gpt"], precision="bf16")
    report = analyze_step(g, a100)
    assert report["precision"] == "bf16"
    peak = a100.peak_flop_per_s["bf16"] * a100.compute_efficiency
    bw = a100.memory_bandwidth_bytes_per_s * a100.bandwidth_efficiency
    assert roofline_step_s(g, a100) == pytest.approx(max(g.flops / peak, g.nbytes / bw))
    assert report["roofline_utilization"] == pytest.approx(g.flops / (a100.peak_flop_per_s["bf16"]
                                                                      * report["roofline_step_s"]))
    fp32 = build_workload("gpt", **SMALL["gpt"])
    assert analyze_step(fp32, a100.with_(precision="bf16"))["precision"] == "fp32"  # the graph decides


def test_precision_missing_on_device_is_a_config_error():
    g = build_workload("gpt", **SMALL["gpt"], precision="fp8")
    with pytest.raises(ConfigError, match="no peak for precision 'fp8'; accepted: fp32, tf32, bf16, fp16"):
        op_times_s(g, get_device("a100-sxm4-80gb"))
    assert len(op_times_s(g, get_device("h100-sxm5-80gb"))) == len(g)


def test_step_cli_precision_and_preset(capsys):
    args = ["step", "gpt", "--json", "--device", "h100-sxm5-80gb", "--preset", "megatron-1.7b",
            "--set", "layers=2", "--set", "micro_batch=1", "--set", "precision=bf16"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "bf16" and report["options"]["hidden"] == 2304
    assert main(["step", "wordlm", "--set", "precision=bf16"]) == 2  # paper-v100 has fp32 only
    err = capsys.readouterr().err.strip()
    assert "precision 'bf16'" in err and "\n" not in err
