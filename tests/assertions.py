"""Assertions shared by the test folders."""

import pytest

from distsim.errors import ConfigError


def raises_one_line(match, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` raises a one-line ConfigError matching ``match``; returns its text."""
    with pytest.raises(ConfigError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)
