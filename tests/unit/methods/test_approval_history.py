"""approval.history and exec.approval.grants.* (methods/approval_history.py, approvals/history.py).

On a fresh install the real gateway (2026.9.6) answered ``approval.history {limit: 50}`` with
``{"items": []}`` and ``exec.approval.grants.list {}`` with ``{"grants": []}``.  Item shapes
follow its ``projectOperatorApprovalSnapshot``/``buildApprovalSnapshot`` and cursors its
``encodeOperatorApprovalHistoryCursor``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.app import build
from openclaw_tw.approvals.history import decode_cursor, encode_cursor
from tests.support.helpers import WSClient, call, hello, make_settings, ok
from tests.support.nodes import operator
from tests.support.tmp import fresh_dir

REQUEST = {"command": "echo hi", "commandArgv": ["echo", "hi"], "host": "gateway",
           "cwd": "/tmp", "timeoutMs": 20000, "twoPhase": True,
           "sessionKey": "agent:main:main", "agentId": "main"}
ITEM_KEYS = ["id", "status", "presentation", "urlPath", "createdAtMs", "expiresAtMs",
             "resolvedAtMs", "reason", "decision", "source", "resolver"]
PRESENTATION = {"kind": "exec", "commandText": "echo hi", "commandPreview": None,
                "warningText": None, "host": "gateway", "nodeId": None, "agentId": "main",
                "allowedDecisions": ["allow-once", "allow-always", "deny"]}


class Case(SynchronousTestCase):
    def setUp(self) -> None:
        self.state = fresh_dir(self)
        self.clock = Clock()
        self.clock.advance(1_795_000_000)
        self.app = self.start()

    def start(self) -> Any:
        app = build(make_settings(state_dir=self.state), self.clock)
        app.hub.startService()
        return app

    def approver(self) -> WSClient:
        return operator(self.app.hub, ["operator.admin", "operator.approvals"],
                        caps=["exec-approvals"])

    def ask(self, requester: WSClient, **over: Any) -> str:
        rid = requester.request("exec.approval.request", {**REQUEST, **over})
        requester.flush()
        first = next(f for f in requester.received if isinstance(f, dict)
                     and f.get("type") == "res" and f["id"] == rid)
        return str(first["payload"]["id"])

    def history(self, client: WSClient, **params: Any) -> dict[str, Any]:
        return ok(client, "approval.history", params)  # type: ignore[no-any-return]


class History(Case):
    def test_fresh_install(self) -> None:
        admin = self.approver()
        self.assertEqual(self.history(admin, limit=50), {"items": []})
        self.assertEqual(ok(admin, "exec.approval.grants.list", {}), {"grants": []})

    def test_resolved_approvals_newest_first(self) -> None:
        approver, requester = self.approver(), operator(self.app.hub, ["operator.approvals"])
        first = self.ask(requester)
        self.clock.advance(2)
        ok(approver, "exec.approval.resolve", {"id": first, "decision": "allow-always"})
        second = self.ask(requester, command="rm -rf /tmp/x", commandArgv=["rm"])
        self.clock.advance(3)
        ok(approver, "exec.approval.resolve", {"id": second, "decision": "deny"})
        items = self.history(approver)["items"]
        self.assertEqual([i["id"] for i in items], [second, first])
        denied, allowed = items
        self.assertEqual(list(allowed), ITEM_KEYS)
        self.assertEqual(allowed["status"], "allowed")
        self.assertEqual(allowed["decision"], "allow-always")
        self.assertEqual(allowed["reason"], "user")
        self.assertEqual(allowed["presentation"], PRESENTATION)
        self.assertEqual(allowed["urlPath"], f"/approve/{first}")
        self.assertEqual(allowed["resolvedAtMs"] - allowed["createdAtMs"], 2000)
        self.assertEqual(allowed["expiresAtMs"] - allowed["createdAtMs"], 20000)
        self.assertEqual(allowed["source"], {"agentId": "main", "sessionKey": "agent:main:main"})
        # a shared-token client without a device: the runtime resolver, by client id
        self.assertEqual(allowed["resolver"], {"kind": "runtime", "id": "cli"})
        self.assertEqual((denied["status"], denied["decision"], denied["reason"]),
                         ("denied", "deny", "user"))
        self.assertEqual(denied["presentation"]["commandText"], "rm -rf /tmp/x")

    def test_no_route_and_timeout(self) -> None:
        requester = operator(self.app.hub, ["operator.admin", "operator.approvals"])
        lonely = self.ask(requester)  # nobody to ask: denied at once
        approver = self.approver()
        waited = self.ask(requester, timeoutMs=1000)
        self.clock.advance(2)
        by_id = {i["id"]: i for i in self.history(approver)["items"]}
        self.assertEqual({k: by_id[lonely][k] for k in ("status", "decision", "reason")},
                         {"status": "denied", "decision": "deny", "reason": "no-route"})
        self.assertNotIn("resolver", by_id[lonely])
        self.assertEqual((by_id[waited]["status"], by_id[waited]["reason"]),
                         ("expired", "timeout"))
        self.assertNotIn("decision", by_id[waited])

    def test_pages_and_cursor(self) -> None:
        approver, requester = self.approver(), operator(self.app.hub, ["operator.approvals"])
        ids = []
        for _ in range(5):
            ids.append(self.ask(requester))
            self.clock.advance(1)
            ok(approver, "exec.approval.resolve", {"id": ids[-1], "decision": "allow-once"})
        page = self.history(approver, limit=2)
        self.assertEqual([i["id"] for i in page["items"]], ids[::-1][:2])
        cursor = page["nextCursor"]
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        self.assertEqual(raw, {"v": 1, "resolvedAtMs": page["items"][1]["resolvedAtMs"],
                               "id": ids[3]})
        rest = []
        while cursor:
            page = self.history(approver, limit=2, cursor=cursor)
            rest += [i["id"] for i in page["items"]]
            cursor = page.get("nextCursor")
        self.assertEqual(rest, ids[::-1][2:])
        for bad in ("nope", encode_cursor(1, "x") + "A", base64.urlsafe_b64encode(
                b'{"v":2,"resolvedAtMs":1,"id":"x"}').decode().rstrip("=")):
            res = call(approver, "approval.history", {"cursor": bad})
            self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                            "message": "invalid approval.history cursor"})
        self.assertEqual(self.history(approver, kind="plugin"), {"items": []})
        self.assertEqual(len(self.history(approver, kind="exec")["items"]), 5)
        res = call(approver, "approval.history", {"limit": 101})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")

    def test_cursor_round_trip(self) -> None:
        self.assertEqual(decode_cursor(encode_cursor(12, "abc")), (12, "abc"))

    def test_visibility(self) -> None:
        approver = self.approver()
        requester = operator(self.app.hub, ["operator.approvals"])
        other = operator(self.app.hub, ["operator.approvals"])
        asked = self.ask(requester)
        ok(approver, "exec.approval.resolve", {"id": asked, "decision": "allow-once"})
        # device-less clients: only admins see the history (the requester has no device)
        self.assertEqual(self.history(other), {"items": []})
        self.assertEqual(len(self.history(approver)["items"]), 1)
        res = call(hello(self.app.hub, scopes=["operator.read"]), "approval.history", {})
        self.assertEqual(res["error"]["message"], "missing scope: operator.approvals")

    def test_kept_across_restarts_and_pending_that_expired_meanwhile(self) -> None:
        approver, requester = self.approver(), operator(self.app.hub, ["operator.approvals"])
        done = self.ask(requester)
        ok(approver, "exec.approval.resolve", {"id": done, "decision": "allow-once"})
        pending = self.ask(requester, timeoutMs=5000)
        self.app.approvals.stopService()  # the shutdown: its expiry timers go
        self.app.hub.stopService()
        self.clock.advance(60)  # down past the pending one's expiry
        self.app = self.start()
        items = self.history(self.approver())["items"]
        self.assertEqual([i["id"] for i in items], [pending, done])
        self.assertEqual((items[0]["status"], items[0]["reason"]), ("expired", "timeout"))
        self.assertEqual(items[0]["resolvedAtMs"], items[0]["expiresAtMs"])

    def test_retention(self) -> None:
        approver, requester = self.approver(), operator(self.app.hub, ["operator.approvals"])
        ok(approver, "exec.approval.resolve", {"id": self.ask(requester),
                                               "decision": "allow-once"})
        self.clock.advance(31 * 24 * 3600)
        self.assertEqual(self.history(approver), {"items": []})


class Grants(Case):
    def test_no_standing_grants(self) -> None:
        admin = self.approver()
        self.assertEqual(ok(admin, "exec.approval.grants.list", {"limit": 10}), {"grants": []})
        self.assertEqual(ok(admin, "exec.approval.grants.revoke", {"grantId": "g-1"}),
                         {"outcome": "not-found"})
        self.assertEqual(call(admin, "exec.approval.grants.revoke", {})["error"]["code"],
                         "INVALID_REQUEST")
        self.assertEqual(call(admin, "exec.approval.grants.list", {"limit": 501})["error"]
                         ["code"], "INVALID_REQUEST")
