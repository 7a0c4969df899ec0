"""Helpers shared by the CLI subcommands."""

from __future__ import annotations

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
