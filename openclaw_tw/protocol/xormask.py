"""Unmasking small client frames (RFC 6455 §5.3) without Autobahn's native masker.

Autobahn builds a CFFI masker for every masked frame it receives (an import lookup, two
``ffi.new`` buffers, a ``gc`` hook, then a copy in and out for the payload): about 4-7 us
for a frame of a few hundred bytes, on every request and on both frames of a handshake.
For small payloads one big-integer XOR does the same in 1-2 us; from about 1.5 KB up the
native one is faster, so larger frames keep it (``protocol/websocket.py`` installs the
choice).  Same interface as Autobahn's maskers: ``process`` may be called on consecutive
pieces of one payload, ``pointer`` is how many bytes went through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SMALL_FRAME = 1024  # payload bytes up to which SmallFrameMasker is used


class SmallFrameMasker:
    __slots__ = ("_mask", "_ptr")

    def __init__(self, mask: bytes) -> None:
        if len(mask) != 4:
            raise ValueError("a WebSocket mask is 4 bytes")
        self._mask = bytes(mask)
        self._ptr = 0

    def pointer(self) -> int:
        return self._ptr

    def reset(self) -> None:
        self._ptr = 0

    def process(self, data: bytes) -> bytes:
        n = len(data)
        start = self._ptr & 3
        self._ptr += n
        mask = self._mask
        key = (mask[start:] + mask * (n // 4 + 1))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
            n, "little")


def masker_factory(native: Callable[..., Any]) -> Callable[..., Any]:
    """A drop-in for Autobahn's ``create_xor_masker(mask, length)``: ours up to
    ``SMALL_FRAME`` payload bytes, ``native`` for larger or unknown lengths."""

    def create(mask: bytes, length: int | None = None) -> Any:
        if length is not None and length <= SMALL_FRAME:
            return SmallFrameMasker(mask)
        return native(mask, length)

    return create
