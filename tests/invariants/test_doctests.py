"""The runnable examples in the engine's docstrings are tests too."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "distsim.simulator", "distsim.collectives.closed_form", "distsim.topologies.ring", "distsim.topologies.switch",
    "distsim.topologies.torus", "distsim.topologies.two_level", "distsim.topologies.fat_tree",
    "distsim.workloads.gpt", "distsim.precision", "distsim.graph", "distsim.datasets",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
