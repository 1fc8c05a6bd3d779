"""Give freed heap memory back to the operating system.

CPython frees objects into glibc's heap, which keeps the pages.  After start-up (import-time
garbage) and after many connections have closed, ``malloc_trim`` returns the free pages, so
RSS reflects what the gateway actually holds.  A no-op where glibc is not available.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_trim: Callable[[int], int] | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
except (OSError, AttributeError):
    _trim = None


def trim() -> bool:
    """Collect garbage and return free heap pages to the OS; True if anything was released."""
    gc.collect()
    if _trim is None:
        return False
    return bool(_trim(0))


class TrimAfterDrop:
    """Calls ``trim`` when the connection count has fallen well below its recent peak."""

    def __init__(self, min_drop: int = 64) -> None:
        self.min_drop = min_drop
        self.peak = 0

    def observe(self, count: int) -> bool:
        self.peak = max(self.peak, count)
        if self.peak - count >= self.min_drop and count <= self.peak // 2:
            self.peak = count
            return trim()
        return False
