"""Exception hierarchy.  User-facing errors are one line naming field and value."""


class DistsimError(Exception):
    """Base class of every error distsim raises on purpose."""


class ConfigError(DistsimError, ValueError):
    """Bad user input: an unknown name, a non-positive size, a malformed file."""


class InfeasiblePlan(DistsimError):
    """A plan that cannot run at all (not a failed memory check, which is a result)."""


def require_positive_int(field: str, value, *, allow_zero: bool = False) -> int:
    """Return ``value`` as int or raise ConfigError naming ``field``.

    Booleans and non-integral floats are rejected; nothing is rounded.
    """
    ok_type = isinstance(value, int) and not isinstance(value, bool)
    if not ok_type and isinstance(value, float) and value.is_integer():
        value, ok_type = int(value), True
    lower = 0 if allow_zero else 1
    if not ok_type or value < lower:
        kind = "a non-negative integer" if allow_zero else "a positive integer"
        raise ConfigError(f"{field} must be {kind}, got {value!r}")
    return value


def require_positive(field: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float or raise ConfigError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field} must be a number, got {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{field} must be finite, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{field} must be {kind}, got {value!r}")
    return value
