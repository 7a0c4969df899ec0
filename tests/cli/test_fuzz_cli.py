"""Fuzzing the command line and every file format as a hostile user would (issue 14).

Every call goes through :func:`distsim.cli.main` in-process and must end in
one of two ways:

- exit status 0 with finite, well-formed output (no ``nan``/``inf``; JSON
  parses), or
- exit status 2 with exactly one line on stderr (a user error),

never a traceback (status 1), a hang or a Python warning.  Inputs mix valid
values with junk: wrong types, non-finite and huge numbers, non-UTF-8 bytes,
YAML alias bombs, deep nesting, mutated device/topology/what-if files.

Determinism and size: hypothesis runs with ``derandomize=True`` (the examples
are a fixed function of the test, so no example database is needed or kept)
and ``DISTSIM_FUZZ_EXAMPLES`` examples per test (default 12, a few seconds for
the whole file).  Outside CI run at least 2,000 in all, e.g.
``DISTSIM_FUZZ_EXAMPLES=300 python3 -m pytest tests/test_fuzz_cli.py``; then
every call is also timed and one over ``DISTSIM_FUZZ_MAX_S`` (default 20) CPU seconds fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distsim.cli import main

EXAMPLES = int(os.environ.get("DISTSIM_FUZZ_EXAMPLES", "12"))
MAX_CALL_S = float(os.environ.get("DISTSIM_FUZZ_MAX_S", "20"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck), print_blob=False)
ROOT = Path(__file__).resolve().parents[2]
NON_FINITE = re.compile(r"(?<![A-Za-z_])-?(nan|inf|infinity)(?![A-Za-z_])", re.IGNORECASE)
TMP = Path(tempfile.mkdtemp(prefix="distsim-fuzz-"))


def call(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; check the contract; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    start = time.process_time()  # CPU seconds: a busy machine does not make a call look hung
    cwd = os.getcwd()
    os.chdir(TMP)  # relative --out/--trace names land in the scratch folder, not the work tree
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning printed to a user counts as a failure
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    status = main(argv)
                except SystemExit as exc:  # argparse: --help, malformed lines
                    status = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(cwd)
    elapsed = time.process_time() - start
    stdout, stderr = out.getvalue(), err.getvalue()
    where = f"argv={argv!r}\nstdout={stdout[-2000:]}\nstderr={stderr[-4000:]}"
    assert elapsed < MAX_CALL_S, f"took {elapsed:.1f} CPU s\n{where}"
    assert status in (0, 2), f"exit status {status}\n{where}"
    if status == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"a user error must be one line on stderr\n{where}"
        assert "Traceback" not in stderr and len(lines[0]) < 2000, where
    else:
        assert "Traceback" not in stderr, where
        assert not NON_FINITE.search(stdout), f"non-finite number in the output\n{where}"
        if "--json" in argv:
            json.loads(stdout.split("\n\n")[0]) if stdout.strip() else None
    return status, stdout, stderr


def write(name: str, data: bytes | str) -> str:
    path = TMP / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


# ---- value strategies ---------------------------------------------------------
JUNK_TEXT = st.sampled_from(["", " ", "abc", "-1", "0", "1e400", "nan", "inf", "-inf", "1_0", "0x10", "1e-300",
                             "true", "[1]", "{a: 1}", "\u00e9\u4e2d", "9" * 60, "1,2", "'", "--json"])
NUMBER_TEXT = st.one_of(
    st.integers(-3, 64).map(str),
    st.sampled_from(["1e9", "1e6", "4e9", "56e9", "0.5", "1e-6", "1e30", "1e-300", "2e15", "1099511627777"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    JUNK_TEXT,
)
SMALL_INT_TEXT = st.one_of(st.integers(-2, 16).map(str), st.sampled_from(["1e30", "2.5", "nan", "x", "1_0", ""]))

# YAML values a mutation may put anywhere in a file.
YAML_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.sampled_from([10 ** 40, -(10 ** 40), 2 ** 63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", "false", "true", "sw", "fp32", "ring",
                                                                    "x" * 300, "1e9", "nan"]),
    st.lists(st.one_of(st.integers(-2, 5), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "x", "fp32"]), st.integers(-2, 5), max_size=2),
)


def _paths(doc, prefix=()):
    """Every (path) into a nested dict/list document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@st.composite
