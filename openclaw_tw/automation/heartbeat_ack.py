"""How the real heartbeat runner (2026.9.6) reads a heartbeat turn's reply: nothing to say
(``ok-empty``), an acknowledgment (``ok-token``) or an alert.

Checked live on the real gateway with a fake model: an empty reply, a silent reply (``NO_REPLY``
in any case, repeated, with punctuation at its edges: ``no_reply.``) and a reply of nothing but
``HEARTBEAT_OK`` (case as written, repeated, whitespace around) leave no reply at all, so the
beat is ``ok-empty``.  ``HEARTBEAT_OK`` at the start or end of the reply with at most
``ACK_MAX_CHARS`` other characters (``HEARTBEAT_OK.``, ``**HEARTBEAT_OK**``, ``HEARTBEAT_OK all
quiet``, ``All quiet. HEARTBEAT_OK``) is acknowledged: ``ok-token``.  Anything else is an alert
(``heartbeat_ok``, ``HEARTBEAT_``, ``NO_REPLY all quiet``): the runner's
``stripHeartbeatToken`` (heartbeat mode) and ``isSilentReplyPayloadText`` are the rules here.
"""

from __future__ import annotations

import json
import re
import unicodedata

TOKEN = "HEARTBEAT_OK"
SILENT = "NO_REPLY"
ACK_MAX_CHARS = 300

_SILENT_ONLY = re.compile(r"^\s*NO_REPLY(?:\s+NO_REPLY)*\s*$", re.I)
_TOKEN_ONLY = re.compile(r"^\s*HEARTBEAT_OK(?:\s+HEARTBEAT_OK)*\s*$")
_TOKEN_AT_END = re.compile(r"HEARTBEAT_OK[^\w]{0,4}$", re.ASCII)
_TAGS = re.compile(r"<[^>]*>")
_NBSP = re.compile(r"&nbsp;", re.I)
_LEADING_MARKS = re.compile(r"^[*`~_]+")
_TRAILING_MARKS = re.compile(r"[*`~_]+$")


def classify(text: str) -> tuple[str, str | None]:
    """(status, preview) for a heartbeat reply: the preview is None unless it is an alert."""
    body = text.strip()
    if not body or is_silent(body) or _TOKEN_ONLY.match(body):
        return "ok-empty", None
    if acknowledged(body):
        return "ok-token", None
    return "sent", body[:200]


def is_silent(text: str) -> bool:
    """A silent reply: ``NO_REPLY`` alone (any case, repeated, edge punctuation), or as a JSON
    string or ``{"action": "NO_REPLY"}``."""
    trimmed = text.strip()
    if _SILENT_ONLY.match(trimmed) or _SILENT_ONLY.match(_strip_edge_punctuation(trimmed)):
        return True
    if SILENT not in trimmed or trimmed[:1] not in ('"', "{"):
        return False
    try:
        parsed = json.loads(trimmed)
    except ValueError:
        return False
    if isinstance(parsed, str):
        return parsed.strip() == SILENT
    return isinstance(parsed, dict) and list(parsed) == ["action"] and \
        isinstance(parsed["action"], str) and parsed["action"].strip() == SILENT


def acknowledged(text: str) -> bool:
    """``HEARTBEAT_OK`` at the reply's edges, with at most ``ACK_MAX_CHARS`` left over."""
    trimmed = text.strip()
    if TOKEN not in trimmed:
        return False
    original = _strip_at_edges(trimmed)
    picked = original if original[1] and original[0] else _strip_at_edges(_unmarked(trimmed))
    rest, stripped = picked
    return stripped and len(rest.strip()) <= ACK_MAX_CHARS


def _unmarked(text: str) -> str:
    text = _NBSP.sub(" ", _TAGS.sub(" ", text))
    return _TRAILING_MARKS.sub("", _LEADING_MARKS.sub("", text))


def _strip_at_edges(text: str) -> tuple[str, bool]:
    """The text without ``HEARTBEAT_OK`` at its start or end (repeatedly), and whether any
    went; bounded: every pass removes a token."""
    if TOKEN not in text:
        return text, False
    stripped = False
    for _ in range(len(text) // len(TOKEN) + 1):
        current = text.strip()
        if current.startswith(TOKEN):
            text, stripped = current[len(TOKEN):].lstrip(), True
            continue
        if _TOKEN_AT_END.search(current):
            at = current.rfind(TOKEN)
            before = current[:at].rstrip()
            text = f"{before}{current[at + len(TOKEN):].lstrip()}".rstrip() if before else ""
            stripped = True
            continue
        break
    return " ".join(text.split()), stripped


def _strip_edge_punctuation(text: str) -> str:
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith("P"):
        end -= 1
    return text[start:end]
