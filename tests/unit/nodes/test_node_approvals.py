"""exec.approvals.node.get/set relay to the node as system.execApprovals.get/set (issue #20),
answered with the node's own answer; the real gateway's NOT_CONNECTED shape otherwise."""

from __future__ import annotations

import json
from typing import Any

from tests.support.nodes import Node, call
from tests.unit.nodes.test_nodes import NodeCase

SNAPSHOT = {"path": "/home/n/.openclaw/exec-approvals.json", "exists": True,
            "file": {"version": 1, "defaults": {"security": "deny"}, "agents": {}},
            "hash": "ab" * 32, "resolvedDefaults": {"security": "deny", "ask": "off",
                                                   "askFallback": "deny",
                                                   "autoAllowSkills": False}}


class NodeApprovals(NodeCase):
    def answer(self, node: Node, ok: bool = True, payload: Any = None,
               error: Any = None) -> dict[str, Any]:
        [req] = node.invoke_requests()
        body: dict[str, Any] = {"id": req["id"], "nodeId": node.id, "ok": ok}
        body["payload" if ok else "error"] = payload if ok else error
        self.assertTrue(node.call("node.invoke.result", body)["ok"])
        return req

    def test_get_is_relayed_and_answered_with_the_nodes_snapshot(self) -> None:
        node = self.paired_node()
        rid = self.op.request("exec.approvals.node.get", {"nodeId": node.id})
        req = self.answer(node, payload=SNAPSHOT)
        self.assertEqual(req["command"], "system.execApprovals.get")
        self.assertEqual(self.op.response(rid)["payload"], SNAPSHOT)

    def test_set_is_relayed_with_file_and_base_hash(self) -> None:
        node = self.paired_node()
        file = {"version": 1, "defaults": {"security": "allowlist"}}
        rid = self.op.request("exec.approvals.node.set",
                              {"nodeId": node.id, "file": file, "baseHash": "ab" * 32})
        req = self.answer(node, payload=SNAPSHOT)
        self.assertEqual(req["command"], "system.execApprovals.set")
        self.assertEqual(json.loads(req["paramsJSON"]), {"file": file, "baseHash": "ab" * 32})
        self.assertTrue(self.op.response(rid)["ok"])

    def test_the_nodes_refusal_is_the_callers_error(self) -> None:
        node = self.paired_node()
        rid = self.op.request("exec.approvals.node.set",
                              {"nodeId": node.id, "file": {"version": 2}})
        self.answer(node, ok=False, error={"code": "INVALID_REQUEST",
                                           "message": "invalid exec approvals file"})
        err = self.op.response(rid)["error"]
        self.assertEqual((err["code"], err["message"]),
                         ("INVALID_REQUEST", "invalid exec approvals file"))

    def test_a_node_not_connected_is_refused_as_the_real_gateway_does(self) -> None:
        err = call(self.op, "exec.approvals.node.get", {"nodeId": "nope"})["error"]
        self.assertEqual(err, {  # captured from the real gateway (2026.9.6)
            "code": "UNAVAILABLE", "message": "NOT_CONNECTED: node not connected",
            "details": {"nodeError": {"code": "NOT_CONNECTED", "message": "node not connected"},
                        "nodeCommandDispatched": False}})

    def test_params_are_closed_and_need_node_id(self) -> None:
        err = call(self.op, "exec.approvals.node.get", {})["error"]
        self.assertEqual(err["message"],
                         "invalid exec.approvals.node.get params: must have required property "
                         "'nodeId'")
        err = call(self.op, "exec.approvals.node.get", {"nodeId": "n", "x": 1})["error"]
        self.assertEqual(err["code"], "INVALID_REQUEST")

    def test_admin_scope_is_required(self) -> None:
        from tests.support.nodes import operator

        reader = operator(self.gw, ["operator.read", "operator.approvals"])
        err = call(reader, "exec.approvals.node.get", {"nodeId": "n"})["error"]
        self.assertEqual(err["message"], "missing scope: operator.admin")


class InvokeProgress(NodeCase):
    """node.invoke.progress (issue #20): chunks reach an in-gateway caller in seq order."""

    def test_chunks_are_handed_on_in_order_once(self) -> None:
        node = self.paired_node()
        got: list[str] = []
        d = self.app.nodes.invoker.invoke(None, {
            "nodeId": node.id, "command": "system.run", "idempotencyKey": "p1",
            "params": {"command": ["seq", "3"]}}, got.append)
        [req] = node.invoke_requests()
        for seq, chunk in ((1, "two\n"), (0, "one\n"), (1, "two again\n"), (2, "three\n")):
            res = node.call("node.invoke.progress", {"invokeId": req["id"], "nodeId": node.id,
                                                     "seq": seq, "chunk": chunk})
            self.assertTrue(res["ok"], res)
        self.assertEqual(got, ["one\n", "two\n", "three\n"])
        node.call("node.invoke.result", {"id": req["id"], "nodeId": node.id, "ok": True,
                                         "payload": {"exitCode": 0}})
        self.assertEqual(self.successResultOf(d)["payload"], {"exitCode": 0})
        late = node.call("node.invoke.progress", {"invokeId": req["id"], "nodeId": node.id,
                                                  "seq": 3, "chunk": "x"})
        self.assertFalse(late["ok"])  # the invoke is over: refused, not forwarded
        self.assertEqual(got, ["one\n", "two\n", "three\n"])
