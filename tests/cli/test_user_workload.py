"""A user's own model from a file, an installed plugin or Python, through the CLI in-process (issue 11, part 3)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from distsim import datasets, workload
from distsim.cli import main
from distsim.errors import ConfigError
from distsim.registry import Registry
from distsim.workload import WORKLOADS, build_workload, load_workload_file, workload_from_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_mlp.py"


@pytest.fixture(autouse=True)
def isolated_registries():
    """Each test's user workloads and data sets are forgotten afterwards."""
    WORKLOADS.names()
    saved = (dict(WORKLOADS._items), dict(WORKLOADS.origins), dict(workload._FILES),
             dict(datasets.DATASETS._items), dict(datasets.DEFAULT_DATASETS))
    yield
    WORKLOADS._items.clear(), WORKLOADS._items.update(saved[0])
    WORKLOADS.origins.clear(), WORKLOADS.origins.update(saved[1])
    workload._FILES.clear(), workload._FILES.update(saved[2])
    datasets.DATASETS._items.clear(), datasets.DATASETS._items.update(saved[3])
    datasets.DEFAULT_DATASETS.clear(), datasets.DEFAULT_DATASETS.update(saved[4])


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def mlp_params(hidden=1024, layers=2, inputs=784, classes=10) -> int:
    widths = [inputs] + [hidden] * layers + [classes]
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# ---- the example file through the CLI -------------------------------------------

