"""Topology builders (networkx graphs of accelerators and switches)."""
