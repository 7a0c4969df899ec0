"""``distsim collective OP``: simulate one collective on an idle topology."""

from __future__ import annotations

import time

from .. import units
from ..collectives import get_algorithm
from ..collectives.closed_form import bus_bandwidth_factor
from ..collectives.executor import MODES, resolve_mode
from ..errors import ConfigError, require_positive, require_positive_int
from ..simulator import simulate_collective
from ..topology import DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, TOPOLOGIES, get_topology
from ._common import dump_json, output_file_arg

OPS = ("allreduce", "allgather", "reducescatter", "broadcast")
#: Most transfers simulated one by one (exact mode: about seven simpy events each, some seconds per
#: 100,000); a larger collective is refused up front unless symmetric mode applies.
MAX_EXACT_TRANSFERS = 100_000
#: Most distinct transfers in a schedule (symmetric mode plans each one; about 10 s per million).
MAX_SCHEDULE_TRANSFERS = 1_000_000
#: Largest message accepted (bytes): 1 PB.
MAX_BYTES = 1e15
#: Link bandwidth range accepted (bytes/s) and longest latency (s): keeps every printed time finite.
MIN_BANDWIDTH, MAX_BANDWIDTH, MAX_LATENCY_S = 1.0, 1e15, 3600.0
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
    p.add_argument("--local-size", type=int, default=None, help="accelerators per node for hierarchical/two_level (default 8)")
    p.add_argument("--inter-bandwidth", type=float, default=None,
                   help="two_level: network link bandwidth in bytes/s (default 12.5e9)")
    p.add_argument("--inter-latency", type=float, default=None,
                   help="two_level: network link latency in seconds (default 5e-6)")
    p.add_argument("--chunks", type=int, default=None, help="ring broadcast: pipeline pieces (default 1)")
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
    _check_ranges(args)
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
    if len(participants) < 2:
        raise ConfigError(f"a collective needs at least 2 nodes, got {len(participants)} (one node moves nothing: "
                          "its bandwidth is undefined)")
    if args.chunks * (len(participants) - 1) > MAX_SCHEDULE_TRANSFERS:
        raise ConfigError(f"--chunks {args.chunks} over {len(participants)} nodes makes "
                          f"{args.chunks * (len(participants) - 1)} transfers, more than {MAX_SCHEDULE_TRANSFERS} "
                          "(the limit)")
    schedule = algorithm.schedule(args.op, len(participants), args.nbytes, **alg_options)
    distinct = sum(len(step.transfers) for step in schedule.steps)
    if distinct > MAX_SCHEDULE_TRANSFERS:
        raise ConfigError(f"{args.algorithm} {args.op} over {len(participants)} nodes has {distinct} distinct "
                          f"transfers, more than {MAX_SCHEDULE_TRANSFERS} (the limit); use fewer --nodes")
    mode, _ = resolve_mode(args.mode, schedule, participants, topology)
    if mode == "exact" and schedule.transfer_count > MAX_EXACT_TRANSFERS:
        raise ConfigError(f"{args.algorithm} {args.op} over {len(participants)} nodes simulates "
                          f"{schedule.transfer_count} transfers one by one, more than {MAX_EXACT_TRANSFERS} (the "
                          "limit); use fewer --nodes or --chunks" + ("" if args.mode == "exact" else
                                                                     " (symmetric mode does not apply here)"))
    result = simulate_collective(args.op, args.nbytes, topology, algorithm=args.algorithm, participants=participants,
                                 mode=args.mode, **alg_options)
    n, t = len(participants), result.step_time_s
    algbw = args.nbytes / t / units.GB if t > 0 else float("inf")
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


def _check_ranges(args) -> None:
    """Refuse values that would make a printed time or bandwidth non-finite or absurd, naming the flag."""
    require_positive("--bytes", args.nbytes)
    if args.nbytes > MAX_BYTES:
        raise ConfigError(f"--bytes {args.nbytes:g} is more than {MAX_BYTES:g} (the limit)")
    for flag, value in (("--bandwidth", args.bandwidth), ("--inter-bandwidth", args.inter_bandwidth)):
        if value is not None and require_positive(flag, value) and not MIN_BANDWIDTH <= value <= MAX_BANDWIDTH:
            raise ConfigError(f"{flag} {value:g} bytes/s is outside [{MIN_BANDWIDTH:g}, {MAX_BANDWIDTH:g}]")
    for flag, value in (("--latency", args.latency), ("--inter-latency", args.inter_latency)):
        if value is not None and require_positive(flag, value, allow_zero=True) > MAX_LATENCY_S:
            raise ConfigError(f"{flag} {value:g} s is more than {MAX_LATENCY_S:g} s (the limit)")
    name = args.topology or DEFAULT_TOPOLOGY.get(args.algorithm, "switch")
    for flag, value, applies, where in (
            ("--local-size", args.local_size, args.algorithm == "hierarchical" or name == "two_level",
             "the hierarchical algorithm or the two_level topology"),
            ("--chunks", args.chunks, args.algorithm == "ring" and args.op == "broadcast", "ring broadcast"),
            ("--inter-bandwidth", args.inter_bandwidth, name == "two_level", "the two_level topology"),
            ("--inter-latency", args.inter_latency, name == "two_level", "the two_level topology")):
        if value is not None and not applies:
            raise ConfigError(f"{flag} applies only to {where}")
    for flag, value in (("--local-size", args.local_size), ("--chunks", args.chunks)):
        if value is not None:
            require_positive_int(flag, value)
    args.local_size = 8 if args.local_size is None else args.local_size
    args.chunks = 1 if args.chunks is None else args.chunks
    if args.topology is not None and args.topology.endswith((".yaml", ".yml")):
        for flag, value, default in (("--bandwidth", args.bandwidth, DEFAULT_BANDWIDTH_BYTES_PER_S),
                                     ("--latency", args.latency, DEFAULT_LATENCY_S)):
            if value != default:
                raise ConfigError(f"{flag} does not apply to a topology FILE (its links set their own)")


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
