"""Speed of the plan search (issue 13): candidates, seconds and milliseconds per candidate, per workload.

Run: python benchmarks/bench_search.py [--quick] [--workers N] [WORKLOAD ...]
Defaults: the case study (``wordlm --preset case-study``) and every workload at its defaults, as
``distsim plan`` searches them (all data-parallel degrees 1..4096; gpt with --max-stages 6, since its
14 layers make more stage partitions than the search enumerates).  ``--quick``: degrees 1, 8, 64 and
at most 3 stages.  Each search starts with empty per-graph caches (graph building is not timed).
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

from distsim import evalcache
from distsim.hardware import paper_hardware
from distsim.search import SearchOptions, search_plans
from distsim.sweep import Runner
from distsim.workload import configure_workload

CASES = {
    "case-study": ("wordlm", "case-study", {}),
    "wordlm": ("wordlm", None, {}),
    "charlm": ("charlm", None, {}),
    "nmt": ("nmt", None, {}),
    "speech": ("speech", None, {}),
    "resnet": ("resnet", None, {}),
    "gpt": ("gpt", None, {"max_stages": 6}),
}


def bench(case: str, quick: bool, runner: Runner) -> dict:
    workload, preset, extra = CASES[case]
    graph = configure_workload(workload, preset=preset, options={})
    evalcache.clear()
    options = SearchOptions(progress=False, max_stages=3 if quick else extra.get("max_stages"))
    degrees = (1, 8, 64) if quick else tuple(2**i for i in range(13))
    t0 = time.perf_counter()
    df = search_plans(graph, paper_hardware(), data_parallel=degrees, options=options, runner=runner)
    seconds = time.perf_counter() - t0
    return {"case": case, "ops": len(graph.ops), "candidates": df.attrs["candidates"],
            "memory_checks": df.attrs["memory_checks"], "simulated": df.attrs["simulated"], "fit": len(df),
            "seconds": seconds, "ms_per_candidate": 1e3 * seconds / df.attrs["candidates"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES), choices=list(CASES), metavar="WORKLOAD")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, help="local Dask workers (default: in-process)")
    args = parser.parse_args()
    runner = Runner(workers=args.workers)
    print(f"{'case':<12}{'ops':>8}{'candidates':>12}{'checks':>8}{'simulated':>11}{'fit':>6}"
          f"{'seconds':>10}{'ms/candidate':>14}", flush=True)
    for case in args.cases:
        r = bench(case, args.quick, runner)
        print(f"{r['case']:<12}{r['ops']:>8}{r['candidates']:>12}{r['memory_checks']:>8}{r['simulated']:>11}"
              f"{r['fit']:>6}{r['seconds']:>10.2f}{r['ms_per_candidate']:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
