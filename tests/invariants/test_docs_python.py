"""docs/python.md is run as a doctest: every example on the page works as written."""

import doctest
from pathlib import Path


def test_python_guide_examples_run():
    path = Path(__file__).resolve().parents[2] / "docs" / "python.md"
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 20 and result.failed == 0
