"""The layer-granular plan search (distsim/transformer_search.py) and ``distsim plan --gpus``."""

import pytest

from distsim.cli import main
from distsim.hardware import get_hardware
from distsim.transformer_search import layer_plan_candidates, search_layer_plans
from distsim.workload import build_workload

DIMS = dict(layers=4, hidden=64, heads=4, seq_len=32, vocab=128, precision="fp16")


def test_candidates_cover_the_grid():
    plans = [p for _, p in layer_plan_candidates(4, 8, 16, max_tensor_parallel=2, max_micro_batch=2,
                                                 zero_stages=(0,), recompute_modes=("full",))]
    assert all(p.accelerators == 8 and p.recompute == "full" for p in plans)
    assert {(p.tensor_parallel, p.pipeline_parallel) for p in plans} == {(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4)}
    assert any(p.pipeline_schedule == "interleaved" for p in plans)
    assert all(16 % (p.data_parallel * p.micro_batches) == 0 for p in plans)


def test_search_frontier():
    df = search_layer_plans(lambda b: build_workload("gpt", micro_batch=b, **DIMS), get_hardware("dgx-a100"),
                            gpus=[4], batch=8, progress=False, max_tensor_parallel=2, max_micro_batch=2,
                            zero_stages=(0,), recompute_modes=("none", "full"))
    assert len(df) == df.attrs["simulated"] > 0 and df["pareto"].any()
    front = df[df["pareto"]]
    for r in front.itertuples():  # no fitting plan is better on both time and memory
        assert not ((df["step_s"] < r.step_s) & (df["max_memory_gib"] < r.max_memory_gib)).any()


def test_cli_needs_a_micro_batch_workload(capsys):
    assert main(["plan", "wordlm", "--gpus", "8", "--global-batch", "16"]) == 2
    assert "micro_batch option" in capsys.readouterr().err
    assert main(["plan", "gpt", "--gpus", "8"]) == 2
    assert "--global-batch" in capsys.readouterr().err


def test_cli_search_prints_frontier(capsys):
    args = ["plan", "gpt", "--gpus", "2", "--global-batch", "4", "--no-progress", "--hardware", "dgx-a100"]
    for key, value in DIMS.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "dp" in out.out and "on the frontier" in out.err
