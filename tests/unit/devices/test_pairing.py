"""Device tokens and pairing over the in-memory WebSocket (§4.5 steps 12-13, §4.6, §6.4).

Vectors: ``traces/device-auth.jsonl`` (silent local pairing, device-token auth, scope and token
mismatches, token missing) and ``traces/pairing-remote.jsonl`` (remote NOT_PAIRED, approve,
reconnect with the token, AUTH_TOKEN_MISMATCH with canRetryWithDeviceToken).
"""

from __future__ import annotations

import json

from openclaw_tw.protocol.scopes import ADMIN, PAIRING, READ, WRITE
from tests.support.devices import DEVICE_TOKEN_MISMATCH, REMOTE, SCOPE_MISMATCH, Device, DeviceCase
from tests.support.helpers import WSClient, call, hello

NOT_PAIRED_MESSAGE = "pairing required: device is not approved yet"
NEXT_STEPS = ("retry_with_device_token", "update_auth_configuration", "update_auth_credentials",
              "wait_then_retry", "review_auth_configuration")


class LocalDevice(DeviceCase):
    def test_new_local_device_is_approved_silently(self) -> None:
        _, hello_ok = self.ok(scopes=[READ])
        auth = hello_ok["auth"]
        token = auth["deviceToken"]
        self.assertEqual((auth["method"], auth["role"], auth["scopes"], type(token)),
                         ("token", "operator", [READ], str))
        self.assertGreaterEqual(len(token), 32)
        self.assertEqual(auth["issuedAtMs"], self.gw.now_ms())
        listing = self.listing()
        self.assertEqual(listing["pending"], [])
        dev = self.paired()
        assert dev is not None, listing
        self.assertEqual((dev["approvedVia"], dev["roles"], dev["scopes"], dev["publicKey"],
                          dev["connected"]), ("silent", ["operator"], [READ],
                                              self.dev.public_key, True))
        self.assertEqual(dev["tokens"], [{"role": "operator", "scopes": [READ],
                                          "createdAtMs": auth["issuedAtMs"]}])
        self.assertNotIn(token, json.dumps(listing))

    def test_presence_names_the_device(self) -> None:
        """The Control UI's Devices page ties a presence entry to its paired device by
        ``deviceId`` (as the real gateway's entries carry it); device-less ones have none."""
        self.ok(client_id="openclaw-tui", mode="ui")  # cli sockets have no entry
        self.ok(Device(), client_id="openclaw-tui", mode="ui")
        entries = [e for e in call(self.admin, "system-presence")["payload"]
                   if e.get("mode") == "ui"]
        self.assertEqual(len(entries), 2, entries)
        self.assertEqual(entries[0]["deviceId"], self.dev.id)
        self.assertNotEqual(entries[1]["deviceId"], self.dev.id)
        self.assertEqual([e for e in call(self.admin, "system-presence")["payload"]
                          if "deviceId" in e and e.get("mode") != "ui"], [])

    def test_reconnect_with_device_token_only(self) -> None:
        _, first = self.ok(scopes=[READ])
        token = first["auth"]["deviceToken"]
        self.clock.advance(1)
        _, again = self.ok(token=None, device_token=token, scopes=[READ])
        self.assertEqual(again["auth"]["method"], "device-token")
        self.assertEqual((again["auth"]["deviceToken"], again["auth"]["issuedAtMs"]),
                         (token, first["auth"]["issuedAtMs"]))
        dev = self.paired()
        assert dev is not None
        self.assertEqual(dev["tokens"][0]["lastUsedAtMs"], self.gw.now_ms())

    def test_device_token_in_auth_token_field(self) -> None:
        token = self.pair_locally()
        _, again = self.ok(token=token, scopes=[READ])
        self.assertEqual((again["auth"]["method"], again["auth"]["deviceToken"]),
                         ("device-token", token))

    def test_shared_token_reconnect_redelivers_the_same_token(self) -> None:
        token = self.pair_locally()
        _, again = self.ok(scopes=[READ])
        self.assertEqual((again["auth"]["method"], again["auth"]["deviceToken"]), ("token", token))

    def test_wrong_device_token_is_delayed_and_refused(self) -> None:
        self.pair_locally()
        c = WSClient(self.gw)
        rid = self.dev.send_connect(c, token=None, device_token="x" * 43)
        c.pop()
        self.assertEqual(c.pop(), [])
        self.clock.advance(0.2)
        self.assertEqual(c.pop(), [], "answered before the auth limiter's 250 ms")
        self.clock.advance(0.1)
        res = c.response(rid)
        assert res is not None
        self.assertEqual(res["error"], DEVICE_TOKEN_MISMATCH)
        self.assertEqual(self.close_of(c), (1008, DEVICE_TOKEN_MISMATCH["message"]))

    def test_wider_scopes_than_the_token_holds(self) -> None:
        token = self.pair_locally([READ])
        for scopes in ([READ, WRITE], [ADMIN], [PAIRING]):
            err = self.refused(token=None, device_token=token, scopes=scopes)
            self.assertEqual(err, SCOPE_MISMATCH)
        _, ok = self.ok(token=None, device_token=token, scopes=[])  # narrower is fine
        self.assertEqual(ok["auth"]["scopes"], [])

    def test_wrong_shared_token_with_paired_device_suggests_device_token(self) -> None:
        self.pair_locally()
        for ip, hint in ((REMOTE, "(set gateway.remote.token to match gateway.auth.token)"),
                         ("127.0.0.1", "(use this gateway's gateway.auth.token or pair the "
                                       "device)")):
            err = self.refused(ip=ip, token="WRONG")
            self.assertEqual(err, {"code": "INVALID_REQUEST",
                                   "message": f"unauthorized: gateway token mismatch {hint}",
                                   "details": {"code": "AUTH_TOKEN_MISMATCH",
                                               "authReason": "token_mismatch",
                                               "canRetryWithDeviceToken": True,
                                               "recommendedNextStep": "retry_with_device_token"}})
        # An unknown device has no token to retry with.
        err = self.refused(Device(), token="WRONG")
        self.assertEqual(err["details"]["canRetryWithDeviceToken"], False)
        self.assertEqual(err["details"]["recommendedNextStep"], "update_auth_credentials")

    def test_device_without_any_credentials(self) -> None:
        self.pair_locally()
        err = self.refused(token=None)
        self.assertEqual(err, {
            "code": "INVALID_REQUEST",
            "message": "unauthorized: gateway token missing (use this gateway's "
                       "gateway.auth.token or pair the device)",
            "details": {"code": "AUTH_TOKEN_MISSING", "authReason": "token_missing",
                        "canRetryWithDeviceToken": False,
                        "recommendedNextStep": "update_auth_configuration"}})

    def test_node_role_without_device(self) -> None:
        c = WSClient(self.gw)
        res = c.connect(client_id="node-host", mode="node", scopes=[], role="node")
        assert res is not None
        self.assertEqual(res["error"], {"code": "NOT_PAIRED",
                                        "message": "device identity required",
                                        "details": {"code": "DEVICE_IDENTITY_REQUIRED"}})
        self.assertEqual(self.close_of(c), (1008, "device identity required"))


