"""Nodes: capability hosts that connect with role ``node`` (§6.4, §15.2)."""
