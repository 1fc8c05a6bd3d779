"""Browser connects and ``gateway.controlUi.allowedOrigins`` (the CVE-2026-25253 class: a page
on another origin must not drive the gateway with credentials the browser holds).

As the real gateway (``origin-check.ts``, ``ws-origin-policy.ts``; measured against 2026.9.6):
the upgrade is accepted, the challenge sent, and the ``connect`` of a refused origin answered
``INVALID_REQUEST`` with details ``{code: CONTROL_UI_ORIGIN_NOT_ALLOWED, reason}`` and closed
1008.  Any client that sends an Origin is checked; browser UI clients (Control UI, webchat)
are checked even without one ("origin missing or invalid")."""

from __future__ import annotations

from typing import Any

import attrs
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.handshake import check_browser_origin
from tests.support.helpers import (
    TOKEN,
    Closed,
    hello_ok,
    make_gateway,
    send_connect,
)

MESSAGE = ("origin not allowed (open the Control UI from the gateway host or allow it in "
           "gateway.controlUi.allowedOrigins)")


def params(client_id: str = "cli", mode: str = "cli", token: str = TOKEN) -> dict[str, Any]:
    return {"minProtocol": 4, "maxProtocol": 4,
            "client": {"id": client_id, "version": "0.1.0", "platform": "linux", "mode": mode},
            "role": "operator", "scopes": ["operator.read"], "auth": {"token": token}}






class Policy(SynchronousTestCase):
    def test_rules(self) -> None:
        host = "127.0.0.1:18789"
        cases: list[tuple[str | None, str | None, tuple[str, ...], bool, str | None]] = [
            ("http://127.0.0.1:18789", host, (), True, None),           # same origin
            ("HTTP://127.0.0.1:18789/", host, (), True, None),
            ("http://localhost:5173", host, (), True, None),             # local dev server
            ("http://[::1]:18789", "[::1]:18789", (), True, None),
            ("http://127.0.0.1:5555", host, (), False, "origin not allowed"),  # not local
            ("http://evil.example", host, (), True, "origin not allowed"),
            ("http://evil.localhost:18789", "evil.localhost:18789", (), True,
             "origin not allowed"),
            # DNS rebinding: a public name resolving to us is never trusted as same-origin
            ("http://rebind.example:18789", "rebind.example:18789", (), True,
             "origin not allowed"),
            ("http://192.168.1.5:18789", "192.168.1.5:18789", (), False, None),  # private LAN
            ("http://gw.local:18789", "gw.local:18789", (), False, None),
            ("https://ui.example", host, ("https://UI.example",), False, None),  # allow-listed
            ("https://ui.example", host, ("https://ui.example/",), False, "origin not allowed"),
            ("https://any.example", host, ("*",), False, None),
            (None, host, (), True, "origin missing or invalid"),
            ("null", host, ("*",), True, "origin missing or invalid"),
            ("http://127.0.0.1:18789/path", host, (), True, "origin missing or invalid"),
            ("http://u:p@127.0.0.1:18789", host, (), True, "origin missing or invalid"),
            ("file://", host, (), True, "origin missing or invalid"),
        ]
        for origin, host_header, allowed, local, expected in cases:
            self.assertEqual(check_browser_origin(origin, host_header, allowed, local), expected,
                             (origin, host_header, allowed, local))