def mutated(draw, doc: dict):
    """``doc`` with one to three values replaced, keys deleted or junk keys added."""
    import copy

    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            doc = _set(doc, path, draw(YAML_VALUES))
        elif action == "delete" and path:
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if isinstance(parent, (dict, list)):
                del parent[path[-1]]
        elif action == "add":
            parent = doc
            for key in path:
                parent = parent[key]
            if isinstance(parent, dict):
                parent[draw(st.sampled_from(["junk", 5, "duplex", "schema", "nodes"]))] = draw(YAML_VALUES)
        if not isinstance(doc, dict):
            break
    return doc


HOSTILE_YAML = st.sampled_from([
    b"\xff\xfe\x00garbage",
    "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
    "a: " + "[" * 3000 + "]" * 3000 + "\n",
    "schema: " + "9" * 5000 + "\n",
    "[1, 2",
    "",
    "- just\n- a list\n",
    "schema: 1\n5: x\n",
    "!!python/object/apply:os.system ['echo hi']\n",
    "schema: true\ndevices: {}\n",
])

# ---- documents to mutate ------------------------------------------------------
DEVICE_DOC = {"schema": 1, "devices": {"fuzz": {"peak_TFLOPS": {"fp32": 15.67}, "memory_bandwidth_GBps": 898,
                                                 "cache_MiB": 6, "memory_GiB": 32, "compute_efficiency": 0.8,
                                                 "bandwidth_efficiency": 0.7, "precision": "fp32"}}}
TOPOLOGY_DOCS = [
    {"schema": 1, "name": "t", "nodes": ["a", "b", "c", "d"], "switches": ["sw"], "duplex": True,
     "defaults": {"bandwidth_GBps": 56, "latency_us": 1},
     "links": [["a", "sw"], ["b", "sw"], {"a": "c", "b": "sw", "bandwidth_GBps": 10}, ["d", "sw"]]},
    {"schema": 1, "builder": "torus2d", "nodes": 4, "options": {"bandwidth_GBps": 56, "latency_us": 1}},
    {"schema": 1, "builder": "two_level", "nodes": 8, "options": {"local_size": 4, "inter_bandwidth_GBps": 12.5}},
]
SCENARIO = {"schema": 1, "workload": {"name": "wordlm", "set": {"hidden": 64, "vocab": 500, "seq_len": 3, "batch": 4}},
            "device": "paper-v100", "system": {"memory_GiB": 4, "link_GBps": 56, "hop_latency_us": 75},
            "dataset": "billion-word",
            "plans": [{"data_parallel": 2},
                      {"data_parallel": 2, "stages": [["embedding", "lstm0"], ["lstm1", "output", "step"]],
                       "embedding_shards": 2, "fuse_accumulation": True, "comm_buffer": "chunked"}]}
SEARCH_SCENARIO = {"schema": 1, "workload": {"name": "wordlm", "set": {"hidden": 64, "vocab": 500, "seq_len": 3,
                                                                        "batch": 4, "layers": 1}},
                   "system": {"memory_GiB": 4}, "search": {"data_parallel": [1, 2], "max_stages": 2}}
SMALL_DIMS = {"wordlm": {"hidden": 32, "vocab": 100, "seq_len": 2, "batch": 2},
              "charlm": {"hidden": 16, "vocab": 20, "seq_len": 2, "batch": 2},
              "nmt": {"hidden": 16, "vocab": 50, "seq_len": 2, "batch": 2},
              "speech": {"hidden": 16, "batch": 2},
              "resnet": {"batch": 2}}


