"""The result of a simulation: tidy DataFrames, a flat summary and a Chrome trace.

Schemas (times in seconds, sizes in bytes)
------------------------------------------
``ops``
    one row per task per device stream it occupied: ``task`` (id), ``name``,
    ``kind`` (compute, collective, send), ``device``, ``stream``,
    ``start_s``, ``end_s``, ``duration_s``, ``layer``, ``phase``.  A task with
    no device (a free-standing collective) has one row with device ``None``.
``transfers``
    one row per simulated transfer: ``tag`` (the task's name), ``src``,
    ``dst``, ``nbytes`` (per transfer), ``count`` (identical transfers the row
    stands for: 1 in exact mode), ``start_s``, ``end_s``, ``hops``.
``links``
    one row per link resource that carried traffic: ``src``, ``dst``,
    ``bandwidth_bytes_per_s``, ``latency_s``, ``bytes``, ``busy_s``,
    ``utilization`` (busy / step time; <= 1 since a link serves one transfer
    at a time).
``devices``
    one row per device stream: ``device``, ``stream``, ``busy_s``, ``idle_s``.

Step-time breakdown (per device, :meth:`Result.breakdown`)
----------------------------------------------------------
``compute_s``: time its compute stream(s) are busy; ``exposed_comm_s``: time
its communication streams are busy while no compute runs; ``idle_s``: the
rest of the step.  The three add up to ``step_time_s``.  :meth:`summary`
reports the device with the most compute (ties: the first).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import units

OPS_COLUMNS = ["task", "name", "kind", "device", "stream", "start_s", "end_s", "duration_s", "layer", "phase"]
TRANSFER_COLUMNS = ["tag", "src", "dst", "nbytes", "count", "start_s", "end_s", "hops"]
LINK_COLUMNS = ["src", "dst", "bandwidth_bytes_per_s", "latency_s", "bytes", "busy_s", "utilization"]
DEVICE_COLUMNS = ["device", "stream", "busy_s", "idle_s"]


def union_length(intervals) -> float:
    """Total length covered by ``(start, end)`` intervals."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        elif end > cur_end:
            cur_end = end
    if cur_end is not None:
        total += cur_end - cur_start
    return total


