"""Chat attachments: validated against the limits announced in ``hello-ok.policy``.

Every attachment must be an object of the reference's shape; ``content`` (base64) must decode
and fit ``maxBytes`` (images: ``maxImageBytes``).  The transcript keeps the metadata (type,
MIME type, name, size), not the bytes.  The images of a turn go to its model as image parts
when the model takes images (``models.providers.*.models[].input``), for that turn only
(``images``; the runtime lets go of them once the model request is built).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from openclaw_tw.errors import GatewayError, invalid_request
from openclaw_tw.protocol.schema import Arr, Num, Obj, Str

MAX_BYTES = 19_464_192
MAX_IMAGE_BYTES = 6_291_456
MAX_ATTACHMENTS = 32

ATTACHMENTS = Arr(Obj(optional={
    "type": Str(), "mimeType": Str(), "fileName": Str(), "origin": Str(enum=["paste", "file"]),
    "content": Str(), "sizeBytes": Num(), "durationMs": Num(), "width": Num(),
    "height": Num()}), max_items=MAX_ATTACHMENTS)


def check(method: str, attachments: Any) -> list[dict[str, Any]]:
    """Validate; return the metadata to record.  Raises INVALID_REQUEST with the reason."""
    if attachments is None:
        return []
    problem = ATTACHMENTS.check(attachments)
    if problem is not None:
        where = problem[len("at /"):] if problem.startswith("at /") else None
        detail = f"at /attachments/{where}" if where else f"at /attachments: {problem}"
        raise invalid_request(f"invalid {method} params: {detail}")
    out = []
    for i, item in enumerate(attachments):
        size = 0
        content = item.get("content")
        if content is not None:
            try:
                size = len(base64.b64decode(content, validate=True))
            except (binascii.Error, ValueError):
                raise invalid_request(f"attachment {i}: content is not valid base64") from None
        mime = str(item.get("mimeType") or "")
        limit = MAX_IMAGE_BYTES if mime.startswith("image/") or item.get("type") == "image" \
            else MAX_BYTES
        if size > limit:
            raise GatewayError("INVALID_REQUEST",
                               f"attachment {i} is {size} bytes; the limit is {limit}",
                               {"code": "ATTACHMENT_TOO_LARGE", "limit": limit, "size": size})
        out.append({k: v for k, v in {"type": item.get("type"), "mimeType": mime or None,
                                      "fileName": item.get("fileName"),
                                      "sizeBytes": size or item.get("sizeBytes")}.items()
                    if v is not None})
    return out


IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def images(attachments: Any) -> list[str]:
    """The image attachments (already ``check``ed) as data URLs, for a model that takes them."""
    out = []
    for item in attachments or ():
        mime = str(item.get("mimeType") or "")
        if isinstance(item.get("content"), str) and mime in IMAGE_MIMES:
            out.append(f"data:{mime};base64,{item['content']}")
    return out
