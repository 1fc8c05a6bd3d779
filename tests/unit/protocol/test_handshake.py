"""The v4 handshake (§2, §4): challenge, hello-ok shape, effective scopes, connect refusals,
presence on connect and the pre-auth timeout.

The refusal vectors are the real gateway's frames from ``traces/connect-errors.jsonl``.
"""

from __future__ import annotations

import uuid
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support.helpers import (
    TOKEN,
    Closed,
    WSClient,
    hello,
    hello_ok,
    make_gateway,
    open_client,
    send_connect,
)

READ, WRITE, ADMIN = "operator.read", "operator.write", "operator.admin"


def params(client_id: str = "cli", mode: str = "cli", token: str | None = TOKEN,
           scopes: list[str] | None = None, lo: int = 4, hi: int = 4, version: str = "0.1.0",
           role: str = "operator", **extra: Any) -> dict[str, Any]:
    """Connect params shaped like the ones in traces/connect-errors.jsonl."""
    p: dict[str, Any] = {
        "minProtocol": lo, "maxProtocol": hi,
        "client": {"id": client_id, "version": version, "platform": "linux", "mode": mode},
        "role": role, "scopes": [READ] if scopes is None else scopes,
    }
    if token is not None:
        p["auth"] = {"token": token}
    p.update(extra)
    return p








class ChallengeTests(SynchronousTestCase):
    def test_challenge_sent_immediately_on_open(self) -> None:
        gw, _ = make_gateway()
        c = WSClient(gw)
        self.assertEqual(c.status_line, "HTTP/1.1 101 Switching Protocols")
        frames = c.pop()  # nothing was sent by the client yet
        self.assertEqual(len(frames), 1, frames)
        ev = frames[0]
        self.assertEqual((ev["type"], ev["event"]), ("event", "connect.challenge"))
        self.assertNotIn("seq", ev)
        self.assertNotIn("stateVersion", ev)
        nonce = ev["payload"]["nonce"]
        self.assertEqual(str(uuid.UUID(nonce)), nonce)
        ts = ev["payload"]["ts"]
        self.assertIs(type(ts), int)
        self.assertEqual(ts, gw.now_ms())

    def test_nonce_is_fresh_per_socket(self) -> None:
        gw, _ = make_gateway()
        nonces = {WSClient(gw).challenge()["payload"]["nonce"] for _ in range(5)}
        self.assertEqual(len(nonces), 5)


class HelloOkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def test_required_fields(self) -> None:
        c, p = hello_ok(self.gw, params())
        self.assertEqual(p["type"], "hello-ok")
        self.assertEqual(p["protocol"], 4)
        self.assertIsInstance(p["server"]["version"], str)
        self.assertTrue(p["server"]["version"])
        conn_id = p["server"]["connId"]
        self.assertEqual(str(uuid.UUID(conn_id)), conn_id)
        self.assertIn(conn_id, self.gw.conns)
        self.assertIsInstance(p["features"]["methods"], list)
        self.assertIsInstance(p["features"]["events"], list)
        snap = p["snapshot"]
        self.assertIsInstance(snap["presence"], list)
        self.assertIsInstance(snap["health"], dict)
        self.assertEqual(set(snap["stateVersion"]), {"presence", "health"})
        for v in snap["stateVersion"].values():
            self.assertIs(type(v), int)
        self.assertIs(type(snap["uptimeMs"]), int)
        self.assertGreaterEqual(snap["uptimeMs"], 0)
        self.assertEqual(p["auth"]["role"], "operator")
        self.assertEqual(p["auth"]["scopes"], [READ])
        self.assertEqual(p["auth"]["method"], "token")
        pol = p["policy"]
        self.assertEqual((pol["maxPayload"], pol["maxBufferedBytes"], pol["tickIntervalMs"]),
                         (26_214_400, 52_428_800, 30_000))

    def test_presence_snapshot_has_gateway_self_entry(self) -> None:
        _, p = hello_ok(self.gw, params())
        self_entries = [e for e in p["snapshot"]["presence"] if e.get("mode") == "gateway"]
        self.assertEqual(len(self_entries), 1)
        self.assertEqual(self_entries[0]["reason"], "self")

    def test_methods_are_the_advertised_table(self) -> None:
        _, p = hello_ok(self.gw, params())
        methods = p["features"]["methods"]
        self.assertEqual(methods, self.gw.methods.advertised())
        self.assertEqual(len(methods), len(set(methods)))
        self.assertIn("health", methods)
        self.assertNotIn("connect", methods)
        for ev in ("connect.challenge", "presence", "tick", "shutdown", "health"):
            self.assertIn(ev, p["features"]["events"])

    def test_admin_only_snapshot_fields(self) -> None:
        _, plain = hello_ok(self.gw, params(scopes=[READ]))
        for key in ("configPath", "stateDir", "authMode"):
            self.assertNotIn(key, plain["snapshot"])
        _, admin = hello_ok(self.gw, params(scopes=[ADMIN]))
        self.assertEqual(admin["snapshot"]["authMode"], "token")
        self.assertIn("stateDir", admin["snapshot"])


