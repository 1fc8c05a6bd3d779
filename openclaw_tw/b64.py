"""base64url without padding (RFC 4648 §5), the wire form of keys, signatures, tokens,
config hashes and cursors: one copy for every layer."""

from __future__ import annotations

import base64


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Padding optional; any character outside the URL-safe alphabet raises ValueError
    (``binascii.Error`` is one)."""
    if "+" in text or "/" in text:  # b64decode would take the standard alphabet's too
        raise ValueError("not base64url")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
