"""Node registry, node pairing, command policy and node.invoke over the in-memory harness."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.hub.gateway import EVENTS
from tests.support.helpers import make_app
from tests.support.nodes import Node, approve_node, call, events, operator


class NodeCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.op = operator(self.gw)

    def paired_node(self, **kw: Any) -> Node:
        node = Node(self.gw, **kw)
        approve_node(self.app, node, self.op)
        node.ws.pop()
        self.op.pop()
        return node

    def invoke(self, node_id: str, command: str, params: Any = None, **kw: Any) -> str:
        body: dict[str, Any] = {"nodeId": node_id, "command": command,
                                "idempotencyKey": "k1", **kw}
        if params is not None:
            body["params"] = params
        return self.op.request("node.invoke", body)


class Registry(NodeCase):
    def test_connect_creates_pending_pairing_request(self) -> None:
        node = Node(self.gw)
        requested = events(self.op, "node.pair.requested")
        self.assertEqual(len(requested), 1)
        req = requested[0]["payload"]
        self.assertEqual(req["nodeId"], node.id)
        self.assertEqual(req["commands"], ["system.notify", "system.run", "system.run.prepare",
                                           "system.which"])
        self.assertEqual(req["requiredApproveScopes"], ["operator.pairing", "operator.admin"])
        listing = call(self.op, "node.list")["payload"]["nodes"]
        self.assertEqual(len(listing), 1)
        entry = listing[0]
        self.assertEqual(entry["approvalState"], "pending-approval")
        self.assertEqual(entry["commands"], [])
        self.assertEqual(entry["pendingRequestId"], req["requestId"])
        self.assertEqual(entry["platform"], "linux")
        self.assertIs(entry["connected"], True)
        self.assertIs(entry["paired"], False)
        pending = call(self.op, "node.pair.list")["payload"]["pending"]
        self.assertEqual([p["requestId"] for p in pending], [req["requestId"]])

    def test_approve_effective_commands_and_resolved_to_node(self) -> None:
        node = Node(self.gw)
        res = approve_node(self.app, node, self.op)
        self.assertEqual(res["payload"]["node"]["nodeId"], node.id)
        # the real answer names the node as node.list does (the Control UI shows it)
        self.assertNotIn("displayName", res["payload"]["node"])  # this fake node has none
        named = Node(self.gw, display_name="kitchen")
        res = approve_node(self.app, named, self.op)
        self.assertEqual(res["payload"]["node"]["displayName"], "kitchen")
        resolved = events(node.ws, "node.pair.resolved")
        self.assertEqual(resolved[0]["payload"]["decision"], "approved")
        self.assertNotIn("seq", resolved[0])
        self.assertEqual(events(self.op, "node.pair.resolved")[0]["payload"]["nodeId"], node.id)
        desc = call(self.op, "node.describe", {"nodeId": node.id})["payload"]
        self.assertEqual(desc["approvalState"], "approved")
        self.assertEqual(desc["commands"], ["system.notify", "system.run",
                                            "system.run.prepare", "system.which"])

    def test_approved_surface_persists_and_reconnect_needs_no_request(self) -> None:
        node = self.paired_node()
        dev = node.device
        node.ws.close_from_client(1000)
        app2, _ = make_app(state_dir=self.gw.settings.state_dir)
        gw2 = app2.hub
        self.assertIn(node.id, app2.nodes.store.nodes)
        again = Node.__new__(Node)
        again.device, again.id = dev, dev.id
        from tests.support.helpers import WSClient

        again.ws = WSClient(gw2)
        nonce = again.ws.challenge()["payload"]["nonce"]
        params = dev.params(nonce, gw2.now_ms(), role="node", scopes=[], client_id="node-host",
                            mode="node")
        params["commands"] = ["system.which"]
        self.assertTrue(again.ws.response(again.ws.request("connect", params))["ok"])
        self.assertIsNone(app2.nodes.pending_for(dev.id))
        self.assertEqual(app2.nodes.effective(dev.id), ["system.which"])

    def test_a_pending_pairing_request_survives_a_restart(self) -> None:
        """Issue #20: the request (and its id) is kept across a gateway restart; the node
        reconnecting with the same surface does not make a new one, and it can be approved
        after the restart."""
        node = Node(self.gw)
        [req] = [e["payload"] for e in events(self.op, "node.pair.requested")]
        app2, _ = make_app(state_dir=self.gw.settings.state_dir)
        op2 = operator(app2.hub)
        pending = call(op2, "node.pair.list")["payload"]["pending"]
        self.assertEqual([(p["requestId"], p["nodeId"]) for p in pending],
                         [(req["requestId"], node.id)])
        from tests.support.helpers import WSClient

        again = WSClient(app2.hub)
        nonce = again.challenge()["payload"]["nonce"]
        params = node.device.params(nonce, app2.hub.now_ms(), role="node", scopes=[],
                                    client_id="node-host", mode="node")
        params["caps"], params["commands"], params["permissions"] = \
            ["system"], req["commands"], {}
        self.assertTrue(again.response(again.request("connect", params))["ok"])
        self.assertEqual(events(op2, "node.pair.requested"), [])
        self.assertEqual(app2.nodes.pending_for(node.id).request_id, req["requestId"])
        ok = call(op2, "node.pair.approve", {"requestId": req["requestId"]})
        self.assertTrue(ok["ok"], ok)
        app3, _ = make_app(state_dir=self.gw.settings.state_dir)
        self.assertEqual(app3.nodes.pending, {})  # approved: gone from the store too
        self.assertIn(node.id, app3.nodes.store.nodes)

    def test_new_commands_need_a_new_approval(self) -> None:
        node = self.paired_node(commands=["system.notify"])
        node.ws.close_from_client(1000)
        bigger = Node(self.gw, commands=["system.notify", "system.run"])
        self.assertIsNotNone(self.app.nodes.pending_for(bigger.id))
        del node  # a different device; this also checks another node's pending state
        self.assertEqual(self.app.nodes.effective(bigger.id), [])

    def test_approve_scope_rules(self) -> None:
        pairing_only = operator(self.gw, ["operator.pairing"])
        writer = operator(self.gw, ["operator.pairing", "operator.write"])
        none = Node(self.gw, commands=[])
        notify = Node(self.gw, commands=["system.notify"])
        run = Node(self.gw, commands=["system.run"])
        reqs = {n.id: self.app.nodes.pending_for(n.id).request_id for n in (none, notify, run)}
        pending = {p["nodeId"]: p for p in call(self.op, "node.pair.list")["payload"]["pending"]}
        self.assertEqual(pending[none.id]["requiredApproveScopes"], ["operator.pairing"])
        self.assertEqual(pending[notify.id]["requiredApproveScopes"],
                         ["operator.pairing", "operator.write"])
        res = call(pairing_only, "node.pair.approve", {"requestId": reqs[notify.id]})
        self.assertEqual(res["error"]["details"]["missingScope"], "operator.write")
        res = call(writer, "node.pair.approve", {"requestId": reqs[run.id]})
        self.assertEqual(res["error"]["details"]["missingScope"], "operator.admin")
        self.assertTrue(call(pairing_only, "node.pair.approve",
                             {"requestId": reqs[none.id]})["ok"])
        self.assertTrue(call(writer, "node.pair.approve", {"requestId": reqs[notify.id]})["ok"])

    def test_reject_remove_rename(self) -> None:
        node = Node(self.gw)
        req = self.app.nodes.pending_for(node.id).request_id
        res = call(self.op, "node.pair.reject", {"requestId": req})["payload"]
        self.assertEqual(res["decision"], "rejected")
        self.assertEqual(events(node.ws, "node.pair.resolved")[0]["payload"]["decision"],
                         "rejected")
        self.assertEqual(call(self.op, "node.pair.reject", {"requestId": req})["error"]
                         ["message"], "unknown requestId")
        other = self.paired_node()
        res = call(self.op, "node.rename", {"nodeId": other.id, "displayName": "box"})
        self.assertEqual(res["payload"], {"nodeId": other.id, "displayName": "box"})
        self.assertEqual(call(self.op, "node.describe", {"nodeId": other.id})
                         ["payload"]["displayName"], "box")
        self.assertTrue(call(self.op, "node.pair.remove", {"nodeId": other.id})["ok"])
        self.assertEqual(other.ws.closed().code, 4001)
        self.assertNotIn(other.id, self.app.nodes.store.nodes)

    def test_presence_and_disconnect(self) -> None:
        node = self.paired_node()
        node.ws.close_from_client(1000)
        node.ws.flush()
        presence = [e["payload"] for e in events(self.op, "node.presence")]
        self.assertEqual(presence[-1]["reason"], "disconnect")
        desc = call(self.op, "node.describe", {"nodeId": node.id})["payload"]
        self.assertIs(desc["connected"], False)
        self.assertEqual(desc["lastSeenReason"], "disconnect")

    def test_events_advertised(self) -> None:
        for name in ("node.pair.requested", "node.pair.resolved", "node.invoke.request",
                     "exec.approval.requested", "exec.approval.resolved", "node.hostStats"):
            self.assertIn(name, EVENTS)

    def test_node_role_gate(self) -> None:
        node = self.paired_node()
        self.assertEqual(node.call("node.list")["error"]["message"], "unauthorized role: node")
        self.assertEqual(call(self.op, "node.event", {"event": "x"})["error"]["message"],
                         "unauthorized role: operator")


class Invoke(NodeCase):
    def test_invoke_round_trip(self) -> None:
        node = self.paired_node()
        rid = self.invoke(node.id, "system.notify", {"title": "hi"}, timeoutMs=5000)
        [req] = node.invoke_requests()
        self.assertEqual(req["command"], "system.notify")
        self.assertEqual(json.loads(req["paramsJSON"]), {"title": "hi"})
        self.assertEqual(req["timeoutMs"], 5000)
        self.assertEqual(req["idempotencyKey"], "k1")
        self.assertIsNone(self.op.response(rid))
        ack = node.call("node.invoke.result", {"id": req["id"], "nodeId": node.id, "ok": True,
                                               "payload": {"done": True}})
        self.assertEqual(ack["payload"], {"ok": True})
        res = self.op.response(rid)["payload"]
        self.assertEqual(res, {"ok": True, "nodeId": node.id, "command": "system.notify",
                               "payload": {"done": True}, "payloadJSON": None})

    def test_system_run_gets_run_id_and_remaining_timeout(self) -> None:
        node = self.paired_node()
        self.invoke(node.id, "system.run", {"command": ["echo", "hi"]}, timeoutMs=5000)
        [req] = node.invoke_requests()
        params = json.loads(req["paramsJSON"])
        self.assertEqual(params["command"], ["echo", "hi"])
        self.assertTrue(params["runId"])

    def test_node_error_is_mirrored(self) -> None:
        node = self.paired_node()
        rid = self.invoke(node.id, "system.which", {"bins": ["x"]})
        [req] = node.invoke_requests()
        node.call("node.invoke.result", {"id": req["id"], "nodeId": node.id, "ok": False,
                                         "error": {"code": "BAD", "message": "nope"}})
        err = self.op.response(rid)["error"]
        self.assertEqual((err["code"], err["message"]), ("BAD", "nope"))

    def test_not_ready_is_retried_within_the_deadline(self) -> None:
        node = self.paired_node()
        rid = self.invoke(node.id, "system.which", {}, timeoutMs=5000)
        [first] = node.invoke_requests()
        node.ws.pop()
        node.call("node.invoke.result", {"id": first["id"], "nodeId": node.id, "ok": False,
                                         "error": {"code": "NODE_NOT_READY", "message": "w"}})
        self.clock.advance(0.3)
        [second] = node.invoke_requests()
        self.assertNotEqual(second["id"], first["id"])
        self.assertLess(second["timeoutMs"], 5000)
        node.call("node.invoke.result", {"id": second["id"], "nodeId": node.id, "ok": True,
                                         "payload": 1})
        self.assertEqual(self.op.response(rid)["payload"]["payload"], 1)


class InvokeFaults(NodeCase):
    def test_unknown_node(self) -> None:
        err = call(self.op, "node.invoke", {"nodeId": "nope", "command": "system.run",
                                            "params": {}, "idempotencyKey": "i"})["error"]
        self.assertEqual(err["code"], "UNAVAILABLE")
        self.assertEqual(err["details"], {"code": "PAIRING_CHANGED"})

    def test_disconnected_node(self) -> None:
        node = self.paired_node()
        node.ws.close_from_client(1000)
        node.ws.flush()
        err = call(self.op, "node.invoke", {"nodeId": node.id, "command": "system.which",
                                            "idempotencyKey": "i"})["error"]
        self.assertEqual((err["code"], err["message"]), ("UNAVAILABLE", "node not connected"))

    def test_undeclared_and_dangerous_and_unapproved_commands(self) -> None:
        node = self.paired_node(commands=["system.notify"])
        err = call(self.op, "node.invoke", {"nodeId": node.id, "command": "camera.snap",
                                            "idempotencyKey": "i"})["error"]
        self.assertEqual(err["message"], 'node command not allowed: "camera.snap" requires '
                                         'explicit gateway.nodes.commands.allow opt-in')
        self.assertEqual(err["details"], {"reason": "command not allowlisted",
                                          "command": "camera.snap"})
        err = call(self.op, "node.invoke", {"nodeId": node.id, "command": "system.which",
                                            "idempotencyKey": "i"})["error"]
        self.assertEqual(err["details"]["reason"], "command not declared")
        pending = Node(self.gw, commands=["system.notify"])
        err = call(self.op, "node.invoke", {"nodeId": pending.id, "command": "system.notify",
                                            "idempotencyKey": "i"})["error"]
        self.assertEqual(err["details"]["reason"], "command not approved")

    def test_deny_config(self) -> None:
        raw = self.gw.settings.raw
        self.app.nodes.policy.deny = ("system.run",)
        node = self.paired_node()
        err = call(self.op, "node.invoke", {"nodeId": node.id, "command": "system.run",
                                            "idempotencyKey": "i"})["error"]
        self.assertEqual(err["details"]["reason"], "command denied")
        self.assertNotIn("system.run", self.app.nodes.effective(node.id))
        del raw

    def test_node_that_never_answers_times_out_and_gets_cancel(self) -> None:
        node = self.paired_node()
        rid = self.invoke(node.id, "system.which", {}, timeoutMs=2000)
        [req] = node.invoke_requests()
        self.clock.advance(1.9)
        self.assertIsNone(self.op.response(rid))
        self.clock.advance(0.2)
        err = self.op.response(rid)["error"]
        self.assertEqual((err["code"], err["details"]["code"]), ("UNAVAILABLE", "TIMEOUT"))
        cancel = events(node.ws, "node.invoke.cancel")[0]["payload"]
        self.assertEqual(cancel, {"invokeId": req["id"], "nodeId": node.id})
        late = node.call("node.invoke.result", {"id": req["id"], "nodeId": node.id, "ok": True})
        self.assertEqual(late["error"]["details"]["reason"], "INVOKE_FINISHED")

    def test_disconnect_mid_invoke_fails_at_once(self) -> None:
        node = self.paired_node()
        other = self.paired_node()
        rid = self.invoke(node.id, "system.which", {}, timeoutMs=60000)
        rid2 = self.invoke(other.id, "system.which", {}, timeoutMs=60000)
        node.ws.close_from_client(1000)
        node.ws.flush()
        err = self.op.response(rid)["error"]
        self.assertEqual(err["details"]["code"], "NODE_DISCONNECTED")
        self.assertIsNone(self.op.response(rid2))  # the other node's invoke is untouched
        [req] = other.invoke_requests()
        other.call("node.invoke.result", {"id": req["id"], "nodeId": other.id, "ok": True})
        self.assertTrue(self.op.response(rid2)["ok"])

    def test_result_for_unknown_id(self) -> None:
        node = self.paired_node()
        err = node.call("node.invoke.result", {"id": "nope", "nodeId": node.id,
                                               "ok": True})["error"]
        self.assertEqual((err["code"], err["details"]["reason"]),
                         ("INVALID_REQUEST", "UNKNOWN_INVOKE_ID"))

    def test_result_from_a_different_node(self) -> None:
        node = self.paired_node()
        intruder = self.paired_node()
        rid = self.invoke(node.id, "system.which", {})
        [req] = node.invoke_requests()
        err = intruder.call("node.invoke.result", {"id": req["id"], "nodeId": intruder.id,
                                                   "ok": True, "payload": "forged"})["error"]
        self.assertEqual(err["details"]["reason"], "NODE_MISMATCH")
        self.assertIsNone(self.op.response(rid))
        node.call("node.invoke.result", {"id": req["id"], "nodeId": node.id, "ok": True,
                                         "payload": "real"})
        self.assertEqual(self.op.response(rid)["payload"]["payload"], "real")

    def test_duplicate_result(self) -> None:
        node = self.paired_node()
        self.invoke(node.id, "system.which", {})
        [req] = node.invoke_requests()
        body = {"id": req["id"], "nodeId": node.id, "ok": True, "payload": 1}
        self.assertTrue(node.call("node.invoke.result", body)["ok"])
        err = node.call("node.invoke.result", body)["error"]
        self.assertEqual(err["details"]["reason"], "DUPLICATE_RESULT")

    def test_node_event_flood_is_bounded(self) -> None:
        node = self.paired_node()
        quiet = self.paired_node()
        self.op.pop()
        answers = [node.call("node.event", {"event": "node.host.stats",
                                            "payload": {"cpu": i}}) for i in range(80)]
        limited = [a for a in answers if not a["ok"]]
        self.assertGreater(len(limited), 0)
        self.assertEqual(limited[0]["error"]["details"], {"code": "RATE_LIMITED"})
        self.assertEqual(len(events(self.op, "node.hostStats")), 1)  # throttled broadcasts
        self.assertTrue(quiet.call("node.event", {"event": "node.presence.alive"})["ok"])
        self.clock.advance(5)
        ok = node.call("node.event", {"event": "node.host.stats", "payload": {"cpu": 1}})
        self.assertEqual(ok["payload"], {"ok": True, "event": "node.host.stats",
                                         "handled": True})
        desc = call(self.op, "node.describe", {"nodeId": node.id})["payload"]
        self.assertEqual(desc["hostStats"], {"cpu": 1})


class PendingQueue(NodeCase):
    def test_enqueue_pull_ack_drain(self) -> None:
        node = self.paired_node()
        item = call(self.op, "node.pending.enqueue", {"nodeId": node.id,
                                                      "type": "status.request"})["payload"]
        call(self.op, "node.pending.enqueue", {"nodeId": node.id, "type": "location.request",
                                               "priority": "high"})
        pulled = node.call("node.pending.pull", {})["payload"]
        self.assertEqual([i["type"] for i in pulled["items"]],
                         ["location.request", "status.request"])
        acked = node.call("node.pending.ack", {"ids": [item["item"]["id"]]})["payload"]
        self.assertEqual(acked["acked"], 1)
        drained = node.call("node.pending.drain", {"maxItems": 1})["payload"]
        self.assertEqual(len(drained["items"]), 1)
        self.assertIs(drained["hasMore"], False)
        self.assertEqual(node.call("node.pending.pull", {})["payload"]["items"], [])
