"""Speed of simulating one collective: seconds, events/s and peak memory, exact and symmetric.

    python benchmarks/bench_collectives.py                 # the standard table (minutes)
    python benchmarks/bench_collectives.py --quick         # small sizes only (seconds)
    python benchmarks/bench_collectives.py --case ring:ring:allreduce:exact:512

A case is ``ALGORITHM:TOPOLOGY:OP:MODE:NODES`` and moves 1 GB (``--bytes``).  Each row
is simulated in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own; the
simulated time is printed next to the alpha-beta closed form at the one-transfer route
parameters so that a speed-up that changed a result shows at once.

Targets (issue 13, on a 2-core machine): exact ring all-reduce of 1 GB at 512 nodes under
2 s and at 4,096 nodes under 60 s; tree and halving-doubling all-reduce on a switch at
65,536 nodes under 5 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STANDARD = (
    [f"ring:ring:allreduce:symmetric:{n}" for n in (64, 512, 4096, 65536)]
    + [f"ring:ring:allreduce:exact:{n}" for n in (64, 512, 4096)]
    + [f"{a}:switch:allreduce:{m}:{n}" for a in ("tree", "halving_doubling") for m in ("symmetric", "exact")
       for n in (64, 4096, 65536)]
)
QUICK = ["ring:ring:allreduce:symmetric:64", "ring:ring:allreduce:exact:64", "ring:ring:allreduce:exact:256",
         "tree:switch:allreduce:auto:1024", "halving_doubling:switch:allreduce:auto:1024"]


def run_case(case: str, nbytes: float) -> dict:
    """Simulate one case in this process and measure it."""
    sys.path.insert(0, str(ROOT))
    from distsim.collectives import get_algorithm
    from distsim.simulator import simulate_collective
    from distsim.topology import build_topology

    algorithm, topo_name, op, mode, nodes = case.split(":")
    n = int(nodes)
    t0 = time.perf_counter()
    topo = build_topology(topo_name, n)
    r = simulate_collective(op, nbytes, topo, algorithm=algorithm, mode=mode)
    wall = time.perf_counter() - t0
    lat, bw = topo.path_params(topo.route(topo.endpoints[0], topo.endpoints[1]))
    closed = get_algorithm(algorithm).closed_form_s(op, n, nbytes, bandwidth_bytes_per_s=bw, latency_s=lat)
    return {"case": case, "nodes": n, "mode": r.modes[op], "sim_time_s": r.step_time_s, "closed_form_s": closed,
            "transfers": int(r.transfers["count"].sum()), "events": r.events, "wall_s": wall, "sim_wall_s": r.wall_s,
            "events_per_s": r.events / r.wall_s if r.wall_s else float("inf"),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes only")
    p.add_argument("--case", action="append", help="ALGORITHM:TOPOLOGY:OP:MODE:NODES (repeatable)")
    p.add_argument("--bytes", type=float, default=1e9, help="collective size in bytes (default 1e9)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per case (default 600)")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    p.add_argument("--inline", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cases = args.case or (QUICK if args.quick else STANDARD)
    if args.inline:
        print(json.dumps(run_case(cases[0], args.bytes)))
        return 0
    rows = []
    for case in cases:
        cmd = [sys.executable, __file__, "--inline", "--case", case, "--bytes", repr(args.bytes)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        except subprocess.TimeoutExpired:
            rows.append({"case": case, "error": f"over {args.timeout:g} s"})
        except subprocess.CalledProcessError as exc:
            rows.append({"case": case, "error": exc.stderr.strip().splitlines()[-1]})
        if not args.json:
            r = rows[-1]
            if "error" in r:
                print(f"{r['case']:<50} {r['error']}", flush=True)
            else:
                if len(rows) == 1:
                    print(f"{'case':<50}{'mode':<10}{'sim s':>11}{'closed s':>11}{'transfers':>12}{'events':>11}"
                          f"{'events/s':>11}{'wall s':>9}{'RSS MiB':>9}")
                print(f"{r['case']:<50}{r['mode']:<10}{r['sim_time_s']:>11.6g}{r['closed_form_s']:>11.6g}"
                      f"{r['transfers']:>12}{r['events']:>11}{r['events_per_s']:>11.3g}{r['wall_s']:>9.3f}"
                      f"{r['peak_rss_mib']:>9.0f}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
