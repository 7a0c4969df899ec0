"""The four new workloads through the CLI and the data-parallel simulator.

Bad input must give a one-line ConfigError and exit status 2 from ``distsim
step`` (issue 5); every workload's final gradients must be what its update ops
read, grouped by layer, so that data parallelism all-reduces them.
"""

import json

import pytest

from distsim.cli import main
from distsim.evaluate import simulate_step
from distsim.plan import Plan, gradient_of
from distsim.workload import WORKLOADS, build_workload

SMALL = {
    "charlm": dict(hidden=32, seq_len=4, batch=2),
    "nmt": dict(hidden=16, vocab=40, seq_len=3, batch=2),
    "speech": dict(hidden=16, seq_len=8, batch=2, attention=8, conv_width=3),
    "resnet": dict(depth=18, batch=2, image=64),
}


def test_registered():
    assert {"wordlm", "charlm", "nmt", "speech", "resnet"} <= set(WORKLOADS.names())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_step_cli_json(name, capsys):
    args = ["step", name, "--json"] + [x for k, v in SMALL[name].items() for x in ("--set", f"{k}={v}")]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    g = build_workload(name, **SMALL[name])
    assert report["params"] == g.params and report["flops"] == g.flops


@pytest.mark.parametrize("name,option", [("charlm", "hidden=0"), ("nmt", "colour=1"), ("speech", "batch=-2"),
                                         ("resnet", "depth=42"), ("resnet", "width=0")])
def test_step_cli_bad_input_exits_2(name, option, capsys):
    assert main(["step", name, "--set", option]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distsim step: error:") and "\n" not in err


@pytest.mark.parametrize("name", sorted(SMALL))
def test_data_parallel_step_runs(name):
    g = build_workload(name, **SMALL[name])
    grads = gradient_of(g)
    trainable = [op for op in g.ops if op.phase.value == "update"]
    assert len(grads) == len(trainable)  # one final gradient per updated weight
    result = simulate_step(g, Plan(data_parallel=4))
    assert result is not None
