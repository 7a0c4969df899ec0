"""Exception hierarchy.  User-facing errors are one line naming field and value."""


#: Longest rendering of a user's value in an error message (characters).
MAX_VALUE_CHARS = 80


def short(value, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a message never prints a whole huge value.

    >>> short("x" * 200, 30)
    "'xxxxxxxxxxxxx...(202 chars)"
    """
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails must not hide the error
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    return f"{text[: max(1, limit - 16)]}...({len(text)} chars)"


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
        raise ConfigError(f"{field} must be {kind}, got {short(value)}")
    return value


def require_positive(field: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float or raise ConfigError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field} must be a number, got {short(value)}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{field} must be finite, got {short(value)}")
    if value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{field} must be {kind}, got {short(value)}")
    return value


def require_in_range(field: str, value, low: float, high: float, unit: str = "", *, allow_zero: bool = False) -> float:
    """:func:`require_positive`, then ``low <= value <= high`` (zero passes when allowed), naming the range."""
    value = require_positive(field, value, allow_zero=allow_zero)
    if not (low <= value <= high) and not (allow_zero and value == 0):
        raise ConfigError(f"{field} must be between {low:g} and {high:g}{' ' + unit if unit else ''}, got {value:g}")
    return value
