"""CLI subcommands, one module each; see :mod:`distsim.cli`."""
