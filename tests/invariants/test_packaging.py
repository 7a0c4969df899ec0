"""What `pip install` puts on the path: `distsim` is the only top-level import name (issue 11)."""

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def test_only_distsim_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(str(ROOT), include=include)
    assert {p.split(".")[0] for p in packages} == {"distsim"}
    # the repository's top-level folders travel inside it
    assert {"distsim.workloads", "distsim.topologies", "distsim.experiments"} <= set(packages)
    assert "presets/*.yaml" in config["tool"]["setuptools"]["package-data"]["distsim.topologies"]


def test_core_imports_neither_experiments_nor_the_cli():
    """Layering: distsim/*.py (the library) never imports distsim.experiments, distsim.cli or distsim.commands."""
    offenders = []
    for path in sorted((ROOT / "distsim").glob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        text = path.read_text()
        for bad in ("distsim.experiments", "distsim.commands", "from .commands", "from .cli", "from .experiments",
                    "distsim.cli"):
            if bad in text:
                offenders.append(f"{path.name}: {bad}")
    assert offenders == []
