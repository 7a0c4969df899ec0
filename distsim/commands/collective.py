"""``distsim collective OP``: simulate one collective on an idle topology."""

from __future__ import annotations

import time

from ..collectives import get_algorithm
from ..collectives.closed_form import bus_bandwidth_factor
from ..collectives.executor import MODES
from ..errors import ConfigError
from ..simulator import simulate_collective
from ..topology import DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, TOPOLOGIES, get_topology
from ._common import dump_json, output_file_arg

OPS = ("allreduce", "allgather", "reducescatter", "broadcast")
#: Topology used when --topology is not given.
DEFAULT_TOPOLOGY = {"ring": "ring", "hierarchical": "two_level"}


def register(sub) -> None:
    p = sub.add_parser(
        "collective",
        help="simulate one collective (all-reduce, ...) over a topology",
        description=(
            "Simulate one collective on an otherwise idle topology and report its time and "
            "nccl-tests bus bandwidth (busbw = S/t x 2(n-1)/n for allreduce, x (n-1)/n for "
            "allgather and reducescatter, x 1 for broadcast; GB/s = 1e9 bytes/s). Sizes follow "
            "nccl-tests: S is the buffer of allreduce/broadcast, the output of allgather and the "
            "input of reducescatter."),
    )
    p.add_argument("op", metavar="OP", choices=OPS, help="one of: " + ", ".join(OPS))
    p.add_argument("--algorithm", default="ring",
                   help="ring (default), tree, halving_doubling, hierarchical")
    p.add_argument("--nodes", type=int, required=True, help="number of participating accelerators N")
    p.add_argument("--bytes", type=float, required=True, dest="nbytes", help="message size S in bytes (e.g. 1e9)")
    p.add_argument("--bandwidth", type=float, default=DEFAULT_BANDWIDTH_BYTES_PER_S,
                   help="link bandwidth in bytes/s (default 56e9 = 56 GB/s, PPoPP 2019 Table 4); "
                        "ignored for a topology FILE")
    p.add_argument("--latency", type=float, default=DEFAULT_LATENCY_S,
                   help="per-link latency in seconds (default 1e-6); ignored for a topology FILE")
    p.add_argument("--topology", default=None,
                   help="topology name (" + ", ".join(_topology_names()) + ") or a YAML FILE; default: ring for "
                        "the ring algorithm, two_level for hierarchical, switch otherwise")
    p.add_argument("--local-size", type=int, default=8, help="accelerators per node for hierarchical/two_level (default 8)")
    p.add_argument("--inter-bandwidth", type=float, default=None,
                   help="two_level: network link bandwidth in bytes/s (default 12.5e9)")
    p.add_argument("--inter-latency", type=float, default=None,
                   help="two_level: network link latency in seconds (default 5e-6)")
    p.add_argument("--chunks", type=int, default=1, help="ring broadcast: pipeline pieces (default 1)")
    p.add_argument("--mode", choices=MODES, default="auto",
                   help="exact (every node), symmetric (each distinct step once) or auto (symmetric when exact)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", metavar="FILE", default=None, type=output_file_arg, help="write a Chrome trace / Perfetto JSON")
    p.set_defaults(func=_run)


def _topology_names() -> list[str]:
    try:
        return TOPOLOGIES.names()
    except Exception:  # never break --help
        return ["ring", "switch", "..."]


def _run(args) -> int:
    wall0 = time.perf_counter()
    algorithm = get_algorithm(args.algorithm)
    if args.op not in algorithm.ops:
        raise ConfigError(f"algorithm {args.algorithm!r} does not implement {args.op!r}; it implements: "
                          + ", ".join(algorithm.ops))
    name = args.topology or DEFAULT_TOPOLOGY.get(args.algorithm, "switch")
    options = {"bandwidth_bytes_per_s": args.bandwidth, "latency_s": args.latency}
    if name == "two_level":
        options["local_size"] = args.local_size
        if args.inter_bandwidth is not None:
            options["inter_bandwidth_bytes_per_s"] = args.inter_bandwidth
        if args.inter_latency is not None:
            options["inter_latency_s"] = args.inter_latency
    topology = get_topology(name, args.nodes, **options)
    alg_options = {}
    if args.algorithm == "hierarchical":
        alg_options["local_size"] = args.local_size
    if args.algorithm == "ring" and args.op == "broadcast":
        alg_options["chunks"] = args.chunks
    participants = topology.participants(args.nodes)
    result = simulate_collective(args.op, args.nbytes, topology, algorithm=args.algorithm, participants=participants,
                                 mode=args.mode, **alg_options)
    n, t = len(participants), result.step_time_s
    algbw = args.nbytes / t / 1e9 if t > 0 else float("inf")
    busbw = algbw * bus_bandwidth_factor(args.op, n)
    out = {
        "op": args.op,
        "algorithm": args.algorithm,
        "nodes": n,
        "bytes": args.nbytes,
        "topology": topology.name,
        "mode": result.modes.get(args.op, "exact"),
        "time_s": t,
        "closed_form_s": _closed_form(args, algorithm, topology, participants, alg_options),
        "algbw_gbps": algbw,
        "bus_bandwidth_gbps": busbw,
        "transfers": int(result.transfers["count"].sum()),
        "events": result.events,
    }
    if args.trace:
        result.to_chrome_trace(args.trace)
    out["wall_s"] = time.perf_counter() - wall0
    if args.json:
        print(dump_json(out))
    else:
        width = max(map(len, out))
        for key, value in out.items():
            print(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0


def _closed_form(args, algorithm, topology, participants, alg_options):
    """The algorithm's closed form at the route parameters between ranks 0 and 1
    (and, for hierarchical, ranks 0 and local_size); None for a single node."""
    if len(participants) < 2:
        return 0.0
    lat, bw = topology.path_params(topology.route(participants[0], participants[1]))
    extra = dict(alg_options)
    if args.algorithm == "hierarchical" and len(participants) > args.local_size:
        ilat, ibw = topology.path_params(topology.route(participants[0], participants[args.local_size]))
        extra.update(inter_bandwidth_bytes_per_s=ibw, inter_latency_s=ilat)
    try:
        return algorithm.closed_form_s(args.op, len(participants), args.nbytes, bandwidth_bytes_per_s=bw,
                                       latency_s=lat, **extra)
    except ConfigError:
        return None