class RemotePairing(DeviceCase):
    def test_remote_new_device_needs_pairing(self) -> None:
        reader = hello(self.gw, scopes=[READ])
        c, res = self.attempt(ip=REMOTE, scopes=[READ, WRITE])
        err = res["error"]
        details = err["details"]
        rid = details["requestId"]
        self.assertEqual((err["code"], err["message"]), ("NOT_PAIRED", NOT_PAIRED_MESSAGE))
        self.assertLessEqual({"code", "reason", "requestId", "deviceId", "requestedRole",
                              "requestedScopes", "remediationHint", "recommendedNextStep"},
                             set(details))
        self.assertEqual((details["code"], details["reason"], details["deviceId"],
                          details["requestedRole"], details["requestedScopes"]),
                         ("PAIRING_REQUIRED", "not-paired", self.dev.id, "operator",
                          [READ, WRITE]))
        self.assertIsInstance(details["remediationHint"], str)
        self.assertIsInstance(details["recommendedNextStep"], str)
        self.assertEqual(self.close_of(c),
                         (1008, f"{NOT_PAIRED_MESSAGE} (requestId: {rid})"))
        pending = self.listing()["pending"]
        self.assertEqual([(p["requestId"], p["deviceId"], p["role"], p["scopes"], p["remoteIp"])
                          for p in pending], [(rid, self.dev.id, "operator", [READ, WRITE],
                                               REMOTE)])
        for op in (self.pairer, self.admin):
            self.assertEqual([e["requestId"] for e in self.events(op, "device.pair.requested")],
                             [rid])
        self.assertEqual(self.events(reader, "device.pair.requested"), [])
        # A repeated attempt reuses the request.
        self.assertEqual(self.pending_request(scopes=[READ, WRITE]), rid)
        self.assertEqual(len(self.listing()["pending"]), 1)
        self.assertIsNone(self.paired())

    def test_pairing_required_next_step_is_a_documented_value(self) -> None:
        # §8: recommendedNextStep is one of five values clients know; §4.6: PAIRING_REQUIRED
        # with wait_then_retry is the one that tells the reference client to come back later.
        err = self.refused(ip=REMOTE)
        self.assertIn(err["details"]["recommendedNextStep"], NEXT_STEPS)

    def test_approve_then_the_device_gets_a_token(self) -> None:
        rid = self.pending_request(scopes=[READ, WRITE])
        res = self.call(self.pairer, "device.pair.approve", {"requestId": rid})
        self.assertTrue(res["ok"], res)
        device = res["payload"]["device"]
        self.assertEqual((res["payload"]["requestId"], device["deviceId"], device["approvedVia"],
                          device["scopes"]), (rid, self.dev.id, "owner", [READ, WRITE]))
        self.assertNotIn("connected", device)  # only device.pair.list says connected
        resolved = self.events(self.pairer, "device.pair.resolved")
        self.assertEqual([(e["requestId"], e["deviceId"], e["decision"]) for e in resolved],
                         [(rid, self.dev.id, "approved")])
        self.assertEqual(self.listing()["pending"], [])
        _, hello_ok = self.ok(ip=REMOTE, scopes=[READ, WRITE])
        token = hello_ok["auth"]["deviceToken"]
        self.assertEqual((hello_ok["auth"]["method"], hello_ok["auth"]["scopes"]),
                         ("token", [READ, WRITE]))
        _, again = self.ok(ip=REMOTE, token=None, device_token=token, scopes=[READ])
        self.assertEqual((again["auth"]["method"], again["auth"]["deviceToken"]),
                         ("device-token", token))

    def test_upgrades_create_listable_pending_requests(self) -> None:
        self.pair_locally([READ])
        node = {"role": "node", "client_id": "node-host", "mode": "node", "scopes": []}
        for kw, reason, approver in (
                (node, "role-upgrade", self.admin),
                ({"scopes": [READ, WRITE]}, "scope-upgrade", self.pairer),
                ({"scopes": [READ], "platform": "darwin"}, "metadata-upgrade", self.pairer)):
            err = self.refused(ip=REMOTE, **kw)
            self.assertEqual((err["code"], err["details"]["reason"]), ("NOT_PAIRED", reason))
            rid = err["details"]["requestId"]
            listed = {p["requestId"]: p for p in self.listing()["pending"]}
            self.assertIn(rid, listed, f"{reason}: no pending request to approve")
            self.assertEqual((listed[rid]["deviceId"], listed[rid]["role"]),
                             (self.dev.id, kw.get("role", "operator")))
            self.assertNotIn("reason", listed[rid])  # the real record keeps no reason
            res = self.call(approver, "device.pair.approve", {"requestId": rid})
            self.assertTrue(res["ok"], (reason, res))
            _, hello_ok = self.ok(ip=REMOTE, **kw)
            self.assertIsInstance(hello_ok["auth"]["deviceToken"], str)
        dev = self.paired()
        assert dev is not None
        self.assertEqual((sorted(dev["roles"]), sorted(dev["scopes"])),
                         (["node", "operator"], [READ, WRITE]))

    def test_admin_scopes_or_node_role_need_an_admin_approver(self) -> None:
        for kw in ({"scopes": [ADMIN]},
                   {"role": "node", "client_id": "node-host", "mode": "node", "scopes": []}):
            dev = Device()
            rid = self.pending_request(dev=dev, **kw)
            res = self.call(self.pairer, "device.pair.approve", {"requestId": rid})
            self.assertEqual(res["error"], {
                "code": "FORBIDDEN", "message": "missing scope: operator.admin",
                "details": {"code": "MISSING_SCOPE", "missingScope": ADMIN,
                            "requiredScopes": [ADMIN]}})
            self.assertIn(rid, [p["requestId"] for p in self.listing()["pending"]])
            self.assertTrue(self.call(self.admin, "device.pair.approve",
                                      {"requestId": rid})["ok"])

    def test_reject(self) -> None:
        rid = self.pending_request()
        res = self.call(self.pairer, "device.pair.reject", {"requestId": rid})
        self.assertEqual(res["payload"], {"requestId": rid, "deviceId": self.dev.id})  # real
        self.assertEqual(self.listing()["pending"], [])
        resolved = self.events(self.pairer, "device.pair.resolved")
        self.assertEqual([(e["requestId"], e["decision"]) for e in resolved], [(rid, "rejected")])
        self.assertNotEqual(self.pending_request(), rid)  # still not paired; a new request

    def test_pending_request_expires_after_ten_minutes(self) -> None:
        rid = self.pending_request()
        self.clock.advance(10 * 60 + 1)
        pairer = hello(self.gw, scopes=[PAIRING])  # the old sockets missed their pongs
        self.assertEqual(self.call(pairer, "device.pair.list")["payload"]["pending"], [])
        res = self.call(pairer, "device.pair.approve", {"requestId": rid})
        self.assertEqual(res["error"]["message"], "unknown requestId")
        self.pairer = pairer
        self.assertNotEqual(self.pending_request(), rid)

    def test_unknown_request_id(self) -> None:
        for method in ("device.pair.approve", "device.pair.reject"):
            res = self.call(self.admin, method, {"requestId": "no-such-request"})
            self.assertEqual((res["error"]["code"], res["error"]["message"]),
                             ("INVALID_REQUEST", "unknown requestId"))


