"""Reproduction scripts: one question per module; see :mod:`distsim.experiments._runner`."""