@dataclass
class Result:
    """What :meth:`distsim.simulator.Simulator.run` returns (see module doc for schemas)."""

    step_time_s: float
    ops: pd.DataFrame
    transfers: pd.DataFrame
    links: pd.DataFrame
    devices: pd.DataFrame
    events: int
    wall_s: float
    compute_streams: tuple[str, ...] = ("compute",)
    link_spans: list = field(default_factory=list, repr=False)
    modes: dict = field(default_factory=dict)  # collective task name -> "exact" | "symmetric"

    # ---- derived ----------------------------------------------------------
    def breakdown(self) -> pd.DataFrame:
        """Per device: ``compute_s``, ``exposed_comm_s``, ``idle_s`` (summing to the step time)."""
        rows = []
        ops = self.ops[self.ops["device"].notna()]
        for device, group in ops.groupby("device", sort=False):
            is_compute = group["stream"].isin(self.compute_streams) & (group["kind"] == "compute")
            comp = list(zip(group.loc[is_compute, "start_s"], group.loc[is_compute, "end_s"]))
            comm = list(zip(group.loc[~is_compute, "start_s"], group.loc[~is_compute, "end_s"]))
            compute = union_length(comp)
            exposed = union_length(comp + comm) - compute
            rows.append((device, compute, exposed, max(0.0, self.step_time_s - compute - exposed)))
        return pd.DataFrame(rows, columns=["device", "compute_s", "exposed_comm_s", "idle_s"])

    def summary(self) -> dict:
        """A flat dict of scalars (deterministic: wall time is not in it)."""
        bd = self.breakdown()
        if len(bd):
            row = bd.loc[bd["compute_s"].idxmax()]
            compute, exposed, idle = float(row["compute_s"]), float(row["exposed_comm_s"]), float(row["idle_s"])
        else:
            compute, exposed, idle = 0.0, self.step_time_s, 0.0
        comm = self.ops[self.ops["kind"] != "compute"]
        return {
            "step_time_s": float(self.step_time_s),
            "compute_s": compute,
            "exposed_comm_s": exposed,
            "idle_s": idle,
            "comm_busy_s": float(union_length(zip(comm["start_s"], comm["end_s"]))),
            "bytes_transferred": float((self.transfers["nbytes"] * self.transfers["count"]).sum()),
            "link_bytes": float(self.links["bytes"].sum()),
            "max_link_utilization": float(self.links["utilization"].max()) if len(self.links) else 0.0,
            "tasks": int(self.ops["task"].nunique()),
            "transfers": int(self.transfers["count"].sum()),
            "events": int(self.events),
        }

    # ---- export -----------------------------------------------------------
    def chrome_trace(self, op_args: dict | None = None) -> dict:
        """The trace as a dict in Chrome's Trace Event format (times in microseconds), for Perfetto.

        One process per accelerator (``device N``) with its compute and
        communication tracks, a point-to-point send drawn on its sender's
        ``send`` track, free-standing collectives under ``collectives`` and
        one track per link under ``links``.  Each ``X`` event has the op's name,
        kind, layer and phase, and ``bytes`` where it moves data; ``op_args``
        ({op name: {key: value}}, e.g. FLOPs and bytes from the graph) adds more.
        Events that overlap on one track are spread over extra tracks
        (``comm #2``), so every track's events nest properly.
        """
        events: list[dict] = []
        pids: dict = {}
        tids: dict = {}
        lanes: dict = {}  # (pid, track) -> end time of each lane's last event (us)
        op_args = op_args or {}

        def pid_of(name: str, order: int) -> int:
            if name not in pids:
                pids[name] = len(pids) + 1
                events.append({"ph": "M", "name": "process_name", "pid": pids[name], "tid": 0, "ts": 0,
                               "args": {"name": name}})
                events.append({"ph": "M", "name": "process_sort_index", "pid": pids[name], "tid": 0, "ts": 0,
                               "args": {"sort_index": order}})
            return pids[name]

        def tid_of(pid: int, track: str, ts: float, end: float) -> int:
            ends = lanes.setdefault((pid, track), [])
            for lane, last in enumerate(ends):
                if ts >= last - 1e-9:
                    break
            else:
                lane = len(ends)
                ends.append(0.0)
            ends[lane] = end
            name = track if lane == 0 else f"{track} #{lane + 1}"
            key = (pid, name)
            if key not in tids:
                tids[key] = len(tids) + 1
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tids[key], "ts": 0,
                               "args": {"name": name}})
            return tids[key]

        bytes_of: dict = {}
        src_of: dict = {}
        for row in self.transfers.itertuples(index=False):
            bytes_of[row.tag] = bytes_of.get(row.tag, 0.0) + float(row.nbytes) * int(row.count)
            src_of.setdefault(row.tag, row.src)

        def device_name(device) -> str:
            if isinstance(device, float) and device.is_integer():
                device = int(device)
            return f"device {device}"

        rows = sorted(self.ops.itertuples(index=False), key=lambda r: (r.start_s, -r.duration_s))
        for row in rows:
            has_device = row.device is not None and not (isinstance(row.device, float) and math.isnan(row.device))
            track = str(row.stream)
            if has_device:
                pid = pid_of(device_name(row.device), _sort_key(row.device))
            elif row.name in src_of:  # a point-to-point send: on its sender
                pid, track = pid_of(device_name(src_of[row.name]), _sort_key(src_of[row.name])), "send"
            else:
                pid = pid_of("collectives", 1 << 30)
            ts, dur = row.start_s / units.US, max(0.0, row.duration_s / units.US)
            args = {"kind": row.kind, "layer": row.layer, "phase": row.phase}
            if row.name in bytes_of:
                args["bytes"] = bytes_of[row.name]
            args.update(op_args.get(row.name, {}))
            events.append({"ph": "X", "name": row.name, "cat": row.kind, "pid": pid,
                           "tid": tid_of(pid, track, ts, ts + dur), "ts": ts, "dur": dur, "args": args})
        per_transfer = {row.tag: float(row.nbytes) for row in self.transfers.itertuples(index=False)}
        for key, start, end, tag in sorted(self.link_spans, key=lambda span: (span[1], span[2])):
            link_pid = pid_of("links", (1 << 30) + 1)
            ts, dur = start / units.US, max(0.0, (end - start) / units.US)
            args = {"bytes": per_transfer[tag]} if tag in per_transfer else {}
            events.append({"ph": "X", "name": tag, "cat": "transfer", "pid": link_pid,
                           "tid": tid_of(link_pid, f"{key[0]}->{key[1]}", ts, ts + dur), "ts": ts, "dur": dur,
                           "args": args})
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def to_chrome_trace(self, path: str | Path, op_args: dict | None = None) -> Path:
        """Write the Chrome trace / Perfetto JSON (see :meth:`chrome_trace`) atomically: whole or absent."""
        from .files import write_text_atomic

        return write_text_atomic(path, json.dumps(self.chrome_trace(op_args), default=str), "trace file")


def _sort_key(device) -> int:
    try:
        return int(device)
    except (TypeError, ValueError):
        return 0


def build_frames(op_rows, transfer_rows, link_bytes, link_busy, topology, step_time_s, streams):
    """DataFrames from the tuples a run appended (called once, at the end)."""
    ops = pd.DataFrame(op_rows, columns=OPS_COLUMNS)
    transfers = (transfer_rows if isinstance(transfer_rows, pd.DataFrame)
                 else pd.DataFrame(transfer_rows, columns=TRANSFER_COLUMNS))
    link_rows = []
    for key in sorted(link_bytes, key=topology.link_order) if topology is not None else []:
        edge = topology.link(*key)
        busy = link_busy[key]
        link_rows.append((key[0], key[1], edge["bandwidth_bytes_per_s"], edge["latency_s"], link_bytes[key], busy,
                          busy / step_time_s if step_time_s > 0 else 0.0))
    links = pd.DataFrame(link_rows, columns=LINK_COLUMNS)
    dev_rows = []
    for (device, stream) in streams:
        sel = ops[(ops["device"] == device) & (ops["stream"] == stream)]
        busy = union_length(zip(sel["start_s"], sel["end_s"]))
        dev_rows.append((device, stream, busy, step_time_s - busy))
    devices = pd.DataFrame(dev_rows, columns=DEVICE_COLUMNS)
    return ops, transfers, links, devices