# ---- the tests ------------------------------------------------------------------
@FUZZ
@given(op=st.sampled_from(["allreduce", "allgather", "reducescatter", "broadcast", "alltoall"]),
       algorithm=st.sampled_from(["ring", "tree", "halving_doubling", "hierarchical", "butterfly"]),
       nodes=st.one_of(st.integers(-2, 40).map(str), st.sampled_from(["1000000000", "65536", "4096", "x", "1e3"])),
       nbytes=NUMBER_TEXT,
       extra=st.lists(st.sampled_from([["--bandwidth"], ["--latency"], ["--chunks"], ["--local-size"],
                                       ["--inter-bandwidth"], ["--inter-latency"], ["--mode", "exact"],
                                       ["--mode", "symmetric"], ["--topology", "switch"], ["--topology", "torus2d"],
                                       ["--topology", "two_level"], ["--topology", "nosuch"], ["--json"]]),
                      max_size=3),
       values=st.lists(NUMBER_TEXT, min_size=3, max_size=3))
def test_fuzz_collective(op, algorithm, nodes, nbytes, extra, values):
    argv = ["collective", op, "--algorithm", algorithm, "--nodes", nodes, "--bytes", nbytes]
    for i, flag in enumerate(extra):
        argv += flag if len(flag) == 2 or flag == ["--json"] else [*flag, values[i]]
    call(argv)


@FUZZ
@given(doc=st.one_of(*(mutated(d) for d in TOPOLOGY_DOCS)), raw=st.one_of(st.none(), HOSTILE_YAML),
       algorithm=st.sampled_from(["ring", "tree", "halving_doubling"]), nodes=st.sampled_from(["2", "4", "8"]))
def test_fuzz_topology_file(doc, raw, algorithm, nodes):
    text = raw if raw is not None else yaml.safe_dump(doc)
    path = write("topology.yaml", text)
    call(["collective", "allreduce", "--algorithm", algorithm, "--nodes", nodes, "--bytes", "1e6",
          "--topology", path, "--json"])


@FUZZ
@given(workload=st.sampled_from([*SMALL_DIMS, "gpt9"]),
       sets=st.dictionaries(st.sampled_from(["hidden", "vocab", "seq_len", "batch", "layers", "embed_dim",
                                             "projection", "optimizer", "depth", "width", "bogus"]),
                            SMALL_INT_TEXT, max_size=3),
       device=st.sampled_from(["paper-v100", "a100-sxm4-80gb", "nosuch", ""]), as_json=st.booleans())
def test_fuzz_step(workload, sets, device, as_json):
    dims = {**SMALL_DIMS.get(workload, {}), **sets}
    argv = ["step", workload, "--device", device] + [x for k, v in dims.items() for x in ("--set", f"{k}={v}")]
    call(argv + (["--json"] if as_json else []))


@FUZZ
@given(doc=mutated(DEVICE_DOC), raw=st.one_of(st.none(), HOSTILE_YAML))
def test_fuzz_device_file(doc, raw):
    path = write("device.yaml", raw if raw is not None else yaml.safe_dump(doc))
    call(["step", "wordlm", "--device", path, "--json"]
         + [x for k, v in SMALL_DIMS["wordlm"].items() for x in ("--set", f"{k}={v}")])


@FUZZ
@given(doc=st.one_of(mutated(SCENARIO), mutated(SEARCH_SCENARIO)), raw=st.one_of(st.none(), st.none(), HOSTILE_YAML),
       as_json=st.booleans())
def test_fuzz_scenario_file(doc, raw, as_json):
    path = write("scenario.yaml", raw if raw is not None else yaml.safe_dump(doc))
    call(["run", path, "--no-progress"] + (["--json"] if as_json else []))


@FUZZ
@given(flags=st.lists(st.sampled_from(["--memory-gib", "--memory-gb", "--link-GBps", "--hop-latency-us",
                                       "--target-days", "--max-accelerators", "--max-stages", "--data-parallel",
                                       "--dataset"]), max_size=3, unique=True),
       values=st.lists(st.one_of(NUMBER_TEXT, st.sampled_from(["1,2", "2,x", "9999999999999", "1,,2"])),
                       min_size=3, max_size=3),
       as_json=st.booleans())
