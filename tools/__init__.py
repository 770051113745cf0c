"""Operators' tools, run from a workstation against a deployed stack (never deployed themselves)."""
