"""Timing models of one step on one device (filled in by issue 2; API fixed)."""
