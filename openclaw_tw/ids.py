"""Random identifiers on hot paths.

``str(uuid.uuid4())`` builds a ``UUID`` object (int conversion, version bits, then formatting
back); a handshake makes two of them (connection id, challenge nonce).  ``uuid4_text`` formats
the same RFC 4122 version-4 text straight from ``os.urandom``: 122 random bits, the version
nibble ``4`` and the variant bits ``10``.
"""

from __future__ import annotations

import os

_VARIANT = "89ab89ab89ab89ab"  # a nibble with its top two bits forced to 10


def uuid4_text() -> str:
    """A random UUID (version 4) in its canonical 36-character lower-case form."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"
