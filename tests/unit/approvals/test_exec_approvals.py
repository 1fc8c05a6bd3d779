"""Exec approvals (§6.5, §15.1) and the approvals policy file, over the in-memory harness."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support.devices import Device
from tests.support.helpers import WSClient, make_gateway
from tests.support.nodes import call, events, operator

REQUEST = {"command": "echo hi", "commandArgv": ["echo", "hi"], "host": "gateway",
           "cwd": "/tmp", "timeoutMs": 20000, "twoPhase": True,
           "sessionKey": "agent:main:main", "agentId": "main"}


class ApprovalCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def approver(self, **kw: Any) -> WSClient:
        kw.setdefault("scopes", ["operator.admin", "operator.approvals"])
        kw.setdefault("caps", ["exec-approvals"])
        return operator(self.gw, **kw)

    def requester(self) -> WSClient:
        return operator(self.gw, ["operator.approvals"])

    def responses(self, c: WSClient, rid: str) -> list[dict[str, Any]]:
        c.flush()
        return [f for f in c.received if isinstance(f, dict) and f.get("type") == "res"
                and f["id"] == rid]

    def request(self, requester: WSClient, **over: Any) -> tuple[str, dict[str, Any]]:
        rid = requester.request("exec.approval.request", {**REQUEST, **over})
        first = self.responses(requester, rid)[0]
        return rid, first


class Flow(ApprovalCase):
    def test_two_phase_end_to_end(self) -> None:
        approver, requester = self.approver(), self.requester()
        rid, first = self.request(requester)
        accepted = first["payload"]
        self.assertEqual(accepted["status"], "accepted")
        self.assertEqual(accepted["deliveryRoute"], "approval-client")
        self.assertEqual(accepted["expiresAtMs"] - accepted["createdAtMs"], 20000)
        [ev] = events(approver, "exec.approval.requested")
        self.assertEqual(ev["payload"]["id"], accepted["id"])
        self.assertEqual(ev["payload"]["request"]["allowedDecisions"],
                         ["allow-once", "allow-always", "deny"])
        self.assertEqual(events(requester, "exec.approval.requested"), [])
        listed = call(approver, "exec.approval.list")["payload"]
        self.assertEqual([a["id"] for a in listed], [accepted["id"]])
        got = call(approver, "exec.approval.get", {"id": accepted["id"]})["payload"]
        self.assertEqual(got["commandText"], "echo hi")
        res = call(approver, "exec.approval.resolve", {"id": accepted["id"],
                                                       "decision": "allow-once"})
        self.assertEqual(res["payload"], {"ok": True})
        second = self.responses(requester, rid)[1]["payload"]
        self.assertEqual(second, {"id": accepted["id"], "decision": "allow-once",
                                  "createdAtMs": accepted["createdAtMs"],
                                  "expiresAtMs": accepted["expiresAtMs"]})
        [resolved] = events(approver, "exec.approval.resolved")
        self.assertEqual(resolved["payload"]["resolvedBy"], "cli")
        waited = call(requester, "exec.approval.waitDecision", {"id": accepted["id"]})
        self.assertEqual(waited["payload"]["terminalReason"], "user")
        self.assertEqual(call(approver, "exec.approval.list")["payload"], [])

    def test_no_route_answers_null_at_once(self) -> None:
        requester = self.requester()
        operator(self.gw)  # an admin without approval caps is not an approval client
        rid = requester.request("exec.approval.request", REQUEST)
        [only] = self.responses(requester, rid)
        self.assertIsNone(only["payload"]["decision"])
        self.assertNotIn("status", only["payload"])

    def test_approval_clients_by_client_id(self) -> None:
        ui = WSClient(self.gw)
        res = Device().connect(ui, scopes=["operator.admin"], client_id="openclaw-macos",
                               mode="ui")
        self.assertTrue(res["ok"], res)
        ui.pop()
        _, first = self.request(self.requester())
        self.assertEqual(first["payload"]["status"], "accepted", first)
        self.assertEqual(len(events(ui, "exec.approval.requested")), 1)

    def test_non_admin_approver_sees_only_own(self) -> None:
        self.approver()
        narrow = self.approver(scopes=["operator.approvals"])
        requester = self.requester()
        _, first = self.request(requester)
        self.assertEqual(events(narrow, "exec.approval.requested"), [])
        self.assertEqual(call(narrow, "exec.approval.list")["payload"], [])
        err = call(narrow, "exec.approval.resolve", {"id": first["payload"]["id"],
                                                     "decision": "deny"})["error"]
        self.assertEqual(err["details"]["reason"], "APPROVAL_NOT_FOUND")

    def test_host_node_requires_plan(self) -> None:
        self.approver()
        err = call(self.requester(), "exec.approval.request",
                   {**REQUEST, "host": "node"})["error"]
        self.assertEqual(err["message"], "systemRunPlan is required for host=node")


class Faults(ApprovalCase):
    def test_resolved_twice_with_different_decisions(self) -> None:
        approver, requester = self.approver(), self.requester()
        _, first = self.request(requester)
        aid = first["payload"]["id"]
        self.assertTrue(call(approver, "exec.approval.resolve",
                             {"id": aid, "decision": "allow-once"})["ok"])
        same = call(approver, "exec.approval.resolve", {"id": aid, "decision": "allow-once"})
        self.assertEqual(same["payload"], {"ok": True})
        err = call(approver, "exec.approval.resolve", {"id": aid, "decision": "deny"})["error"]
        self.assertEqual(err, {"code": "INVALID_REQUEST", "message": "approval already resolved",
                               "details": {"reason": "APPROVAL_ALREADY_RESOLVED"}})

    def test_unknown_id(self) -> None:
        err = call(self.approver(), "exec.approval.resolve",
                   {"id": "nope-id", "decision": "deny"})["error"]
        self.assertEqual(err["message"], "unknown or expired approval id")
        self.assertEqual(err["details"]["reason"], "APPROVAL_NOT_FOUND")

    def test_expired_then_resolved_late(self) -> None:
        approver, requester = self.approver(), self.requester()
        rid, first = self.request(requester, timeoutMs=3000)
        aid = first["payload"]["id"]
        self.clock.advance(3.1)
        final = self.responses(requester, rid)[1]["payload"]
        self.assertIsNone(final["decision"])
        waited = call(requester, "exec.approval.waitDecision", {"id": aid})["payload"]
        self.assertEqual((waited["decision"], waited["terminalReason"]), (None, "timeout"))
        err = call(approver, "exec.approval.resolve", {"id": aid, "decision": "allow-once"})
        self.assertEqual(err["error"]["details"]["reason"], "APPROVAL_NOT_FOUND")

    def test_an_expired_approval_is_announced_to_the_approvers(self) -> None:
        """As the real gateway (captured on 2026.9.6): on timeout the approval clients get
        exec.approval.resolved with decision "deny" and resolvedBy null; the requester gets
        decision null."""
        approver, requester = self.approver(), self.requester()
        _, first = self.request(requester, timeoutMs=1500)
        aid = first["payload"]["id"]
        self.assertEqual(events(approver, "exec.approval.resolved"), [])
        self.clock.advance(1.6)
        [ev] = events(approver, "exec.approval.resolved")
        self.assertEqual({k: ev["payload"][k] for k in ("id", "decision", "resolvedBy")},
                         {"id": aid, "decision": "deny", "resolvedBy": None})
        self.assertEqual(ev["payload"]["request"]["command"], "echo hi")
        self.assertEqual(events(requester, "exec.approval.resolved"), [])

    def test_pending_survives_restart_and_still_expires(self) -> None:
        self.approver()
        _, first = self.request(self.requester(), timeoutMs=60000)
        aid = first["payload"]["id"]
        gw2, clock2 = make_gateway(state_dir=self.gw.settings.state_dir)
        approver2 = operator(gw2, ["operator.admin"], caps=["exec-approvals"])
        listed = call(approver2, "exec.approval.list")["payload"]
        self.assertEqual([a["id"] for a in listed], [aid])
        clock2.advance(120)
        self.assertEqual(call(approver2, "exec.approval.list")["payload"], [])


class PolicyFile(ApprovalCase):
    def test_get_default_then_set_with_base_hash(self) -> None:
        admin = operator(self.gw)
        snap = call(admin, "exec.approvals.get")["payload"]
        self.assertIs(snap["exists"], False)
        self.assertEqual(snap["resolvedDefaults"], {"security": "full", "ask": "off",
                                                    "askFallback": "deny",
                                                    "autoAllowSkills": False})
        file = {"version": 1, "defaults": {"security": "allowlist", "ask": "on-miss"},
                "agents": {"main": {"ask": "always"}}}
        written = call(admin, "exec.approvals.set", {"file": file})["payload"]
        self.assertIs(written["exists"], True)
        self.assertEqual(written["resolvedDefaults"]["security"], "allowlist")
        stale = call(admin, "exec.approvals.set", {"file": file, "baseHash": snap["hash"]})
        self.assertEqual(stale["error"]["details"]["reason"], "BASE_HASH_MISMATCH")
        ok = call(admin, "exec.approvals.set", {"file": {**file, "defaults": {}},
                                                "baseHash": written["hash"]})
        self.assertTrue(ok["ok"], ok)
        bad = call(admin, "exec.approvals.set", {"file": {"version": 1, "defaults":
                                                          {"security": "yolo"}},
                                                 "baseHash": ok["payload"]["hash"]})
        self.assertIn("security must be one of", bad["error"]["message"])
        self.assertEqual(call(operator(self.gw, ["operator.approvals"]), "exec.approvals.get")
                         ["error"]["code"], "FORBIDDEN")


class PendingBounded(ApprovalCase):
    """Pending approvals are persisted and may wait 24 h: past MAX_PENDING a request is refused
    (UNAVAILABLE, retryable) instead of growing memory and the store without bound."""

    def test_requests_beyond_the_cap_refused_until_one_settles(self) -> None:
        from openclaw_tw.approvals import service

        self.patch(service, "MAX_PENDING", 3)
        approver, requester = self.approver(), self.requester()
        ids = [self.request(requester)[1]["payload"]["id"] for _ in range(3)]
        _, refused = self.request(requester)
        self.assertFalse(refused["ok"])
        self.assertEqual((refused["error"]["code"], refused["error"]["retryable"]),
                         ("UNAVAILABLE", True))
        self.assertIn("too many pending approvals", refused["error"]["message"])
        self.assertEqual(len(call(approver, "exec.approval.list")["payload"]), 3)
        call(approver, "exec.approval.resolve", {"id": ids[0], "decision": "deny"})
        _, again = self.request(requester)
        self.assertEqual(again["payload"]["status"], "accepted")

    def test_finished_records_bounded_in_count(self) -> None:
        from openclaw_tw.approvals import service

        self.patch(service, "MAX_FINISHED", 2)
        requester = self.requester()  # no approval client: each request finishes at once
        for i in range(4):
            self.request(requester, id=f"a{i}")
        got = [call(requester, "exec.approval.waitDecision", {"id": f"a{i}"})
               for i in range(4)]
        self.assertEqual([g["ok"] for g in got], [False, False, True, True])
