"""Timestamps as the protocol writes them: ISO 8601, UTC, milliseconds, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_ms(ms: int) -> str:
    """``1795000000000`` → ``"2026-11-17T05:46:40.000Z"``."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