def test_step_runs_the_example_file(capsys):
    rc, out, err = run(capsys, "step", "--workload-file", EXAMPLE, "--set", "hidden=256", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["params"] == mlp_params(hidden=256)
    assert report["options"]["batch"] == 128


def test_plan_runs_the_example_file_with_its_default_data_set(capsys):
    rc, out, err = run(capsys, "plan", "--workload-file", EXAMPLE, "--set", "hidden=256", "--data-parallel", "1,2",
                       "--no-progress", "--all", "--json")
    assert rc == 0, err
    rows = {r["plan"]: r for r in json.loads(out)}
    dp1 = rows["dp1"]
    # the file's default data set: MNIST's 60,000 training images, batch 128 per worker
    assert dp1["days_per_epoch"] * 86400 == pytest.approx(60_000 / 128 * dp1["step_s"], rel=1e-9)


def test_plan_samples_gives_the_epoch(capsys):
    rc, out, err = run(capsys, "plan", "--workload-file", EXAMPLE, "--set", "hidden=256", "--data-parallel", "2",
                       "--samples", "1e6", "--no-progress", "--all", "--json")
    assert rc == 0, err
    row = next(r for r in json.loads(out) if r["plan"] == "dp2")
    assert row["days_per_epoch"] * 86400 == pytest.approx(1e6 / (128 * 2) * row["step_s"], rel=1e-9)


def test_plan_samples_and_dataset_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plan", "wordlm", "--samples", "10", "--dataset", "billion-word"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_bad_samples_is_one_line(capsys, value):
    rc, out, err = run(capsys, "plan", "--workload-file", EXAMPLE, "--samples", value, "--data-parallel", "1",
                       "--no-progress")
    assert rc == 2 and err.count("\n") == 1 and "--samples must be" in err


def test_shipped_workload_has_a_default_data_set_on_the_cli(capsys):
    """Before, `distsim plan charlm` stopped with 'no default data set'."""
    rc, out, err = run(capsys, "plan", "charlm", "--set", "hidden=16", "--set", "seq_len=2", "--set", "batch=2",
                       "--data-parallel", "1", "--no-progress", "--all", "--json")
    assert rc == 0, err
    row = json.loads(out)[0]
    assert row["days_per_epoch"] * 86400 == pytest.approx(datasets.CHARLM_TARGET.samples / 2 * row["step_s"])


def test_run_yaml_with_a_workload_file_and_a_data_set(tmp_path, capsys):
    scenario = write(tmp_path, "what_if.yaml", f"""\
        schema: 1
        workload: {{file: {EXAMPLE}, set: {{hidden: 128}}}}
        dataset: {{samples: 5120, name: my-data}}
        plans: [{{data_parallel: 1}}, {{data_parallel: 4}}]
        """)
    rc, out, err = run(capsys, "run", scenario, "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["plan"] for r in rows] == ["dp1", "dp4"]
    assert rows[1]["days_per_epoch"] * 86400 == pytest.approx(5120 / (128 * 4) * rows[1]["step_s"])
    rc, out, err = run(capsys, "run", scenario, "--json", "--samples", "10240")  # the command line wins
    assert json.loads(out)[1]["days_per_epoch"] == pytest.approx(2 * rows[1]["days_per_epoch"])


def test_run_yaml_workload_file_is_relative_to_the_yaml(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(EXAMPLE.read_text())
    scenario = write(tmp_path, "s.yaml", """\
        schema: 1
        workload: {file: models/net.py, set: {hidden: 64}}
        dataset: {samples: 1000}
        plan: {data_parallel: 1}
        """)
    rc, out, err = run(capsys, "run", scenario, "--json")
    assert rc == 0, err
    assert json.loads(out)["summary"]["plan"] == "dp1"


@pytest.mark.parametrize("dataset, message", [
    ("{samples: 0}", "dataset samples must be positive"),
    ("{name: x}", "dataset needs samples"),
    ("{samples: 10, rows: 3}", "unknown dataset key 'rows'; accepted: samples, name"),
    ("[1, 2]", "dataset must be a data set name or"),
])
def test_bad_yaml_data_set_is_one_line_naming_the_file(tmp_path, capsys, dataset, message):
    scenario = write(tmp_path, "s.yaml", f"""\
        schema: 1
        workload: wordlm
        dataset: {dataset}
        plan: {{data_parallel: 1}}
        """)
    rc, out, err = run(capsys, "run", scenario)
    assert rc == 2 and err.count("\n") == 1
    assert str(scenario) in err and message in err


# ---- mistakes in the user's file --------------------------------------------------

@pytest.mark.parametrize("source, message", [
    ("def build(:\n    pass\n", r"bad\.py: syntax error on line 1"),
    ("x = 1\n", r"bad\.py: defines no workload; register a builder with @WORKLOADS\.register"),
    ("import no_such_module_xyz\n", r"bad\.py: importing it raised ModuleNotFoundError: .*no_such_module_xyz.* \(line 1\)"),
    ("def build(batch=2):\n    return 1 / 0\n", r"bad\.py: workload 'bad' raised ZeroDivisionError: division by zero \(line 2\)"),
    ("def build(batch=2):\n    return 'graph'\n", r"bad\.py: workload 'bad' returned str, not a Graph"),
    ("from distsim.graph import GraphBuilder\n"
     "def build(batch=2):\n    b = GraphBuilder('bad')\n    b.elementwise('relu', ['h'], 'a', 4)\n",
     r"bad\.py: workload 'bad': op 'relu' reads tensor 'h', which is not defined"),
    ("from distsim.workload import WORKLOADS\n@WORKLOADS.register('wordlm')\ndef build(batch=2): pass\n",
     r"bad\.py: workload 'wordlm' is already registered; choose another name"),
])
def test_mistakes_in_the_file_are_one_line_naming_it(tmp_path, capsys, source, message):
    path = write(tmp_path, "bad.py", source)
    rc, out, err = run(capsys, "step", "--workload-file", path)
    assert rc == 2 and err.count("\n") == 1, err
    assert re.search(message, err), err
    if "workload 'bad'" not in message:  # a file that fails to load leaves nothing registered
        assert "bad" not in WORKLOADS.names()


def test_missing_and_non_python_files(tmp_path, capsys):
    rc, out, err = run(capsys, "step", "--workload-file", tmp_path / "nope.py")
    assert rc == 2 and "cannot read workload file" in err and "nope.py" in err
    rc, out, err = run(capsys, "plan", "--workload-file", write(tmp_path, "m.yaml", "x: 1\n"))
    assert rc == 2 and "must be a Python file (.py)" in err


def test_no_workload_at_all(capsys):
    rc, out, err = run(capsys, "step")
    assert rc == 2 and "give a WORKLOAD name or --workload-file FILE.py" in err


def test_registered_builders_options_and_choice(tmp_path, capsys):
    path = write(tmp_path, "two.py", """\
        from distsim.workload import WORKLOADS, load_workload_file
        import importlib.util, pathlib

        spec = importlib.util.spec_from_file_location("mlp", pathlib.Path(__file__).parent / "mlp_source.py")
        mlp = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mlp)

        @WORKLOADS.register("small-mlp")
        def small(hidden=32, batch=4):
            return mlp.build(hidden=hidden, batch=batch)

        @WORKLOADS.register("big-mlp")
        def big(hidden=512, batch=4):
            return mlp.build(hidden=hidden, batch=batch)
        """)
    (tmp_path / "mlp_source.py").write_text(EXAMPLE.read_text())
    rc, out, err = run(capsys, "step", "--workload-file", path)
    assert rc == 2 and "provides workloads big-mlp, small-mlp; name one" in err
    rc, out, err = run(capsys, "step", "small-mlp", "--workload-file", path, "--json")
    assert rc == 0, err
    assert json.loads(out)["params"] == mlp_params(hidden=32)
    rc, out, err = run(capsys, "step", "small-mlp", "--workload-file", path, "--set", "colour=3")
    assert rc == 2 and "unknown option 'colour' for small-mlp; accepted: hidden, batch" in err


def test_loading_a_file_again_replaces_its_workloads(tmp_path):
    path = write(tmp_path, "w.py", "from distsim.workload import build_workload\n"
                                   "def build(batch=2):\n    return build_workload('wordlm', hidden=8, vocab=10, "
                                   "seq_len=2, batch=batch)\n")
    assert load_workload_file(path) == ("w",)
    assert load_workload_file(path) == ("w",)  # no 'registered twice'
    path.write_text("def build(batch=2):\n    raise ValueError('edited')\n")
    assert workload_from_file(path) == "w"
    with pytest.raises(ConfigError, match=r"w\.py: workload 'w' raised ValueError: edited \(line 2\)"):
        build_workload("w")


def test_example_presets_and_default_data_set():
    assert load_workload_file(EXAMPLE) == ("my_mlp",)
    from distsim.workload import configure_workload

    g = configure_workload("my_mlp", preset="wide")
    assert (g.dims["hidden"], g.dims["layers"], g.dims["batch"]) == (8192, 4, 256)
    assert datasets.default_dataset_for("my_mlp").samples == 60_000


# ---- installed plugins: the distsim.workloads entry-point group -----------------------

def make_distribution(root: Path, group: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """A minimal installed distribution (a .dist-info folder) on ``root``."""
    info = root / "userplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: userplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    for name, text in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(text))


def test_entry_points_register_workloads(tmp_path, monkeypatch):
    group = "distsim.test_workloads"
    make_distribution(tmp_path, group, {
        "by-object": "userplugin_models:make_graph",
        "by-module": "userplugin_build",
        "registering": "userplugin_registering",
    }, {
        "userplugin_models": "def make_graph(batch=1):\n    return 'object'\n",
        "userplugin_build": "def build(batch=1):\n    return 'module build'\n",
        "userplugin_registering": """\
            from distsim.test_registry_target import REG
            @REG.register("named-inside")
            def b(batch=1):
                return 'registered'
            """,
    })
    reg = Registry("workload", entry_point_group=group)
    target = type(sys)("distsim.test_registry_target")
    target.REG = reg
    monkeypatch.setitem(sys.modules, "distsim.test_registry_target", target)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert reg.names() == ["by-module", "by-object", "named-inside"]
    assert reg.get("by-object")() == "object" and reg.get("by-module")() == "module build"
    assert "entry point 'userplugin_models:make_graph'" in reg.origins["by-object"]


def test_a_broken_plugin_is_one_line_naming_it(tmp_path, monkeypatch):
    group = "distsim.test_broken_workloads"
    make_distribution(tmp_path, group, {"broken": "userplugin_missing_module:build"}, {})
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("workload", entry_point_group=group)
    with pytest.raises(ConfigError, match=r"workload plugin 'broken' \(entry point 'userplugin_missing_module:build' "
                                          r"in group 'distsim.test_broken_workloads'\) failed to load: "
                                          r"ModuleNotFoundError"):
        reg.names()


def test_the_workload_registry_reads_the_distsim_workloads_group():
    assert WORKLOADS.entry_point_group == "distsim.workloads"


def test_the_example_what_if_file_runs(capsys):
    rc, out, err = run(capsys, "run", EXAMPLE.parent / "my_mlp_plans.yaml", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["data_parallel"] for r in rows] == [1, 8, 64] and all(r["batch"] == 256 * r["data_parallel"] for r in rows)
    for r in rows:  # the file's data set: 1,281,167 ImageNet-1k training images
        assert r["days_per_epoch"] * 86400 == pytest.approx(1_281_167 / r["batch"] * r["step_s"])
