"""Helpers shared by the CLI subcommands."""

from __future__ import annotations

import argparse
import json
import math

from ..errors import ConfigError


def parse_set_options(items: list[str] | None) -> dict[str, int | float | str]:
    """Parse ``--set NAME=VALUE`` items; numbers become int or float.

    >>> parse_set_options(["hidden=2048", "lr=0.5", "optimizer=adam"])
    {'hidden': 2048, 'lr': 0.5, 'optimizer': 'adam'}
    """
    out: dict[str, int | float | str] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name or not raw:
            raise ConfigError(f"--set expects NAME=VALUE, got {item!r}")
        out[name] = _parse_scalar(raw)
    return out


def _parse_scalar(raw: str) -> int | float | str:
    for conv in (int, float):
        try:
            return conv(raw.replace("_", "")) if conv is int else conv(raw)
        except ValueError:
            pass
    return raw


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def dump_json(obj) -> str:
    """JSON text with NaN/inf as null and numpy scalars as Python numbers."""
    return json.dumps(_jsonable(obj), indent=2)


def output_dir_arg(text: str) -> str:
    """argparse ``type`` for ``--out DIR``: checked up front, before any work (created only when written)."""
    from ..files import check_output_dir_possible

    return _as_argument_error(check_output_dir_possible, text, "directory")


def output_file_arg(text: str) -> str:
    """argparse ``type`` for ``--trace FILE``: refused up front when empty, a directory or in a missing one."""
    from ..files import check_output_path

    return _as_argument_error(check_output_path, text, "file")


def _as_argument_error(check, text: str, what: str) -> str:
    try:
        check(text, what)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def check_degrees(flag: str, degrees) -> None:
    """Refuse parallel degrees past the largest topology distsim builds, up front."""
    from ..topology import MAX_TOPOLOGY_NODES

    too_big = [d for d in degrees if d > MAX_TOPOLOGY_NODES]
    if too_big:
        raise ConfigError(f"{flag} {too_big[0]} is more than {MAX_TOPOLOGY_NODES} accelerators (the limit)")
