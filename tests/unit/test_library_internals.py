"""The private Twisted and Autobahn attributes the gateway relies on still exist.

``twisted`` and ``autobahn`` are not pinned, and a few hot paths read their internals: the
direct-send fast path and the outbound-buffer accounting (``protocol/tcpio.py``), the
per-read shortcut past Autobahn's Twisted adapter, the switched-off ``pformat`` of Autobahn's
per-connection debug line, the early-abort checks of HTTP handlers (``Request._disconnected``)
and the quiet connection pool of the channel pollers. When an upgrade renames one of them the
code would silently take the slow path, mis-count buffers or crash on the first message; this
test makes that upgrade fail loudly in CI instead. The tested version ranges are in README.md.

The Twisted half (it builds a TCP transport over a socketpair) is in
tests/loopback/test_library_internals.py.
"""

from __future__ import annotations

import autobahn.websocket.protocol as autobahn_protocol
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.trial import unittest


class AutobahnInternals(unittest.TestCase):
    def test_pformat_is_the_module_global_the_protocol_calls(self) -> None:
        self.assertTrue(callable(getattr(autobahn_protocol, "pformat", None)))

    def test_the_frame_masker_is_a_module_global_with_the_expected_interface(self) -> None:
        from autobahn.websocket.xormasker import create_xor_masker

        masker = create_xor_masker(b"abcd", 2000)  # Autobahn's own, for large frames
        for name in ("process", "pointer", "reset"):
            self.assertTrue(callable(getattr(masker, name, None)), name)
        self.assertTrue(callable(getattr(autobahn_protocol, "create_xor_masker", None)))

    def test_the_header_parse_is_a_module_global_the_handshake_calls(self) -> None:
        # autobahn_tuning wraps it to read a blank Origin as none
        import inspect

        from openclaw_tw.protocol import autobahn_tuning

        autobahn_tuning.apply()
        source = inspect.getsource(WebSocketServerProtocol.processHandshake)
        self.assertIn("parseHttpHeader(self.http_request_data)", source)
        self.assertIn('"origin"', source)
        status, headers, counts = autobahn_protocol.parseHttpHeader(
            b"GET / HTTP/1.1\r\nOrigin: \r\n\r\n")
        self.assertEqual((status, counts.get("origin")), ("GET / HTTP/1.1", None))

    def test_highlighters_are_module_globals_used_only_for_log_arguments(self) -> None:
        import inspect
        import re

        import autobahn.twisted.websocket as autobahn_twisted

        import openclaw_tw.protocol.websocket  # noqa: F401  (installs the cheap versions)

        for module in (autobahn_protocol, autobahn_twisted):
            for name in ("hltype", "hlval"):
                self.assertTrue(callable(getattr(module, name, None)), name)
            # every use is a keyword argument (of a log call): ``x=hltype(...)``
            source = inspect.getsource(module)
            uses = re.findall(r"(\S*)\s*(?:hltype|hlval)\(", source)
            self.assertTrue(uses)
            for before in uses:
                self.assertTrue(before.endswith("="), f"{module.__name__}: {before!r}")

    def test_protocol_methods_and_states(self) -> None:
        for name in ("_dataReceived", "_fail_connection", "STATE_OPEN", "sendCloseFrame"):
            self.assertTrue(hasattr(WebSocketServerProtocol, name),
                            f"WebSocketServerProtocol lost {name}")
        self.assertTrue(callable(WebSocketServerFactory.setProtocolOptions))


class TwistedWebInternals(unittest.TestCase):
    """``web/site.py`` wraps its channel in Site's own proxy and reuses the channel's abort."""

    def test_channel_wrapper_and_abort_hooks(self) -> None:
        from twisted.web import http

        self.assertTrue(callable(getattr(http, "_GenericHTTPChannelProtocol", None)))
        for name in ("allHeadersReceived", "requestDone", "forceAbortClient", "abortTimeout",
                     "_abortingCall", "setTimeout", "loseConnection"):
            self.assertTrue(hasattr(http.HTTPChannel, name), f"HTTPChannel lost {name}")