class ManagePaired(DeviceCase):
    def test_remove_disconnects_and_requires_pairing_again(self) -> None:
        token = self.pair_locally()
        socks = [self.ok(ip=REMOTE, scopes=[READ])[0], self.ok(token=None, device_token=token)[0]]
        res = self.call(self.pairer, "device.pair.remove", {"deviceId": self.dev.id})
        self.assertEqual(res["payload"], {"deviceId": self.dev.id})  # the real answer
        self.assertEqual([self.close_of(s)[0] for s in socks], [4001, 4001])
        self.assertIsNone(self.paired())
        err = self.refused(ip=REMOTE)  # it must pair again
        self.assertEqual((err["code"], err["details"]["reason"]), ("NOT_PAIRED", "not-paired"))
        err = self.refused(ip=REMOTE, token=None, device_token=token)
        self.assertEqual(err, DEVICE_TOKEN_MISMATCH)
        res = self.call(self.pairer, "device.pair.remove", {"deviceId": self.dev.id})
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST", "message": "unknown deviceId"})

    def test_rename(self) -> None:
        self.pair_locally()
        res = self.call(self.pairer, "device.pair.rename", {"deviceId": self.dev.id,
                                                            "label": "work laptop"})
        self.assertEqual(res["payload"], {"deviceId": self.dev.id, "label": "work laptop"})
        dev = self.paired()
        assert dev is not None
        self.assertEqual(dev["label"], "work laptop")
        for params in ({"deviceId": "nope", "label": "x"},
                       {"deviceId": self.dev.id, "label": "x" * 65},
                       {"deviceId": self.dev.id, "label": ""}):
            res = self.call(self.pairer, "device.pair.rename", params)
            self.assertEqual(res["error"]["code"], "INVALID_REQUEST", params)

    def test_rotate_from_the_same_device_is_delivered_in_band(self) -> None:
        old = self.pair_locally([READ, PAIRING])
        own, _ = self.ok(token=None, device_token=old, scopes=[READ, PAIRING])
        other, _ = self.ok(ip=REMOTE, token=None, device_token=old, scopes=[READ])
        node, _ = self.ok(role="node", client_id="node-host", mode="node", scopes=[])
        res = self.call(own, "device.token.rotate", {"deviceId": self.dev.id,
                                                     "role": "operator"})
        payload = res["payload"]
        self.assertEqual((payload["deviceId"], payload["role"], payload["tokenDelivery"]),
                         (self.dev.id, "operator", "in-band"))
        new = payload["token"]
        self.assertNotEqual(new, old)
        self.assertEqual(self.close_of(other)[0], 4001)
        self.assertEqual((self.close_of(own), self.close_of(node)), ((None, ""), (None, "")))
        self.assertTrue(self.call(own, "device.pair.list")["ok"])
        self.assertEqual(self.refused(token=None, device_token=old), DEVICE_TOKEN_MISMATCH)
        _, again = self.ok(token=None, device_token=new, scopes=[READ])
        self.assertEqual(again["auth"]["deviceToken"], new)

    def test_rotate_from_another_connection_withholds_the_token(self) -> None:
        old = self.pair_locally()
        sock, _ = self.ok(token=None, device_token=old)
        res = self.call(self.admin, "device.token.rotate", {"deviceId": self.dev.id,
                                                            "role": "operator"})
        self.assertEqual(res["payload"]["tokenDelivery"], "withheld-cross-device")
        self.assertNotIn("token", res["payload"])
        self.assertEqual(self.close_of(sock)[0], 4001)
        self.assertEqual(self.refused(token=None, device_token=old), DEVICE_TOKEN_MISMATCH)

    def test_revoke(self) -> None:
        token = self.pair_locally()
        sock, _ = self.ok(token=None, device_token=token)
        res = self.call(self.admin, "device.token.revoke", {"deviceId": self.dev.id,
                                                            "role": "operator"})
        self.assertEqual((res["payload"]["deviceId"], res["payload"]["role"],
                          res["payload"]["revokedAtMs"]),
                         (self.dev.id, "operator", self.gw.now_ms()))
        self.assertEqual(self.close_of(sock)[0], 4001)
        revoked_at = self.gw.now_ms()
        dev = self.paired()
        assert dev is not None
        # Kept and marked, as the reference keeps it (`devices list`: "operator (revoked)").
        [entry] = dev["tokens"]
        created = entry["createdAtMs"]
        self.assertEqual((entry["role"], entry["revokedAtMs"]), ("operator", revoked_at))
        self.assertNotIn("rotatedAtMs", entry)
        self.assertEqual(self.refused(token=None, device_token=token), DEVICE_TOKEN_MISMATCH)
        self.clock.advance(5)
        res = self.call(self.admin, "device.token.revoke", {"deviceId": self.dev.id,
                                                            "role": "operator"})
        self.assertTrue(res["ok"], res)  # a revoked token can be revoked again
        self.assertGreater(res["payload"]["revokedAtMs"], revoked_at)
        self.assertEqual(res["payload"]["revokedAtMs"], self.gw.now_ms())
        self.assertEqual(self.refused(token=None, device_token=token), DEVICE_TOKEN_MISMATCH)
        self.clock.advance(5)
        _, again = self.ok()  # still paired: the shared secret issues a fresh token
        self.assertNotEqual(again["auth"]["deviceToken"], token)
        dev = self.paired()
        assert dev is not None
        [entry] = dev["tokens"]
        self.assertEqual((entry["createdAtMs"], entry["rotatedAtMs"]),
                         (created, self.gw.now_ms()))
        self.assertNotIn("revokedAtMs", entry)
        self.assertEqual(again["auth"]["issuedAtMs"], entry["rotatedAtMs"])  # as the real one
        self.assertEqual(self.refused(token=None, device_token=token), DEVICE_TOKEN_MISMATCH)
        self.ok(token=None, device_token=again["auth"]["deviceToken"])

    def test_refused_rotations_and_revocations_say_only_denied(self) -> None:
        """As the real gateway (2026.9.6, `openclaw devices rotate|revoke`): one message per
        action whatever the reason, and never a success for a token that is not there."""
        self.pair_locally([READ])
        rotate = [{"deviceId": "nope", "role": "operator"},
                  {"deviceId": self.dev.id, "role": "node"},  # not approved for the role
                  {"deviceId": self.dev.id, "role": "operator", "scopes": [ADMIN]}]
        for params in rotate:
            res = self.call(self.pairer, "device.token.rotate", params)
            self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                            "message": "device token rotation denied"}, params)
        revoke = [{"deviceId": "nope", "role": "operator"},
                  {"deviceId": self.dev.id, "role": "node"}]
        for params in revoke:
            res = self.call(self.pairer, "device.token.revoke", params)
            self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                            "message": "device token revocation denied"}, params)
        dev = self.paired()
        assert dev is not None
        self.assertEqual([t["role"] for t in dev["tokens"]], ["operator"])  # untouched
