"""Workload builders: each returns a :class:`distsim.graph.Graph` of one training step.

Builders register themselves in :data:`distsim.workload.WORKLOADS`.
"""
