"""Who "the device" is in device management: only a caller whose connection authenticated with
a device token (as the real gateway's ``isDeviceTokenAuth``).  Such a caller, unless admin, may
manage only itself and sees only itself; a rotated token is handed back in-band only to it.  A
caller on the shared token manages devices as an operator, whatever identity it signed with."""

from __future__ import annotations

from twisted.logger import capturedLogs, formatEvent

from openclaw_tw.protocol.scopes import ADMIN, PAIRING, READ
from tests.support.devices import Device, DeviceCase

ROTATE = {"code": "INVALID_REQUEST", "message": "device token rotation denied"}
REVOKE = {"code": "INVALID_REQUEST", "message": "device token revocation denied"}
REMOVE = {"code": "INVALID_REQUEST", "message": "device pairing removal denied"}
RENAME = {"code": "INVALID_REQUEST", "message": "device pairing rename denied"}


class DeviceCaller(DeviceCase):
    def setUp(self) -> None:
        super().setUp()
        self.token = self.pair_locally([READ, PAIRING])
        self.other = Device()
        c, _ = self.ok(self.other, scopes=[READ])
        c.close_from_client(1000)

    def test_the_connection_records_how_it_authenticated(self) -> None:
        by_token, hello_ok = self.ok(token=None, device_token=self.token, scopes=[READ])
        self.assertEqual(hello_ok["auth"]["method"], "device-token")
        by_secret, hello_ok = self.ok(scopes=[READ])
        self.assertEqual(hello_ok["auth"]["method"], "token")
        methods = {c.auth_method for c in self.gw.conns.values() if c.device_id == self.dev.id}
        self.assertEqual(methods, {"device-token", "token"})

    def test_a_device_token_caller_manages_only_itself(self) -> None:
        me, _ = self.ok(token=None, device_token=self.token, scopes=[READ, PAIRING])
        for method, params, error in (
                ("device.token.rotate", {"deviceId": self.other.id, "role": "operator"}, ROTATE),
                ("device.token.revoke", {"deviceId": self.other.id, "role": "operator"}, REVOKE),
                ("device.pair.remove", {"deviceId": self.other.id}, REMOVE),
                ("device.pair.rename", {"deviceId": self.other.id, "label": "x"}, RENAME)):
            with capturedLogs() as events:
                res = self.call(me, method, params)
            self.assertEqual(res["error"], error, method)
            self.assertIn("reason=device-ownership-mismatch",
                          " ".join(formatEvent(e) for e in events), method)
        listed = self.call(me, "device.pair.list")["payload"]
        self.assertEqual([d["deviceId"] for d in listed["paired"]], [self.dev.id])
        renamed = self.call(me, "device.pair.rename", {"deviceId": self.dev.id, "label": "mine"})
        self.assertTrue(renamed["ok"], renamed)
        rotated = self.call(me, "device.token.rotate", {"deviceId": self.dev.id,
                                                        "role": "operator", "scopes": [READ]})
        self.assertEqual(rotated["payload"]["tokenDelivery"], "in-band")
        self.assertNotEqual(rotated["payload"]["token"], self.token)

    def test_the_shared_token_with_the_same_identity_is_not_the_device(self) -> None:
        me, _ = self.ok(scopes=[READ, PAIRING])  # the shared secret, this device's signature
        listed = self.call(me, "device.pair.list")["payload"]
        self.assertEqual({d["deviceId"] for d in listed["paired"]}, {self.dev.id, self.other.id})
        rotated = self.call(me, "device.token.rotate", {"deviceId": self.dev.id,
                                                        "role": "operator", "scopes": [READ]})
        self.assertEqual(rotated["payload"]["tokenDelivery"], "withheld-cross-device")
        self.assertNotIn("token", rotated["payload"])
        other = self.call(me, "device.token.revoke", {"deviceId": self.other.id,
                                                      "role": "operator"})
        self.assertTrue(other["ok"], other)

    def test_an_admin_device_caller_manages_any_device(self) -> None:
        admin_token = self.pair_locally([READ, PAIRING, ADMIN])
        me, _ = self.ok(token=None, device_token=admin_token, scopes=[ADMIN])
        listed = self.call(me, "device.pair.list")["payload"]
        self.assertEqual(len(listed["paired"]), 2)
        rotated = self.call(me, "device.token.rotate", {"deviceId": self.other.id,
                                                        "role": "operator"})
        self.assertEqual(rotated["payload"]["tokenDelivery"], "withheld-cross-device")

    def test_a_device_caller_may_not_remove_itself_holding_a_node_role(self) -> None:
        node, _ = self.ok(role="node", client_id="node-host", mode="node", scopes=[])
        node.close_from_client(1000)
        me, _ = self.ok(token=None, device_token=self.token, scopes=[READ, PAIRING])
        with capturedLogs() as events:
            res = self.call(me, "device.pair.remove", {"deviceId": self.dev.id})
        self.assertEqual(res["error"], REMOVE)
        self.assertIn("reason=role-management-requires-admin",
                      " ".join(formatEvent(e) for e in events))
