"""Malformed and hostile input (baseline "badinput", §1, §3, §4.5 step 3, §4.8, §5.3).

Every case runs next to a connected bystander, which must still answer ``health`` afterwards:
one misbehaving socket never disturbs the others.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support.helpers import Closed, WSClient, hello, make_gateway, ws_frame

READ, ADMIN = "operator.read", "operator.admin"
MAX_PAYLOAD = 25 * 1024 * 1024
UNAUTHORIZED_ROLE = {"code": "INVALID_REQUEST", "message": "unauthorized role: operator"}


def missing_scope(scope: str) -> dict[str, Any]:
    return {"code": "FORBIDDEN", "message": f"missing scope: {scope}",
            "details": {"code": "MISSING_SCOPE", "missingScope": scope,
                        "requiredScopes": [scope]}}


def send_unmasked(c: WSClient, payload: bytes, opcode: int = 1) -> None:
    """A big frame with an all-zero mask (valid, and no per-byte masking cost)."""
    c.proto.dataReceived(ws_frame(payload, opcode, mask=b"\x00" * 4))
    c.flush()


class BadInputCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.bystander = hello(self.gw, scopes=[READ])

    def tearDown(self) -> None:
        # Every case: the bystander is still connected and served.
        rid = self.bystander.request("health", {})
        res = self.bystander.response(rid)
        self.assertIsNotNone(res, "bystander got no health answer")
        self.assertTrue(res["ok"], res)
        self.assertIsNone(self.bystander.closed())
        self.assertIn(self.bystander.proto.conn_id, self.gw.conns)

    def fresh(self) -> WSClient:
        c = WSClient(self.gw)
        self.assertEqual([f["event"] for f in c.pop()], ["connect.challenge"])
        return c

    def assertOnlyClose(self, c: WSClient, code: int, reason: str = "") -> None:
        frames = c.pop()
        self.assertEqual(len(frames), 1, frames)
        self.assertIsInstance(frames[0], Closed)
        self.assertEqual((frames[0].code, frames[0].reason), (code, reason))

    def assertResThenClose(self, c: WSClient, res: dict[str, Any], code: int) -> None:
        frames = c.pop()
        self.assertEqual(frames[:1], [res])
        self.assertEqual(len(frames), 2, frames)
        self.assertEqual((frames[1].code, frames[1].reason), (code, res["error"]["message"]))

    def assertAlive(self, c: WSClient) -> None:
        rid = c.request("health", {})
        res = c.response(rid)
        self.assertIsNotNone(res)
        self.assertTrue(res["ok"], res)
        self.assertIsNone(c.closed())


class PreAuthTests(BadInputCase):
    def test_non_json_first_frame(self) -> None:
        c = self.fresh()
        c.send_raw(b"{not json")
        self.assertOnlyClose(c, 1000)

    def test_binary_first_frame(self) -> None:
        c = self.fresh()
        c.send_raw(b"\x00\x01\x02", opcode=2)
        self.assertOnlyClose(c, 1000)

    def test_json_array_first_frame(self) -> None:
        c = self.fresh()
        c.send_raw(b"[1,2,3]")
        self.assertOnlyClose(c, 1008, "invalid request frame")

    def test_event_frame_first(self) -> None:
        c = self.fresh()
        c.send({"type": "event", "event": "hello"})
        self.assertOnlyClose(c, 1008, "invalid request frame")

    def test_request_before_connect(self) -> None:
        c = self.fresh()
        c.request("health", {}, req_id="x1")
        self.assertResThenClose(c, {
            "type": "res", "id": "x1", "ok": False,
            "error": {"code": "INVALID_REQUEST",
                      "message": "invalid handshake: first request must be connect"},
        }, 1008)

    def test_connect_without_params(self) -> None:
        c = self.fresh()
        c.send({"type": "req", "id": "c1", "method": "connect"})
        self.assertResThenClose(c, {
            "type": "res", "id": "c1", "ok": False,
            "error": {"code": "INVALID_REQUEST",
                      "message": "invalid connect params: must be object"},
        }, 1008)

    def test_oversize_preauth_frame(self) -> None:
        c = self.fresh()
        send_unmasked(c, b"x" * (100 * 1024))
        frames = c.pop()
        self.assertEqual(len(frames), 1, frames)
        self.assertEqual(frames[0].code, 1009)
        self.assertNotIn(c.proto.conn_id, self.gw.conns)

    def test_oversize_preauth_close_reason_is_empty(self) -> None:
        # §4.8: 1009 carries an empty reason (the ws library's close).
        c = self.fresh()
        send_unmasked(c, b"x" * (100 * 1024))
        self.assertOnlyClose(c, 1009, "")

    def test_preauth_frame_of_exactly_64k_is_read(self) -> None:
        # At the cap the frame is still parsed: not JSON -> 1000, not 1009.
        c = self.fresh()
        send_unmasked(c, b"x" * 65536)
        self.assertOnlyClose(c, 1000)

    def test_silent_socket_times_out(self) -> None:
        c = self.fresh()
        self.clock.advance(14.9)
        self.assertEqual(c.pop(), [])
        self.clock.advance(0.1)
        self.assertOnlyClose(c, 1000)

    def test_too_many_pending_handshake_frames(self) -> None:
        c = self.fresh()
        c.connect(token="WRONGTOKEN")  # held back 250 ms by the failed-auth penalty
        for _ in range(16):
            c.request("health", {})
        self.assertOnlyClose(c, 1008, "too many pending handshake frames")
        # The delayed refusal must not fail on the already-closing socket.
        self.clock.advance(1.5)
        self.assertEqual(c.pop(), [])
        self.assertTrue(c.lost)

    def test_fifteen_pending_frames_are_tolerated(self) -> None:
        c = self.fresh()
        c.connect(token="WRONGTOKEN")
        for _ in range(15):
            c.request("health", {})
        self.assertEqual(c.pop(), [])
        self.clock.advance(0.25)
        frames = c.pop()  # the refusal; the queued requests are never served
        self.assertEqual(len(frames), 2, frames)
        self.assertEqual(frames[0]["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH")
        self.assertEqual(frames[1].code, 1008)


class PostAuthTests(BadInputCase):
    def test_oversize_frame_after_hello(self) -> None:
        c = hello(self.gw, scopes=[READ])
        send_unmasked(c, b"x" * (MAX_PAYLOAD + 1))
        frames = c.pop()
        self.assertEqual(len(frames), 1, frames)
        self.assertEqual(frames[0].code, 1009)
        self.clock.advance(1.0)  # close grace, then the TCP connection is dropped
        c.flush()
        self.assertTrue(c.lost)
        self.assertNotIn(c.proto.conn_id, self.gw.conns)

    def test_frame_above_preauth_cap_is_fine_after_hello(self) -> None:
        c = hello(self.gw, scopes=[READ])
        frame = {"type": "req", "id": "big", "method": "health",
                 "params": {"pad": "x" * (100 * 1024)}}
        send_unmasked(c, json.dumps(frame).encode())
        res = c.response("big")
        self.assertIsNotNone(res)
        self.assertFalse(res["ok"])  # health params are closed; what matters: it was read
        self.assertAlive(c)

    def test_unknown_method_with_admin(self) -> None:
        c = hello(self.gw, scopes=[ADMIN])
        rid = c.request("no.such.method", {})
        self.assertEqual(c.response(rid)["error"],
                         {"code": "INVALID_REQUEST", "message": "unknown method: no.such.method"})
        self.assertAlive(c)

    def test_unknown_method_without_admin(self) -> None:
        c = hello(self.gw, scopes=[READ])
        rid = c.request("no.such.method", {})
        self.assertEqual(c.response(rid)["error"], missing_scope(ADMIN))
        self.assertAlive(c)

    def test_non_json_and_binary_after_hello_ignored(self) -> None:
        c = hello(self.gw, scopes=[READ])
        c.send_raw(b"{not json")
        c.send_raw(b"\x00\xff", opcode=2)
        self.assertEqual(c.pop(), [])
        self.assertAlive(c)

    def test_request_without_id(self) -> None:
        c = hello(self.gw, scopes=[READ])
        c.send({"type": "req", "method": "health"})
        self.assertEqual(c.pop(), [{
            "type": "res", "id": "invalid", "ok": False,
            "error": {"code": "INVALID_REQUEST",
                      "message": "invalid request frame: must have required property 'id'"},
        }])
        self.assertAlive(c)

    def test_second_connect_with_admin(self) -> None:
        c = hello(self.gw, scopes=[ADMIN])
        res = c.connect(scopes=[ADMIN])
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                        "message": "connect is only valid as the first request"})
        self.assertAlive(c)

    def test_second_connect_without_admin(self) -> None:
        c = hello(self.gw, scopes=[READ])
        res = c.connect()
        self.assertEqual(res["error"], missing_scope(ADMIN))
        self.assertAlive(c)

    def test_operator_calling_node_method(self) -> None:
        c = hello(self.gw, scopes=[ADMIN])
        rid = c.request("node.event", {"event": "x"})
        self.assertEqual(c.response(rid)["error"], UNAUTHORIZED_ROLE)
        self.assertAlive(c)

    def test_repeated_unauthorized_calls_close(self) -> None:
        c = hello(self.gw, scopes=[READ])
        ids = [c.request("node.event", {}) for _ in range(10)]
        self.assertTrue(all(c.response(i)["error"] == UNAUTHORIZED_ROLE for i in ids))
        self.assertIsNone(c.closed())  # 10 in a row is still tolerated
        last = c.request("node.event", {})
        self.assertEqual(c.response(last)["error"], UNAUTHORIZED_ROLE)
        closed = c.closed()
        self.assertIsNotNone(closed)
        self.assertEqual((closed.code, closed.reason), (1008, "repeated unauthorized calls"))

    def test_unauthorized_streak_resets(self) -> None:
        c = hello(self.gw, scopes=[READ])
        for _ in range(10):
            c.request("node.event", {})
        self.assertAlive(c)
        for _ in range(10):
            c.request("node.event", {})
        self.assertIsNone(c.closed())

    def test_status_without_scopes(self) -> None:
        c = hello(self.gw, scopes=[])
        rid = c.request("status", {})
        self.assertEqual(c.response(rid), {"type": "res", "id": rid, "ok": False,
                                           "error": missing_scope(READ)})
        self.assertAlive(c)

    def test_concurrent_requests_answered_by_id(self) -> None:
        c = hello(self.gw, scopes=[READ])
        calls = {"a:1": "health", "a:2": "status", "a:3": "system-presence",
                 "a:4": "last-heartbeat", "a:5": "config.set", "a:6": "no.such"}
        for rid, method in calls.items():
            c.send({"type": "req", "id": rid, "method": method})
        frames = c.pop()
        by_id = {f["id"]: f for f in frames if f.get("type") == "res"}
        self.assertEqual(sorted(by_id), sorted(calls))
        self.assertEqual(len([f for f in frames if f.get("type") == "res"]), len(calls))
        self.assertTrue(by_id["a:1"]["payload"]["ok"])
        self.assertIn("runtimeVersion", by_id["a:2"]["payload"])
        self.assertIsInstance(by_id["a:3"]["payload"], list)
        self.assertTrue(by_id["a:4"]["ok"])
        self.assertEqual(by_id["a:5"]["error"], missing_scope(ADMIN))
        self.assertEqual(by_id["a:6"]["error"], missing_scope(ADMIN))
        self.assertAlive(c)
