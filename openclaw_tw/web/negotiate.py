"""HTTP content negotiation as the reference gateway does it (``http-media-range.ts``,
``http-content-encoding.ts``, ``http-conditional.ts``): whether an ``Accept`` header admits an
HTML document, which content codings ``Accept-Encoding`` allows (best first), and
``If-Modified-Since``.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def split_header(value: str, delimiter: str, quoted_strings: bool = True) -> list[str] | None:
    """Split on ``delimiter`` outside double quotes; ``None`` when a quote is left open."""
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and quoted_strings and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == delimiter:
            parts.append(value[start:i])
            start = i + 1
    if quoted or escaped:
        return None
    parts.append(value[start:])
    return parts


def _param_value(value: str) -> str | None:
    if _TOKEN.match(value):
        return value
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return None
    out, escaped = [], False
    for ch in value[1:-1]:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return None
        else:
            out.append(ch)
    return None if escaped else "".join(out)


def _media_type(value: str, allow_quality: bool
                ) -> tuple[str, str, dict[str, str], float] | None:
    segments = split_header(value, ";")
    if not segments:
        return None
    kind = segments[0].strip(" \t").lower().split("/")
    if len(kind) != 2 or not all(kind) or not all(_TOKEN.match(k) for k in kind):
        return None
    quality, seen_q = 1.0, False
    params: dict[str, str] = {}
    for raw in segments[1:]:
        param = raw.strip(" \t")
        if not param:
            continue
        sep = param.find("=")
        name = (param if sep < 0 else param[:sep]).lower()
        if not _TOKEN.match(name) or sep <= 0:
            return None
        raw_value = param[sep + 1:]
        if not raw_value:
            return None
        if name == "q":
            if not allow_quality or seen_q or not _QVALUE.match(raw_value):
                return None
            seen_q, quality = True, float(raw_value)
            continue
        parsed = _param_value(raw_value)
        if parsed is None or name in params:
            return None
        params[name] = parsed.lower() if name == "charset" else parsed
    return kind[0], kind[1], params, quality


def accepts_media_type(accept: str, representation: str, wildcards: bool = True) -> bool:
    """The quality of the most specific range matching ``representation`` is above zero."""
    rep = _media_type(representation, False)
    ranges = split_header(accept, ",")
    if rep is None or not ranges:
        return False
    best_media, best_params, best_q = -1, -1, 0.0
    for raw in ranges:
        rng = _media_type(raw, True)
        if rng is None:
            continue
        rtype, rsub, rparams, q = rng
        exact = rtype == rep[0] and rsub == rep[1]
        wild = wildcards and rsub == "*" and rtype in ("*", rep[0])
        if not (exact or wild) or any(rep[2].get(k) != v for k, v in rparams.items()):
            continue
        media = 0 if rtype == "*" else 1 if rsub == "*" else 2
        cmp = (media - best_media) or (len(rparams) - best_params)
        if cmp > 0:
            best_media, best_params, best_q = media, len(rparams), q
        elif cmp == 0:
            best_q = max(best_q, q)
    return best_q > 0


def accepts_html(accept: str | None) -> bool:
    """May an unmatched path be answered with the app shell?  A headerless or wildcard-only
    request may; an explicit ``text/html;q=0`` overrides a broader wildcard."""
    value = (accept or "").strip()
    if not value:
        return True
    return accepts_media_type(value, "text/html; charset=utf-8") or \
        accepts_media_type(value, "application/xhtml+xml", wildcards=False)


def content_encodings(header: str | None, available: frozenset[str] | set[str]) -> list[str]:
    """Acceptable codings among ``br``, ``gzip`` (when ``available``) and ``identity``, best
    first; empty when nothing is acceptable (a 406)."""
    value = header or ""
    if not value.strip():
        return ["identity"]
    qualities: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = entry.split(";")
        name = name.strip().lower()
        if not name:
            continue
        q_text = next((p.strip()[2:] for p in params if p.strip().lower().startswith("q=")), None)
        quality = 1.0 if q_text is None else float(q_text) if _QVALUE.match(q_text) else 0.0
        qualities[name] = max(qualities.get(name, 0.0), quality)
    wildcard = qualities.get("*")
    identity = qualities.get("identity", 0.0 if wildcard == 0 else 1.0)

    def quality(name: str) -> float:
        if name == "identity":
            return identity
        q = qualities.get(name, wildcard)
        return 0.0 if q is None else q

    order = [e for e in ("br", "gzip", "identity")
             if (e == "identity" or e in available) and quality(e) > 0]
    return sorted(order, key=quality, reverse=True)  # stable: ties keep br, gzip, identity


def not_modified_since(header: str | None, last_modified_s: float, now_s: float) -> bool:
    """``If-Modified-Since`` names a time at or after the last modification (and not in the
    future, which a client cannot have seen)."""
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header.strip()).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since > now_s:
        return False
    return int(last_modified_s) <= since