class Connect(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def assert_refused(self, frames: list[Any], reason: str) -> None:
        res = [f for f in frames if isinstance(f, dict) and f.get("id") == "c1"]
        self.assertEqual(len(res), 1, frames)
        self.assertEqual(res[0]["error"], {
            "code": "INVALID_REQUEST", "message": MESSAGE,
            "details": {"code": "CONTROL_UI_ORIGIN_NOT_ALLOWED", "reason": reason}})
        closes = [f for f in frames if isinstance(f, Closed)]
        self.assertEqual([(c.code, c.reason) for c in closes], [(1008, MESSAGE)])
        self.assertEqual(self.gw.conns, {})

    def test_foreign_page_cannot_use_the_shared_token(self) -> None:
        hdrs = {"Origin": "https://attacker.example", "Host": "127.0.0.1:18789"}
        for client, mode in (("cli", "cli"), ("openclaw-tui", "ui"), ("webchat", "webchat")):
            _, frames = send_connect(self.gw, params(client, mode, token=TOKEN), headers=hdrs)
            self.assert_refused(frames, "origin not allowed")

    def test_browser_clients_need_an_origin(self) -> None:
        for client, mode in (("openclaw-control-ui", "webchat"), ("webchat-ui", "webchat"),
                             ("cli", "webchat")):
            _, frames = send_connect(self.gw, params(client, mode))
            self.assert_refused(frames, "origin missing or invalid")

    def test_null_origin_reaches_the_policy(self) -> None:
        """A sandboxed page's ``Origin: null`` is upgraded and refused at connect, with the
        reason, as by the real gateway (not a bare 400 from the WebSocket layer)."""
        _, frames = send_connect(self.gw, params(), headers={"Origin": "null"})
        self.assert_refused(frames, "origin missing or invalid")

    def test_an_empty_origin_is_none(self) -> None:
        """An empty or blank ``Origin`` header is no Origin (the real gateway upgrades it and
        treats the client as one without), not Autobahn's 400 "HTTP Origin header invalid"."""
        blanks = ("", "   ", "\t")
        for blank in blanks:  # a browser UI client: refused at connect, as with none
            _, frames = send_connect(self.gw, params("openclaw-control-ui", "webchat"),
                                     headers={"Origin": blank})
            self.assert_refused(frames, "origin missing or invalid")
        for blank in blanks:  # any other client: not a browser
            _, payload = hello_ok(self.gw, params(), headers={"Origin": blank})
            self.assertEqual(payload["type"], "hello-ok")

    def test_rebinding_host_refused(self) -> None:
        hdrs = {"Origin": "http://rebind.example:18789", "Host": "rebind.example:18789"}
        _, frames = send_connect(self.gw, params(), headers=hdrs)
        self.assert_refused(frames, "origin not allowed")

    def test_loopback_origin_from_a_remote_peer_refused(self) -> None:
        hdrs = {"Origin": "http://127.0.0.1:18789", "Host": "10.0.0.2:18789"}
        _, frames = send_connect(self.gw, params(), headers=hdrs, ip="10.0.0.9")
        self.assert_refused(frames, "origin not allowed")

    def test_clients_without_origin_are_not_browsers(self) -> None:
        _, payload = hello_ok(self.gw, params())
        self.assertEqual(payload["type"], "hello-ok")

    def test_allowed_origins_hot(self) -> None:
        hdrs = {"Origin": "https://ui.example", "Host": "127.0.0.1:18789"}
        _, frames = send_connect(self.gw, params(), headers=hdrs)
        self.assert_refused(frames, "origin not allowed")
        self.gw.apply_settings(attrs.evolve(self.gw.settings,
                                            allowed_origins=("https://ui.example",)))
        _, payload = hello_ok(self.gw, params(), headers=hdrs)
        self.assertEqual(payload["type"], "hello-ok")


class HelloBuildSource(SynchronousTestCase):
    def test_control_ui_build_is_configured(self) -> None:
        """The UI we serve is never our build: hello-ok says so, or the real UI would take
        our build id for a server update and show its refresh banner."""
        gw, _ = make_gateway()
        hdrs = {"Origin": "http://127.0.0.1:18789", "Host": "127.0.0.1:18789"}
        _, payload = hello_ok(gw, params(), headers=hdrs)
        self.assertEqual(payload["server"]["controlUiBuildSource"], "configured")
        self.assertEqual(list(payload["server"]),
                         ["version", "buildId", "bootId", "controlUiBuildSource", "connId"])
