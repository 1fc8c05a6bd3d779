"""Security regressions of the device layer: each test is named after what it prevents.

References: GHSA-rqpp-rjj8-7wv8 (clients self-declaring scopes), the auth limiter of
``users-and-peers.md`` §2.3, §3 frame caps, and §6.4 ("token values never listed").
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from twisted.logger import formatEvent, formatEventAsClassicLogText, globalLogPublisher

from openclaw_tw.daemon.logfile import event_to_record
from openclaw_tw.devices import store as store_module
from openclaw_tw.devices.store import hash_token
from openclaw_tw.protocol.scopes import ADMIN, PAIRING, READ, WRITE
from tests.support.devices import DEVICE_TOKEN_MISMATCH, REMOTE, SCOPE_MISMATCH, Device, DeviceCase
from tests.support.helpers import WSClient, hello, ws_frame

RATE_LIMITED = "unauthorized: too many failed authentication attempts (retry later)"


class SecurityRegressions(DeviceCase):
    def test_client_cannot_self_declare_wider_scopes_GHSA_rqpp_rjj8_7wv8(self) -> None:
        token = self.pair_locally([READ])
        # A device token for [read] cannot open [read, admin], however it is presented.
        for ip in ("127.0.0.1", REMOTE):
            self.assertEqual(self.refused(ip=ip, token=None, device_token=token,
                                          scopes=[READ, ADMIN]), SCOPE_MISMATCH)
            self.assertEqual(self.refused(ip=ip, token=token, scopes=[READ, ADMIN]),
                             SCOPE_MISMATCH)
        # The paired device with the shared secret from afar gets a pending upgrade, not admin.
        err = self.refused(ip=REMOTE, scopes=[READ, ADMIN])
        self.assertEqual((err["code"], err["details"]["reason"]), ("NOT_PAIRED", "scope-upgrade"))
        dev = self.paired()
        assert dev is not None
        self.assertEqual((dev["scopes"], dev["tokens"][0]["scopes"]), ([READ], [READ]))
        # A remote device-less shared-secret client asking admin is cleared to [].
        c = WSClient(self.gw, ip=REMOTE)
        res = c.connect(scopes=[ADMIN, READ, WRITE, PAIRING])
        assert res is not None
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["payload"]["auth"]["scopes"], [])
        self.assertNotIn("configPath", res["payload"]["snapshot"])
        res = self.call(c, "device.pair.list")
        self.assertEqual(res["error"]["message"], "missing scope: operator.pairing")

    def test_device_token_is_bound_to_its_device_and_role(self) -> None:
        token = self.pair_locally([READ])
        self.assertEqual(self.refused(Device(), ip=REMOTE, token=None, device_token=token),
                         DEVICE_TOKEN_MISMATCH)
        self.assertEqual(self.refused(ip=REMOTE, token=None, device_token=token, role="node",
                                      client_id="node-host", mode="node", scopes=[]),
                         DEVICE_TOKEN_MISMATCH)

    def test_failed_device_token_attempts_count_toward_auth_limiter(self) -> None:
        self.pair_locally([READ])
        early = WSClient(self.gw, ip=REMOTE)  # opened before the lockout
        for _ in range(10):
            self.assertEqual(self.refused(ip=REMOTE, token=None, device_token="y" * 43),
                             DEVICE_TOKEN_MISMATCH)
        # Locked out: a new socket is refused at the upgrade (429) ...
        self.assertEqual(WSClient(self.gw, ip=REMOTE).status_line,
                         "HTTP/1.1 429 Too Many Requests")
        # ... and one already open gets even the right shared secret refused, at once.
        res = self.dev.connect(early)
        assert res is not None
        self.assertEqual(res["error"]["message"], RATE_LIMITED)
        self.assertEqual(res["error"]["details"]["code"], "AUTH_RATE_LIMITED")
        self.assertTrue(res["error"]["retryable"])
        self.assertGreater(res["error"]["retryAfterMs"], 0)
        # Other addresses are not affected.
        self.ok(ip="10.9.9.10")
        self.ok()

    def test_device_tokens_never_listed_or_logged(self) -> None:
        events: list[dict[str, Any]] = []
        observer = events.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

        token = self.pair_locally([READ, PAIRING])
        own, _ = self.ok(token=None, device_token=token, scopes=[READ, PAIRING])
        self.ok(ip=REMOTE, token=token, scopes=[READ])
        wrong = "z" * 43
        self.refused(token=None, device_token=wrong)
        rotated = self.call(own, "device.token.rotate",
                            {"deviceId": self.dev.id, "role": "operator"})["payload"]["token"]
        listing = json.dumps(self.listing())
        self.assertIn(self.dev.id, listing)

        records = [event_to_record(e) for e in events]
        connected = [r for r in records if "client connected" in r["message"]]
        self.assertGreaterEqual(len(connected), 3, "the connect log events were not captured")
        self.assertTrue(any(self.dev.id[:12] in r["message"] for r in connected))
        first = connected[0]
        self.assertEqual(first["message"],
                         f"client connected conn={first['conn']} client=cli mode=cli "
                         f"role=operator ip=127.0.0.1 auth=token device={self.dev.id[:12]}")
        self.assertEqual((first["client"], first["auth_method"], first["device"]),
                         ("cli", "token", self.dev.id[:12]))
        twistd_text = formatEventAsClassicLogText(
            next(e for e in events if "client connected" in formatEvent(e)))
        self.assertIn(" [gateway/ws#info] " + first["message"], twistd_text or "")
        logged = json.dumps(records, default=str)
        for value in (token, wrong, rotated):
            self.assertNotIn(value, listing)
            self.assertNotIn(value, logged)
            self.assertNotIn(hash_token(value), listing)

    def test_preauth_frame_cap_holds_under_flood(self) -> None:
        bystander = hello(self.gw, scopes=[READ])
        big = ws_frame(b"x" * (100 * 1024))  # masked with a zero key: cheap to build
        flood = [WSClient(self.gw, ip=f"10.66.{i % 5}.{i}") for i in range(40)]
        flood += [WSClient(self.gw, ip="10.66.9.9") for _ in range(10)]
        for c in flood:
            for _ in range(3):
                if not c.lost:
                    c.proto.dataReceived(big)
                    c.flush()
        for c in flood:
            closed = c.closed()
            assert closed is not None
            self.assertEqual((closed.code, closed.reason), (1009, ""))
            self.assertNotIn(c.proto.conn_id, self.gw.conns)
        self.clock.advance(1.0)  # close grace: every flood socket is dropped
        for c in flood:
            c.flush()
            self.assertTrue(c.lost)
        for c in flood:  # the unauthenticated-socket budget is given back in full
            self.assertEqual(self.gw.preauth_count(c.proto.peer_info.ip), 0)
        # The established bystander still works, and so do newcomers, from a flooding address
        # too (device-less) and with a device.
        res = self.call(bystander, "health")
        self.assertTrue(res["ok"], res)
        newcomer = WSClient(self.gw, ip="10.66.9.9").connect()
        assert newcomer is not None
        self.assertTrue(newcomer["ok"], newcomer)
        _, hello_ok = self.ok()
        self.assertEqual(hello_ok["auth"]["scopes"], [READ])

    def test_token_comparison_is_constant_time(self) -> None:
        token = self.pair_locally([READ])
        real = hmac.compare_digest
        calls: list[tuple[Any, Any]] = []

        def spy(a: Any, b: Any) -> bool:
            calls.append((a, b))
            return real(a, b)

        self.patch(store_module.hmac, "compare_digest", spy)
        self.ok(token=None, device_token=token)
        self.assertIn((hash_token(token), hash_token(token)), calls)
        calls.clear()
        wrong = "w" * 43
        self.assertEqual(self.refused(token=None, device_token=wrong), DEVICE_TOKEN_MISMATCH)
        self.assertIn((hash_token(wrong), hash_token(token)), calls)
