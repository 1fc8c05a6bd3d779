"""Connects without a device identity, decided as the reference decides them: which clients
keep the scopes they ask for (``cli``/``cli`` and ``gateway-client``/``backend``, from this
machine, with no ``Origin``), which connect with none, and which are refused (the operator
UIs always; everyone but a local backend under auth ``none``).  Each case was checked against
the real gateway 2026.9.6."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.handshake import (
    AuthPolicy,
    ConnectDecision,
    PeerInfo,
    evaluate_connect,
)
from tests.support.helpers import TOKEN, Closed, hello_ok, make_gateway, send_connect

READ, WRITE, ADMIN = "operator.read", "operator.write", "operator.admin"
ALL = [ADMIN, READ, WRITE]
SAME_ORIGIN = {"Origin": "http://127.0.0.1:18789"}
DEVICE_REQUIRED = {"code": "NOT_PAIRED", "message": "device identity required",
                   "details": {"code": "DEVICE_IDENTITY_REQUIRED"}}
UI_DEVICE_REQUIRED = {
    "code": "INVALID_REQUEST",
    "message": "control ui requires device identity (use HTTPS or localhost secure context)",
    "details": {"code": "CONTROL_UI_DEVICE_IDENTITY_REQUIRED"},
}


def params(client_id: str = "cli", mode: str = "cli", token: str | None = TOKEN,
           scopes: list[str] | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": client_id, "version": "2026.9.6", "platform": "linux", "mode": mode},
        "role": "operator", "scopes": list(ALL if scopes is None else scopes),
    }
    if token is not None:
        p["auth"] = {"token": token}
    return p


class TokenModeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, _ = make_gateway()

    def granted(self, p: dict[str, Any], **kw: Any) -> list[str]:
        _, payload = hello_ok(self.gw, p, **kw)
        self.assertEqual(payload["auth"]["method"], "token")
        return list(payload["auth"]["scopes"])

    def refused(self, p: dict[str, Any], **kw: Any) -> dict[str, Any]:
        _, frames = send_connect(self.gw, p, **kw)
        self.assertEqual(len(frames), 2, frames)
        self.assertIsInstance(frames[1], Closed)
        self.assertEqual(frames[1].code, 1008)
        return dict(frames[0]["error"])

    def test_local_cli_and_backend_keep_their_scopes(self) -> None:
        self.assertEqual(self.granted(params()), ALL)
        self.assertEqual(self.granted(params("gateway-client", "backend")), ALL)

    def test_an_origin_clears_the_scopes(self) -> None:
        # Same-origin pages pass the origin check, yet a browser is no local CLI.
        for client in (("cli", "cli"), ("gateway-client", "backend")):
            self.assertEqual(self.granted(params(*client), headers=SAME_ORIGIN), [], client)
        localhost = {"Origin": "http://localhost:18789"}
        self.assertEqual(self.granted(params(), headers=localhost), [])

    def test_a_blank_origin_is_no_origin(self) -> None:
        peer = PeerInfo(ip="127.0.0.1", host_header="127.0.0.1:18789", origin=" ")
        decision = evaluate_connect(params(), "n", peer, AuthPolicy("token", TOKEN))
        assert isinstance(decision, ConnectDecision)
        self.assertEqual(list(decision.scopes), ALL)

    def test_cleared_scopes_answer_missing_scope(self) -> None:
        c, payload = hello_ok(self.gw, params(), headers=SAME_ORIGIN)
        self.assertEqual(payload["auth"]["scopes"], [])
        res = c.response(c.request("sessions.list", {}))
        self.assertEqual(res["error"], {
            "code": "FORBIDDEN", "message": "missing scope: operator.read",
            "details": {"code": "MISSING_SCOPE", "missingScope": "operator.read",
                        "requiredScopes": ["operator.read"]},
        })
        self.assertTrue(c.response(c.request("health", {}))["ok"])

    def test_other_clients_get_no_scopes(self) -> None:
        for client in (("test", "test"), ("cli", "backend"), ("openclaw-macos", "ui")):
            self.assertEqual(self.granted(params(*client)), [], client)
        for client in (("webchat-ui", "webchat"), ("webchat", "webchat")):  # browser pages
            self.assertEqual(self.granted(params(*client), headers=SAME_ORIGIN), [], client)

    def test_host_header_is_not_consulted(self) -> None:
        # A loopback peer with no forwarding headers is local whatever Host it names.
        for host in ("example.com", "192.168.1.5:18789"):
            self.assertEqual(self.granted(params(), headers={"Host": host}), ALL, host)

    def test_remote_cli_gets_no_scopes(self) -> None:
        self.assertEqual(self.granted(params(), ip="10.0.0.5"), [])

    def test_operator_uis_must_sign(self) -> None:
        for client in (("openclaw-tui", "ui"), ("openclaw-control-ui", "webchat"),
                       ("openclaw-control-ui", "ui")):
            self.assertEqual(self.refused(params(*client), headers=SAME_ORIGIN),
                             UI_DEVICE_REQUIRED, client)
        self.assertEqual(self.refused(params("openclaw-tui", "ui")), UI_DEVICE_REQUIRED)
        # Refused for the missing identity before the token is even judged.
        self.assertEqual(self.refused(params("openclaw-control-ui", "webchat", token="bad"),
                                      headers=SAME_ORIGIN), UI_DEVICE_REQUIRED)

    def test_wrong_or_missing_secret(self) -> None:
        err = self.refused(params(token=None), headers=SAME_ORIGIN)
        self.assertEqual(err, DEVICE_REQUIRED)


class AuthNoneTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, _ = make_gateway(auth="none")

    def refused(self, p: dict[str, Any], **kw: Any) -> dict[str, Any]:
        _, frames = send_connect(self.gw, p, **kw)
        self.assertEqual(len(frames), 2, frames)
        return dict(frames[0]["error"])

    def test_only_a_local_backend_connects_without_a_device(self) -> None:
        _, payload = hello_ok(self.gw, params("gateway-client", "backend", token=None))
        self.assertEqual((payload["auth"]["method"], payload["auth"]["scopes"]), ("none", ALL))

    def test_everyone_else_needs_a_device(self) -> None:
        for client in (("cli", "cli"), ("test", "test"), ("openclaw-macos", "ui")):
            self.assertEqual(self.refused(params(*client, token=None)), DEVICE_REQUIRED, client)
        self.assertEqual(self.refused(params("webchat-ui", "webchat", token=None),
                                      headers=SAME_ORIGIN), DEVICE_REQUIRED)
        self.assertEqual(self.refused(params(token="anything")), DEVICE_REQUIRED)
        self.assertEqual(self.refused(params("gateway-client", "backend", token=None),
                                      headers=SAME_ORIGIN), DEVICE_REQUIRED)
        self.assertEqual(self.refused(params("gateway-client", "backend", token=None),
                                      ip="10.0.0.5"), DEVICE_REQUIRED)

    def test_operator_uis_must_sign(self) -> None:
        self.assertEqual(self.refused(params("openclaw-control-ui", "webchat", token=None),
                                      headers=SAME_ORIGIN), UI_DEVICE_REQUIRED)
        self.assertEqual(self.refused(params("openclaw-tui", "ui", token=None)),
                         UI_DEVICE_REQUIRED)
