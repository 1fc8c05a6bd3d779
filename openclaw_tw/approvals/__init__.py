"""Exec approvals: a human decides what the assistant may run (§6.5, §15.1)."""