class EffectiveScopeTests(SynchronousTestCase):
    """§4.5 step 10: device-less token clients get [] except local cli/cli and
    gateway-client/backend."""

    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def scopes_for(self, p: dict[str, Any], **kw: Any) -> list[str]:
        _, payload = hello_ok(self.gw, p, **kw)
        self.assertEqual(payload["auth"]["method"], "token")
        return list(payload["auth"]["scopes"])

    def test_local_cli_keeps_requested_scopes(self) -> None:
        self.assertEqual(self.scopes_for(params(scopes=[READ, WRITE])), [READ, WRITE])

    def test_local_gateway_client_backend_keeps_scopes(self) -> None:
        p = params("gateway-client", "backend", scopes=[READ])
        self.assertEqual(self.scopes_for(p), [READ])

    def test_probe_mode_gets_no_scopes(self) -> None:
        # What `gateway probe` sends: mode probe, version dev, protocol 3..4.
        c, payload = hello_ok(self.gw, params("cli", "probe", lo=3, hi=4, version="dev"))
        self.assertEqual(payload["protocol"], 4)
        self.assertEqual((payload["auth"]["method"], payload["auth"]["scopes"]), ("token", []))
        rid = c.request("status", {})
        self.assertEqual(c.response(rid)["error"]["message"], "missing scope: operator.read")
        rid = c.request("health", {})
        self.assertTrue(c.response(rid)["ok"])  # health needs no scope (§5.3 step 1)

    def test_probe_v3_only_is_accepted(self) -> None:
        # traces/connect-errors.jsonl conn 11: probe with min=max=3 gets hello-ok protocol 4.
        _, payload = hello_ok(self.gw, params("cli", "probe", lo=3, hi=3, version="1"))
        self.assertEqual((payload["protocol"], payload["auth"]["scopes"]), (4, []))

    def test_test_client_gets_no_scopes(self) -> None:
        self.assertEqual(self.scopes_for(params("test", "test", scopes=[READ, ADMIN])), [])

    def test_non_loopback_cli_gets_no_scopes(self) -> None:
        self.assertEqual(self.scopes_for(params(scopes=[READ]), ip="10.0.0.5"), [])

    def test_password_field_carries_token(self) -> None:
        # traces/connect-errors.jsonl conn 9.
        p = params(token=None, auth={"password": TOKEN})
        self.assertEqual(self.scopes_for(p), [READ])


class ConnectRefusalTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def assertRefused(self, frames: list[Any], error: dict[str, Any], code: int) -> None:
        """Exactly one error ``res`` for ``c1``, then a close frame with the message."""
        self.assertEqual(len(frames), 2, frames)
        res, closed = frames
        self.assertEqual(res, {"type": "res", "id": "c1", "ok": False, "error": error})
        self.assertIsInstance(closed, Closed)
        self.assertEqual((closed.code, closed.reason), (code, error["message"][:123]))

    def test_protocol_mismatch(self) -> None:
        for v in (5, 99):
            c, frames = send_connect(self.gw, params(lo=v, hi=v))
            self.assertRefused(frames, {
                "code": "INVALID_REQUEST", "message": "protocol mismatch",
                "details": {"code": "PROTOCOL_MISMATCH", "clientMinProtocol": v,
                            "clientMaxProtocol": v, "expectedProtocol": 4,
                            "minimumProbeProtocol": 3},
            }, 1002)
        self.assertEqual(self.gw.conns, {})

    def test_unknown_client_id(self) -> None:
        _, frames = send_connect(self.gw, params("my-python", version="1"))
        self.assertRefused(frames, {
            "code": "INVALID_REQUEST",
            "message": "invalid connect params: at /client/id: must be equal to one of the "
                       "allowed values",
        }, 1008)

    def test_unexpected_property(self) -> None:
        _, frames = send_connect(self.gw, params(bogus=1))
        self.assertRefused(frames, {
            "code": "INVALID_REQUEST",
            "message": "invalid connect params: at root: unexpected property 'bogus'",
        }, 1008)

    def test_invalid_role(self) -> None:
        _, frames = send_connect(self.gw, params(role="admin"))
        self.assertRefused(frames, {"code": "INVALID_REQUEST", "message": "invalid role"}, 1008)

    def test_empty_auth_needs_device_identity(self) -> None:
        _, frames = send_connect(self.gw, params(token=None, auth={}))
        self.assertRefused(frames, {
            "code": "NOT_PAIRED", "message": "device identity required",
            "details": {"code": "DEVICE_IDENTITY_REQUIRED"},
        }, 1008)

    def test_node_role_without_device(self) -> None:
        p = params("node-host", "node", role="node", scopes=[], version="1")
        _, frames = send_connect(self.gw, p)
        self.assertRefused(frames, {
            "code": "NOT_PAIRED", "message": "device identity required",
            "details": {"code": "DEVICE_IDENTITY_REQUIRED"},
        }, 1008)

    def test_foreign_origin_refused(self) -> None:
        hdrs = {"Origin": "http://evil.example", "Host": "127.0.0.1:18789"}
        _, frames = send_connect(self.gw, params(), headers=hdrs)
        self.assertEqual(len(frames), 2, frames)
        err = frames[0]["error"]
        self.assertEqual((frames[0]["id"], frames[0]["ok"]), ("c1", False))
        self.assertEqual(err["code"], "INVALID_REQUEST")
        self.assertEqual(err["details"]["code"], "CONTROL_UI_ORIGIN_NOT_ALLOWED")
        self.assertEqual((frames[1].code, frames[1].reason), (1008, err["message"][:123]))

    def test_same_origin_accepted(self) -> None:
        hdrs = {"Origin": "http://127.0.0.1:18789", "Host": "127.0.0.1:18789"}
        _, payload = hello_ok(self.gw, params(), headers=hdrs)
        self.assertEqual(payload["type"], "hello-ok")

    def test_refused_socket_is_dropped_after_close_grace(self) -> None:
        c, _ = send_connect(self.gw, params(role="admin"))
        self.assertFalse(c.transport.disconnecting)
        self.clock.advance(1.0)  # WEBSOCKET_CLOSE_GRACE_MS
        self.assertTrue(c.transport.disconnecting)


class PresenceOnConnectTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.bystander = hello(self.gw, scopes=[READ])

    def test_ui_client_adds_presence_and_broadcasts(self) -> None:
        before = self.gw.state_version()["presence"]
        blind = hello(self.gw, scopes=[])  # presence needs operator.read (§7.2)
        # A native app in ui mode (the TUI and the Control UI must sign: they cannot be
        # device-less).
        hello_ok(self.gw, params("openclaw-macos", "ui", version="2026.9.6"))
        blind.flush()
        self.assertEqual(blind.events("presence"), [])
        self.bystander.flush()
        events = self.bystander.events("presence")
        self.assertEqual(len(events), 1, self.bystander.received)
        ev = events[0]
        self.assertEqual(ev["seq"], 1)  # first broadcast after hello (§7.1)
        self.assertGreater(ev["stateVersion"]["presence"], before)
        self.assertEqual(ev["stateVersion"]["presence"], self.gw.state_version()["presence"])
        entries = [e for e in ev["payload"]["presence"] if e.get("clientId") == "openclaw-macos"]
        self.assertEqual(len(entries), 1, ev["payload"])
        self.assertEqual(entries[0]["mode"], "ui")
        # Presence is upserted after hello-ok (§4.5 step 15); later clients see the entry.
        _, later = hello_ok(self.gw, params())
        ids = [e.get("clientId") for e in later["snapshot"]["presence"]]
        self.assertIn("openclaw-macos", ids)

    def test_cli_client_is_ephemeral(self) -> None:
        before = self.gw.state_version()["presence"]
        n = len(self.gw.presence.snapshot())
        hello_ok(self.gw, params("cli", "cli"))
        hello_ok(self.gw, params("gateway-client", "backend"))
        self.bystander.flush()
        self.assertEqual(self.bystander.events("presence"), [])
        self.assertEqual(self.gw.state_version()["presence"], before)
        self.assertEqual(len(self.gw.presence.snapshot()), n)


class HandshakeTimeoutTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def test_silent_socket_closed_at_15s(self) -> None:
        c = open_client(self.gw)
        self.clock.advance(15.0)
        frames = c.pop()
        self.assertEqual(len(frames), 1, frames)
        self.assertEqual((frames[0].code, frames[0].reason), (1000, ""))

    def test_still_open_at_14_9s(self) -> None:
        c = open_client(self.gw)
        self.clock.advance(14.9)
        self.assertEqual(c.pop(), [])
        self.assertFalse(c.transport.disconnecting)
        # It can still complete the handshake, and the timer is then cancelled.
        res = c.connect()
        self.assertTrue(res["ok"], res)
        c.pop()
        self.clock.advance(5.0)
        self.assertIsNone(c.closed())


class HostLocalityCache(SynchronousTestCase):
    """Whether a Host header is local is cached (bounded, short values only) and answers as
    the uncached rule does."""

    def test_cached_answers_match_the_rule(self) -> None:
        from openclaw_tw.protocol import handshake as H

        H._cached_host_is_local.cache_clear()
        cases = {"127.0.0.1:18789": True, "localhost": True, "LOCALHOST:1": True,
                 "a.localhost": True, "[::1]:18789": True, "::1": True,
                 "evil.example:18789": False, "10.0.0.7": False, "127.0.0.1.nip.io": False,
                 "localhost.evil.example": False}
        for _ in range(2):
            for host, local in cases.items():
                self.assertEqual(H._local_host_header(host), local, host)
                self.assertEqual(H._host_is_local(host), local, host)
        info = H._cached_host_is_local.cache_info()
        self.assertEqual((info.misses, info.hits), (len(cases), len(cases)))
        self.assertTrue(H._local_host_header(None))
        self.assertTrue(H._local_host_header(""))
        long_host = "localhost" + " " * 300
        self.assertEqual(H._local_host_header(long_host), H._host_is_local(long_host))
        self.assertEqual(H._cached_host_is_local.cache_info().currsize, len(cases))
        self.assertEqual(H._cached_host_is_local.cache_info().maxsize, 1024)
