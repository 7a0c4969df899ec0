"""`distsim step` and `distsim experiment` from the command line (issue 2 interface)."""

import json

import pytest

from distsim.cli import main


def test_step_json_keys(capsys):
    assert main(["step", "wordlm", "--set", "hidden=64", "--set", "vocab=100", "--set", "seq_len=4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("params", "flops", "bytes", "footprint_total_bytes", "footprint_min_bytes", "roofline_step_s",
                "cache_aware_step_s", "roofline_utilization", "cache_aware_utilization"):
        assert key in out
    assert out["options"]["hidden"] == 64


def test_step_text_prints_every_registered_model(capsys):
    from distsim.costmodels import cost_model_names

    assert main(["step", "wordlm", "--set", "hidden=32", "--set", "seq_len=2"]) == 0
    out = capsys.readouterr().out
    for name in cost_model_names():
        assert f"step, {name} " in out
    assert "on-chip cache           6 MiB" in out


def test_step_cost_model_flag(capsys):
    argv = ["step", "wordlm", "--set", "hidden=32", "--set", "seq_len=2"]
    assert main(argv + ["--cost-model", "tiled_best", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cost_model"] == "tiled_best" and out["step_s"] == out["tiled_best_step_s"]
    assert main(argv + ["--cost-model", "per_op"]) == 0
    text = capsys.readouterr().out
    assert "step, per_op" in text and "step, cache_aware" not in text


@pytest.mark.parametrize("argv,needle", [
    (["step", "nosuch"], "unknown workload 'nosuch'"),
    (["step", "wordlm", "--device", "nosuch"], "unknown device 'nosuch'"),
    (["step", "wordlm", "--set", "hiden=3"], "unknown option 'hiden'"),
    (["step", "wordlm", "--set", "hidden=0"], "hidden must be a positive integer"),
    (["step", "wordlm", "--set", "hidden=2.5"], "hidden must be a positive integer"),
    (["step", "wordlm", "--set", "hidden"], "--set expects NAME=VALUE"),
    (["step", "wordlm", "--device", "/no/such/spec.yaml"], "cannot read device file"),
    (["experiment", "nosuch"], "unknown experiment 'nosuch'"),
    (["step", "wordlm", "--cost-model", "magic"], "unknown cost model 'magic'; accepted: cache_aware"),
    (["plan", "wordlm", "--cost-model", "magic"], "unknown cost model 'magic'; accepted: cache_aware"),
])
def test_bad_input_exit_2_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_help_explains_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["step", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("--set", "--device", "--json", "projection", "seq_len", "--cost-model", "tiled_best", "Coleman"):
        assert word in out