def test_fuzz_plan(flags, values, as_json):
    argv = ["plan", "wordlm", "--no-progress", "--data-parallel", "1,2", "--max-stages", "2"]
    argv += [x for k, v in SMALL_DIMS["wordlm"].items() for x in ("--set", f"{k}={v}")]
    for flag, value in zip(flags, values):
        argv += [flag, value]
    call(argv + (["--json"] if as_json else []))


@FUZZ
@given(law=st.sampled_from(["learning-curve", "model-size", "steps", "critical-batch", "nosuch"]),
       points=st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True),
                                 st.floats(allow_nan=True, allow_infinity=True)), max_size=6),
       raw=st.one_of(st.none(), st.sampled_from([b"\xff\xfe", b"", b"x,y\n", b"x\n1\n2\n3\n", b"x,y\n1,a\n"])),
       cols=st.sampled_from([("x", "y"), ("x", "x"), ("y", "x"), ("x", "z")]), as_json=st.booleans())
def test_fuzz_fit(law, points, raw, cols, as_json):
    text = raw if raw is not None else "x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in points)
    path = write("points.csv", text)
    call(["fit", law, path, "--x", cols[0], "--y", cols[1]] + (["--json"] if as_json else []))


@FUZZ
@given(argv=st.lists(st.one_of(st.sampled_from(["step", "plan", "run", "collective", "fit", "experiment", "--json",
                                                "--out", "--trace", "--set", "--help", "wordlm", "nosuch",
                                                "/dev/null", "/proc/x", ""]), JUNK_TEXT), max_size=5))
def test_fuzz_argv(argv):
    if "--help" in argv or "-h" in argv:
        return  # help text is not an error
    if argv[:1] == ["experiment"] and len(argv) > 1 and argv[1] in ("table5",):
        return  # real experiments are run by their own tests
    call(argv)


@pytest.mark.parametrize("target", ["", "/dev/null", "/proc/x", "missing-dir/x.json", "."])
def test_outputs_refused_in_one_line(target):
    """``--out`` and ``--trace`` to impossible places: one line, status 2, before any work."""
    status, _, err = call(["collective", "allreduce", "--nodes", "4", "--bytes", "1e6", "--trace", target])
    assert status == 2 and "--trace" in err
    if target not in ("missing-dir/x.json", "."):  # (a missing directory or "." is a fine --out)
        status, _, err = call(["run", str(ROOT / "examples" / "small_lm_plans.yaml"), "--out", target])
        assert status == 2 and "--out" in err


def test_no_partial_outputs_on_interrupt(tmp_path, monkeypatch):
    """An interrupt after the CSV is written but before the PNG leaves neither in --out (the results
    store of finished evaluations stays: it is whole after every append, and a rerun resumes from it)."""
    from distsim.experiments import plan_search

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plan_search, "plot", boom)
    status, _, err = call_interrupted(["plan", "wordlm", "--no-progress", "--data-parallel", "1", "--max-stages", "1",
                                       "--out", str(tmp_path)]
                                      + [x for k, v in SMALL_DIMS["wordlm"].items() for x in ("--set", f"{k}={v}")])
    assert status == 130 and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def call_interrupted(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def test_sigterm_is_one_line(monkeypatch):
    """SIGTERM during a command: one line, status 143."""
    import signal

    from distsim.commands import step

    def terminate(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises before this returns
        return 0

    monkeypatch.setattr(step, "_run", terminate)
    status, _, err = call_interrupted(["step", "wordlm"])
    assert status == 143 and err.count("\n") == 1 and "SIGTERM" in err


def test_internal_error_says_bug(monkeypatch):
    from distsim.commands import step

    def broken(args):
        raise ZeroDivisionError("deep inside")

    monkeypatch.setattr(step, "_run", broken)
    status, _, err = call_interrupted(["step", "wordlm"])
    assert status == 1 and "Traceback" in err and "bug" in err.splitlines()[-1]


def test_non_finite_pattern_is_strict():
    """The output check itself: it flags nan/inf tokens, not words that contain them."""
    assert NON_FINITE.search("time_s  inf") and NON_FINITE.search('"x": NaN')
    assert not NON_FINITE.search("information infeasible nanoseconds")
