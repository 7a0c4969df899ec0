"""Collective algorithms as step schedules, run over a topology's links.

Each algorithm module registers an :class:`~distsim.collectives.schedule.Algorithm`
in :data:`COLLECTIVES`: ``COLLECTIVES.get("ring").schedule("allreduce", n, nbytes)``
gives a :class:`~distsim.collectives.schedule.Schedule` (who sends how many bytes to
whom, step by step, in rank space) and ``.closed_form_s(...)`` its alpha-beta time.
:mod:`distsim.collectives.executor` runs a schedule as simpy processes, exactly
(one process per node) or by symmetry (each distinct step once).

Size conventions follow nccl-tests: ``nbytes`` is the buffer of an allreduce or a
broadcast, the *output* of an allgather and the *input* of a reduce-scatter.
"""

from ..registry import Registry

COLLECTIVES: Registry = Registry("collective algorithm", packages=["distsim.collectives"])

#: Operations the CLI and the closed forms know.
OPS = ("allreduce", "allgather", "reducescatter", "broadcast", "send")


def get_algorithm(name: str):
    """The registered algorithm ``name`` (ConfigError listing the accepted names)."""
    return COLLECTIVES.get(name)
