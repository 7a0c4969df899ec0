"""Units: the only place where unit conversions live.

In memory everything is SI (seconds, bytes, FLOP, FLOP/s, bytes/s).  "GB" means
1e9 bytes and "GiB" means 2**30 bytes, everywhere.  Files and reports use the
human units named here and convert once, at the boundary.
"""

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KiB = 2.0**10
MiB = 2.0**20
GiB = 2.0**30
TiB = 2.0**40

TERA = 1e12
GIGA = 1e9
MEGA = 1e6

MS = 1e-3
US = 1e-6
NS = 1e-9
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


def to_gib(nbytes: float) -> float:
    """Bytes -> GiB (2**30 bytes)."""
    return nbytes / GiB


def to_gb(nbytes: float) -> float:
    """Bytes -> GB (1e9 bytes)."""
    return nbytes / GB


def to_days(seconds: float) -> float:
    """Seconds -> days."""
    return seconds / DAY
