"""Who may rotate or revoke a device token, as the real gateway (2026.9.6) decides: nobody
hands out or takes away operator scopes their own connection lacks (admin holds them all; a
device managing its own token is held to the same rule), and only an admin manages the
tokens of another role.  Every refusal is the one generic message; the reason is logged."""

from __future__ import annotations

from typing import Any

from twisted.logger import capturedLogs, formatEvent

from openclaw_tw.protocol.scopes import (
    ADMIN,
    PAIRING,
    READ,
    WRITE,
    first_missing_scope,
    normalize_token_scopes,
)
from tests.support.devices import DeviceCase
from tests.support.helpers import hello

TALK = "operator.talk"
ROTATION_DENIED = {"code": "INVALID_REQUEST", "message": "device token rotation denied"}
REVOCATION_DENIED = {"code": "INVALID_REQUEST", "message": "device token revocation denied"}


class RotateByCallerScopes(DeviceCase):
    def setUp(self) -> None:
        super().setUp()
        self.token = self.pair_locally([ADMIN, READ, WRITE, PAIRING])

    def rotate(self, caller_scopes: list[str], **params: Any) -> tuple[dict[str, Any], str]:
        caller = hello(self.gw, scopes=caller_scopes)
        with capturedLogs() as events:
            res = self.call(caller, "device.token.rotate",
                            {"deviceId": self.dev.id, "role": "operator", **params})
        return res, " ".join(formatEvent(e) for e in events)

    def test_scopes_beyond_the_callers_are_refused(self) -> None:
        for caller, scopes, missing in (([PAIRING], [READ], READ),
                                        ([PAIRING, WRITE], [ADMIN], ADMIN),
                                        ([PAIRING, READ], [TALK], TALK)):
            res, log = self.rotate(caller, scopes=scopes)
            self.assertEqual(res["error"], ROTATION_DENIED, (caller, scopes))
            self.assertIn(f"reason=caller-missing-scope scope={missing}", log)

    def test_omitted_scopes_are_the_current_tokens(self) -> None:
        res, log = self.rotate([PAIRING])  # the token holds admin/read/write/pairing
        self.assertEqual(res["error"], ROTATION_DENIED)
        self.assertIn("reason=caller-missing-scope scope=operator.admin", log)

    def test_scopes_within_the_callers_are_allowed(self) -> None:
        res, _ = self.rotate([PAIRING], scopes=[PAIRING])
        self.assertEqual(res["payload"]["scopes"], [PAIRING])
        res, _ = self.rotate([PAIRING, WRITE], scopes=[READ])  # write implies read
        self.assertEqual(res["payload"]["scopes"], [READ])
        res, _ = self.rotate([PAIRING], scopes=[PAIRING])  # now the token holds only pairing
        res, _ = self.rotate([PAIRING])
        self.assertEqual(res["payload"]["scopes"], [PAIRING])

    def test_admin_may_grant_anything_approved(self) -> None:
        res, _ = self.rotate([ADMIN], scopes=[ADMIN])
        self.assertEqual(res["payload"]["scopes"], [ADMIN, READ, WRITE])  # as the real stores

    def test_a_device_rotating_its_own_token_is_held_to_its_connection(self) -> None:
        own, _ = self.ok(token=None, device_token=self.token, scopes=[PAIRING])
        res = self.call(own, "device.token.rotate",
                        {"deviceId": self.dev.id, "role": "operator", "scopes": [ADMIN]})
        self.assertEqual(res["error"], ROTATION_DENIED)
        res = self.call(own, "device.token.rotate",
                        {"deviceId": self.dev.id, "role": "operator", "scopes": [PAIRING]})
        self.assertEqual((res["payload"]["scopes"], res["payload"]["tokenDelivery"]),
                         ([PAIRING], "in-band"))


class ApprovedBaseline(DeviceCase):
    def test_the_approved_baseline_is_checked_before_the_caller(self) -> None:
        self.pair_locally([READ])
        for caller in (self.admin, self.pairer):
            with capturedLogs() as events:
                res = self.call(caller, "device.token.rotate",
                                {"deviceId": self.dev.id, "role": "operator", "scopes": [WRITE]})
            self.assertEqual(res["error"], ROTATION_DENIED)
            self.assertIn("reason=scope-outside-approved-baseline",
                          " ".join(formatEvent(e) for e in events))


class OtherRolesNeedAdmin(DeviceCase):
    def test_node_tokens_are_managed_by_admins_only(self) -> None:
        self.pair_locally([READ])
        for method, denied in (("device.token.rotate", ROTATION_DENIED),
                               ("device.token.revoke", REVOCATION_DENIED)):
            with capturedLogs() as events:
                res = self.call(self.pairer, method, {"deviceId": self.dev.id, "role": "node"})
            self.assertEqual(res["error"], denied)
            log = " ".join(formatEvent(e) for e in events)
            self.assertIn("reason=role-management-requires-admin", log)
            # an admin gets past that check, to the device's roles
            with capturedLogs() as events:
                res = self.call(self.admin, method, {"deviceId": self.dev.id, "role": "node"})
            self.assertEqual(res["error"], denied)
            self.assertIn("reason=unknown-device-or-role",
                          " ".join(formatEvent(e) for e in events))


class RevokeByCallerScopes(DeviceCase):
    def test_revoking_a_token_beyond_the_callers_scopes_is_refused(self) -> None:
        self.pair_locally([READ, WRITE])
        with capturedLogs() as events:
            res = self.call(self.pairer, "device.token.revoke",
                            {"deviceId": self.dev.id, "role": "operator"})
        self.assertEqual(res["error"], REVOCATION_DENIED)
        self.assertIn("reason=caller-missing-scope scope=operator.read",
                      " ".join(formatEvent(e) for e in events))
        writer = hello(self.gw, scopes=[PAIRING, WRITE])
        res = self.call(writer, "device.token.revoke",
                        {"deviceId": self.dev.id, "role": "operator"})
        self.assertEqual(res["payload"]["role"], "operator")


class ScopeRules(DeviceCase):
    def test_first_missing_scope(self) -> None:
        self.assertIsNone(first_missing_scope("operator", [READ, TALK], [WRITE]))
        self.assertIsNone(first_missing_scope("operator", [" ", "operator.x"], [ADMIN]))
        self.assertEqual(first_missing_scope("operator", [PAIRING, READ], [PAIRING]), READ)
        self.assertEqual(first_missing_scope("operator", ["node.x"], [ADMIN]), "node.x")
        self.assertIsNone(first_missing_scope("node", ["node.x"], ["node.x"]))
        self.assertEqual(first_missing_scope("node", [READ], [READ]), READ)

    def test_normalize_token_scopes(self) -> None:
        self.assertEqual(normalize_token_scopes([" operator.admin", PAIRING, PAIRING, ""]),
                         [ADMIN, PAIRING, READ, WRITE])
        self.assertEqual(normalize_token_scopes([WRITE]), [READ, WRITE])
