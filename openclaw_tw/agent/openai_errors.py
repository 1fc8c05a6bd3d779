"""OpenAI-style failures -> ``ProviderError``: HTTP error responses, ``{"error": ...}`` events
inside a stream, and connection failures.  ``redact`` scrubs the caller's secrets from every
provider-supplied text before it lands in a message or preview."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from twisted.internet import error as neterr
from twisted.python.failure import Failure
from twisted.web.client import ResponseNeverReceived

from openclaw_tw import _json
from openclaw_tw.agent.models import ProviderError

PREVIEW_CHARS = 500
_CONTEXT = re.compile(r"context[_ ]length|context window|maximum context|too many tokens", re.I)


def error_fields(obj: Any) -> tuple[str | None, str | None, str | None]:
    """(message, type, code) out of a parsed error body: ``{"error": {...}}``, ``{"error":
    "text"}``, or a bare ``{"message"|"detail": ...}``."""
    err = obj.get("error", obj) if isinstance(obj, dict) else obj
    if isinstance(err, str):
        return err, None, None
    if not isinstance(err, dict):
        return None, None, None
    message = err.get("message") or err.get("detail") or err.get("msg")
    etype, code = err.get("type"), err.get("code")
    return (str(message) if message else None, str(etype) if etype else None,
            str(code) if code is not None else None)


def http_error(provider: str, status: int, headers: Any, body: bytes, *, has_key: bool,
               redact: Callable[[str], str], now: float) -> ProviderError:
    """An HTTP error response, OpenAI-style body or not (``headers``: twisted ``Headers``)."""
    try:
        message, etype, code = error_fields(_json.loads(body))
    except _json.JSONDecodeError:
        message = etype = code = None
    text = redact(message or body.decode("utf-8", "replace").strip())[:PREVIEW_CHARS] or None
    kw: dict[str, Any] = {"http_status": status, "provider_error_type": etype, "preview": text}
    if status == 429:
        return ProviderError(f"{provider} rate limit: {text or 'HTTP 429'}", "rate_limit",
                             retry_after_ms=retry_after_ms(headers, now), **kw)
    if status in (401, 403):
        if not has_key:
            msg = f"No route-compatible authentication source is configured for {provider}."
        else:
            msg = text or f"{provider} rejected the API key (HTTP {status})."
        return ProviderError(msg, "unknown", **kw)
    if status in (400, 413) and _CONTEXT.search(f"{code} {etype} {message}"):
        return ProviderError(text or "context length exceeded", "context_length", **kw)
    return ProviderError(f"{provider} HTTP {status}: {text or 'no body'}", "unknown", **kw)


def stream_error(provider: str, payload: Any, redact: Callable[[str], str]) -> ProviderError:
    """An ``{"error": ...}`` object sent as an event inside a 200 stream."""
    message, etype, code = error_fields(payload)
    text = redact(message or "error")[:PREVIEW_CHARS]
    kind = ("rate_limit" if "rate_limit" in f"{code} {etype}" else
            "context_length" if _CONTEXT.search(f"{code} {etype} {message}") else "unknown")
    return ProviderError(f"{provider} stream error: {text}", kind, provider_error_type=etype,
                         preview=text)


def retry_after_ms(headers: Any, now: float) -> int | None:
    """``retry-after-ms``, or ``Retry-After`` in seconds or as an HTTP date (vs ``now``)."""
    for name, scale in ((b"retry-after-ms", 1), (b"retry-after", 1000)):
        value = (headers.getRawHeaders(name) or [b""])[0].decode("latin-1").strip()
        if not value:
            continue
        try:
            return max(0, int(float(value) * scale))
        except ValueError:
            try:
                when = parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError):
                return None
            return max(0, int((when - now) * 1000))
    return None


def connect_error(provider: str, base_url: str, failure: Failure,
                  redact: Callable[[str], str]) -> ProviderError:
    """The request never got a response: refused, DNS, connect timeout, dropped."""
    where = f"{provider} unreachable at {base_url}"
    if failure.check(neterr.ConnectionRefusedError):
        return ProviderError(f"{where}: connection refused", "unknown")
    if failure.check(neterr.DNSLookupError):
        return ProviderError(f"{where}: DNS lookup failed", "unknown")
    if failure.check(neterr.TimeoutError):
        return ProviderError(f"{where}: connect timed out", "timeout")
    if failure.check(neterr.ConnectError):
        return ProviderError(f"{where}: {failure.getErrorMessage()}", "unknown")
    if failure.check(ResponseNeverReceived):
        return ProviderError(f"{provider} at {base_url} closed the connection without a "
                             "response", "unknown")
    return ProviderError(f"{provider} request to {base_url} failed: "
                         f"{redact(failure.getErrorMessage())}", "unknown")
