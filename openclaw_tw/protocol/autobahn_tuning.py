"""What the gateway turns off or replaces in Autobahn: ``apply()``, called once by
``protocol/websocket.py`` (the shim; with this module, the only ones importing Autobahn)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import autobahn.twisted.websocket as _autobahn_twisted
import autobahn.websocket.protocol as _autobahn_protocol

from openclaw_tw.protocol.xormask import masker_factory

_Parsed = tuple[str, dict[str, str], dict[str, int]]


def _skip_text(obj: Any, *args: Any, **kwargs: Any) -> str:
    """Stands in for Autobahn's ``pformat`` (its whole configuration, pretty-printed for a
    debug line on every connection: once ~40 % of a handshake) and ``hltype``/``hlval``
    (qualified names and colours for debug lines on every connect, read and close;
    ``hlval(reason)`` renders a whole ``Failure``).  They are only ever log-call arguments,
    evaluated before the logger drops them (tests/unit/test_library_internals.py);
    OPENCLAW_TW_AUTOBAHN_DEBUG=1 keeps Autobahn's own."""
    return ""


_ORIGIN_HEADERS = ("origin", "sec-websocket-origin")


def _blank_origin_is_none(parse: Callable[[bytes], _Parsed]) -> Callable[[bytes], _Parsed]:
    """Autobahn's own header parse (the one parse of an upgrade), with an empty or blank
    ``Origin`` dropped: the real gateway treats it as no Origin, while Autobahn read it as a
    URL without a host and answered 400 ("HTTP Origin header invalid").  A repeated Origin
    stays for Autobahn to refuse."""

    def parse_http_header(data: bytes) -> _Parsed:
        status, headers, counts = parse(data)
        for name in _ORIGIN_HEADERS:
            if counts.get(name) == 1 and not headers[name].strip():
                del headers[name], counts[name]
        return status, headers, counts

    parse_http_header._openclaw_tuned = True  # type: ignore[attr-defined]
    return parse_http_header


def apply() -> None:
    """Switch off the debug-text builders, put in the small-frame unmasker and read a blank
    Origin as none (idempotent)."""
    if not os.environ.get("OPENCLAW_TW_AUTOBAHN_DEBUG"):
        _autobahn_protocol.pformat = _skip_text
        for module in (_autobahn_protocol, _autobahn_twisted):
            module.hltype = _skip_text  # type: ignore[attr-defined]
            module.hlval = _skip_text  # type: ignore[attr-defined]
    # Small frames are unmasked by protocol/xormask.py, larger ones by Autobahn's native one.
    native = _autobahn_protocol.create_xor_masker
    if not getattr(native, "_openclaw_tuned", False):
        _autobahn_protocol.create_xor_masker = masker_factory(native)
        _autobahn_protocol.create_xor_masker._openclaw_tuned = True  # type: ignore[attr-defined]
    if not getattr(_autobahn_protocol.parseHttpHeader, "_openclaw_tuned", False):
        _autobahn_protocol.parseHttpHeader = _blank_origin_is_none(
            _autobahn_protocol.parseHttpHeader)
