"""Roles, operator scopes and per-method authorization (reference §5)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from openclaw_tw.errors import FORBIDDEN, INVALID_REQUEST, GatewayError
from openclaw_tw.protocol import scopes as S

OPERATOR_SCOPES = (S.ADMIN, S.READ, S.WRITE, S.SESSIONS_READ, S.SESSIONS_WRITE, S.APPROVALS,
                   S.QUESTIONS, S.PAIRING, S.TALK, S.TALK_SECRETS)
POLICY_SCOPES = frozenset(OPERATOR_SCOPES) | {"dynamic", "node"}
REFERENCE_TABLE = Path("/work/shared/reference/method-scope-table.json")
NODE_METHODS = {"skills.bins", "node.pluginSurface.refresh", "node.pluginTools.update",
                "node.skills.update", "node.runnerInventory.update", "node.pending.drain",
                "node.pending.pull", "node.pending.ack", "node.invoke.progress",
                "node.invoke.result", "node.event"}


def refused(test: SynchronousTestCase, method: str, params: Any, role: str,
            scopes: set[str] | frozenset[str]) -> GatewayError:
    return test.assertRaises(GatewayError, S.authorize, method, params, role,
                             frozenset(scopes))


class Implication(SynchronousTestCase):
    """§5.2 scopeSatisfied(required, granted)."""

    def test_admin_satisfies_every_operator_scope(self) -> None:
        for required in OPERATOR_SCOPES:
            self.assertTrue(S.scope_satisfied(required, {S.ADMIN}), required)

    def test_write_implies(self) -> None:
        implied = {S.READ, S.TALK, S.SESSIONS_READ, S.SESSIONS_WRITE, S.WRITE}
        for required in OPERATOR_SCOPES:
            self.assertEqual(S.scope_satisfied(required, {S.WRITE}), required in implied,
                             required)

    def test_read_implies_only_sessions_read(self) -> None:
        for required in OPERATOR_SCOPES:
            self.assertEqual(S.scope_satisfied(required, {S.READ}),
                             required in (S.READ, S.SESSIONS_READ), required)

    def test_sessions_write_implies_sessions_read(self) -> None:
        self.assertTrue(S.scope_satisfied(S.SESSIONS_READ, {S.SESSIONS_WRITE}))
        self.assertFalse(S.scope_satisfied(S.READ, {S.SESSIONS_WRITE}))
        self.assertFalse(S.scope_satisfied(S.SESSIONS_WRITE, {S.SESSIONS_READ}))

    def test_narrow_scopes_imply_nothing_else(self) -> None:
        for granted in (S.APPROVALS, S.PAIRING, S.QUESTIONS, S.TALK, S.TALK_SECRETS):
            for required in OPERATOR_SCOPES:
                self.assertEqual(S.scope_satisfied(required, [granted]), required == granted,
                                 (granted, required))
        self.assertFalse(S.scope_satisfied(S.TALK_SECRETS, {S.TALK}))

    def test_non_operator_scopes_never_satisfied(self) -> None:
        for required in ("node", "dynamic", "custom.scope", "admin", ""):
            self.assertFalse(S.scope_satisfied(required, {required, S.ADMIN, S.WRITE}),
                             required)

    def test_empty_grant(self) -> None:
        for required in OPERATOR_SCOPES:
            self.assertFalse(S.scope_satisfied(required, frozenset()))


class MethodTable(SynchronousTestCase):
    def test_every_served_method_has_a_closed_params_schema(self) -> None:
        from tests.support.helpers import make_app

        app, _ = make_app()
        # The one handler that parses its params itself, as the reference's does (extra
        # fields pass, one message for every fault): methods/absent_features.py.
        self_validating = {"controlUi.sessionPullRequests.subscribe"}
        schemaless = {m.name for m in app.hub.methods.methods() if m.params is None}
        self.assertEqual(schemaless, self_validating)
        for name in ("node.pending.pull", "skills.bins", "plugin.approval.list",
                     "openclaw.approval.list"):
            method = next(m for m in app.hub.methods.methods() if m.name == name)
            assert method.params is not None
            self.assertEqual(method.params.check({"extra": 1}),
                             "at root: unexpected property 'extra'", name)
            self.assertIsNone(method.params.check({}), name)

    def test_table_has_482_methods_with_reference_counts(self) -> None:
        self.assertEqual(len(S.METHOD_POLICY), 482)
        counts = Counter(entry["scope"] for entry in S.METHOD_POLICY.values())
        self.assertEqual(counts, Counter({
            S.READ: 162, S.ADMIN: 148, S.WRITE: 95, S.TALK: 17, S.APPROVALS: 16,
            S.PAIRING: 14, "dynamic": 13, "node": 11, S.QUESTIONS: 5, S.SESSIONS_WRITE: 1}))

    def test_table_matches_reference(self) -> None:
        if not REFERENCE_TABLE.exists():
            raise SkipTest("reference table not available")
        ref = {row["name"]: row["scope"] for row in json.loads(REFERENCE_TABLE.read_text())}
        ours = {name: entry["scope"] for name, entry in S.METHOD_POLICY.items()}
        self.assertEqual(ours, ref)

    def test_every_method_resolves_to_a_policy_scope(self) -> None:
        for method in S.METHOD_POLICY:
            scope = S.policy_scope(method)
            self.assertIn(scope, POLICY_SCOPES, method)
            if scope == "node":
                self.assertIn(method, NODE_METHODS)
                continue
            required = S.required_scopes(method, {})
            self.assertTrue(required, method)
            for item in required:
                self.assertIn(item, OPERATOR_SCOPES, method)

    def test_every_dynamic_method_has_a_rule(self) -> None:
        dynamic = {m for m, e in S.METHOD_POLICY.items() if e["scope"] == "dynamic"}
        self.assertLessEqual(dynamic, set(S.DYNAMIC_RULES))
        self.assertEqual(len(dynamic), 13)

    def test_node_methods(self) -> None:
        self.assertEqual({m for m in S.METHOD_POLICY if S.is_node_method(m)}, NODE_METHODS)

    def test_unclassified_and_reserved_prefixes_are_admin(self) -> None:
        for method in ("no.such.method", "config.unknownThing", "exec.approvals.frob",
                       "wizard.anything", "update.whatever", "plugin.foo.bar"):
            self.assertEqual(S.policy_scope(method), S.ADMIN, method)
            self.assertEqual(S.required_scopes(method, {}), (S.ADMIN,), method)

    def test_config_methods(self) -> None:
        # The core table comes first (config.get/schema are read), reserved prefix after.
        self.assertEqual(S.policy_scope("config.get"), S.READ)
        for method in ("config.set", "config.apply", "config.patch", "config.openFile"):
            self.assertEqual(S.policy_scope(method), S.ADMIN, method)

    def test_some_known_scopes(self) -> None:
        expected = {"health": S.READ, "status": S.READ, "system-event": S.ADMIN,
                    "set-heartbeats": S.ADMIN, "chat.send": S.WRITE,
                    "exec.approval.resolve": S.APPROVALS, "device.pair.list": S.PAIRING,
                    "question.list": S.QUESTIONS, "talk.mode": S.TALK,
                    "sessions.github.publish": S.SESSIONS_WRITE, "logs.tail": S.READ}
        for method, scope in expected.items():
            self.assertEqual(S.policy_scope(method), scope, method)


class DynamicRules(SynchronousTestCase):
    def test_agent(self) -> None:
        for message in ("/new", "/new session", "  /NEW", "/reset", "/Reset now"):
            self.assertEqual(S.required_scopes("agent", {"message": message}), (S.ADMIN,),
                             message)
        for message in ("hello", "say /new", "", None):
            self.assertEqual(S.required_scopes("agent", {"message": message}), (S.WRITE,),
                             message)
        self.assertEqual(S.required_scopes("agent", None), (S.WRITE,))

    def test_node_invoke(self) -> None:
        for command in ("browser.proxy", "browser.proxy.upload.v1", "fs.listDir",
                        "terminal.upload"):
            self.assertEqual(S.required_scopes("node.invoke", {"command": command}),
                             (S.ADMIN,), command)
        self.assertEqual(S.required_scopes("node.invoke", {"command": "system.run"}),
                         (S.WRITE,))

    def test_sessions_delete(self) -> None:
        self.assertEqual(S.required_scopes("sessions.delete", {"key": "k"}), (S.ADMIN,))
        self.assertEqual(
            S.required_scopes("sessions.delete", {"key": "k", "archivedOnly": True}),
            (S.WRITE,))
        self.assertEqual(
            S.required_scopes("sessions.delete", {"key": "k", "archivedOnly": False}),
            (S.ADMIN,))
        self.assertEqual(
            S.required_scopes("sessions.delete",
                              {"key": "k", "archivedOnly": True, "deleteTranscript": True}),
            (S.ADMIN,))

    def test_other_dynamic_rules(self) -> None:
        self.assertEqual(S.required_scopes("talk.config", {}), (S.READ,))
        self.assertEqual(S.required_scopes("talk.config", {"includeSecrets": True}),
                         (S.READ, S.TALK_SECRETS))
        self.assertEqual(S.required_scopes("environments.list", {}), (S.READ,))
        self.assertEqual(S.required_scopes("environments.list", {"runtimeId": "r"}),
                         (S.WRITE,))
        self.assertEqual(S.required_scopes("fs.listDir", {}), (S.WRITE,))
        self.assertEqual(S.required_scopes("fs.listDir", {"nodeId": "n"}), (S.ADMIN,))
        self.assertEqual(S.required_scopes("channels.pairing.approve", {}), (S.PAIRING,))
        self.assertEqual(
            S.required_scopes("channels.pairing.approve", {"bootstrapCommandOwner": "x"}),
            (S.PAIRING, S.ADMIN))
        self.assertEqual(S.required_scopes("sessions.patch", {"key": "k", "label": "L"}),
                         (S.WRITE,))
        self.assertEqual(
            S.required_scopes("sessions.patch", {"key": "k", "permissionMode": "full"}),
            (S.ADMIN,))
        self.assertEqual(S.required_scopes("sessions.create", {}), (S.WRITE,))
        self.assertEqual(S.required_scopes("sessions.create", {"incognito": True}), (S.ADMIN,))


class Authorize(SynchronousTestCase):
    def test_health_for_anyone(self) -> None:
        for role in (S.ROLE_OPERATOR, S.ROLE_NODE):
            S.authorize("health", {}, role, frozenset())

    def test_node_methods_refused_to_operators_even_admin(self) -> None:
        for method in sorted(NODE_METHODS):
            err = refused(self, method, {}, S.ROLE_OPERATOR, {S.ADMIN})
            self.assertEqual((err.code, err.message),
                             (INVALID_REQUEST, "unauthorized role: operator"), method)
            self.assertTrue(S.is_unauthorized_role(err))

    def test_operator_methods_refused_to_nodes(self) -> None:
        for method in ("status", "chat.send", "system-event", "no.such.method"):
            err = refused(self, method, {}, S.ROLE_NODE, {S.ADMIN})
            self.assertEqual((err.code, err.message),
                             (INVALID_REQUEST, "unauthorized role: node"), method)

    def test_nodes_skip_scope_checks(self) -> None:
        for method in NODE_METHODS:
            S.authorize(method, {}, S.ROLE_NODE, frozenset())

    def test_scope_upgrade_allowed_without_scopes(self) -> None:
        S.authorize("device.scopes.requestUpgrade", {}, S.ROLE_OPERATOR, frozenset())
        S.authorize("device.scopes.waitUpgrade", {}, S.ROLE_OPERATOR, frozenset())

    def test_missing_scope_error_shape(self) -> None:
        err = refused(self, "status", {}, S.ROLE_OPERATOR, set())
        self.assertEqual(err.shape(), {
            "code": FORBIDDEN, "message": "missing scope: operator.read",
            "details": {"code": "MISSING_SCOPE", "missingScope": "operator.read",
                        "requiredScopes": ["operator.read"]}})

    def test_unknown_method_without_admin_is_missing_admin(self) -> None:
        err = refused(self, "no.such.method", {}, S.ROLE_OPERATOR, {S.READ, S.WRITE})
        self.assertEqual(err.message, "missing scope: operator.admin")
        S.authorize("no.such.method", {}, S.ROLE_OPERATOR, frozenset({S.ADMIN}))

    def test_admin_calls_every_operator_method(self) -> None:
        for method in S.METHOD_POLICY:
            if method in NODE_METHODS:
                continue
            S.authorize(method, {}, S.ROLE_OPERATOR, frozenset({S.ADMIN}))

    def test_no_scopes_refused_everything_but_health_and_upgrade(self) -> None:
        allowed = {"health", "device.scopes.requestUpgrade", "device.scopes.waitUpgrade"}
        for method in S.METHOD_POLICY:
            if method in allowed:
                S.authorize(method, {}, S.ROLE_OPERATOR, frozenset())
                continue
            err = refused(self, method, {}, S.ROLE_OPERATOR, set())
            expected = INVALID_REQUEST if method in NODE_METHODS else FORBIDDEN
            self.assertEqual(err.code, expected, method)

    def test_read_client(self) -> None:
        read = {S.READ}
        S.authorize("status", {}, S.ROLE_OPERATOR, frozenset(read))
        S.authorize("sessions.list", {}, S.ROLE_OPERATOR, frozenset(read))
        for method, scope in (("chat.send", S.WRITE), ("config.set", S.ADMIN),
                              ("set-heartbeats", S.ADMIN), ("talk.mode", S.TALK)):
            self.assertEqual(refused(self, method, {}, S.ROLE_OPERATOR, read).message,
                             f"missing scope: {scope}")

    def test_dynamic_rules_through_authorize(self) -> None:
        write = frozenset({S.WRITE})
        S.authorize("agent", {"message": "hi"}, S.ROLE_OPERATOR, write)
        self.assertEqual(refused(self, "agent", {"message": "/new"}, S.ROLE_OPERATOR,
                                 write).message, "missing scope: operator.admin")
        S.authorize("node.invoke", {"command": "system.run"}, S.ROLE_OPERATOR, write)
        self.assertEqual(refused(self, "node.invoke", {"command": "browser.proxy"},
                                 S.ROLE_OPERATOR, write).message,
                         "missing scope: operator.admin")
        S.authorize("sessions.delete", {"key": "k", "archivedOnly": True}, S.ROLE_OPERATOR,
                    write)
        refused(self, "sessions.delete", {"key": "k"}, S.ROLE_OPERATOR, write)
        S.authorize("agent", {"message": "/new"}, S.ROLE_OPERATOR, frozenset({S.ADMIN}))
        self.assertEqual(refused(self, "talk.config", {"includeSecrets": True},
                                 S.ROLE_OPERATOR, {S.READ}).message,
                         "missing scope: operator.talk.secrets")


class AdvertisedList(SynchronousTestCase):
    def test_built_once_and_rebuilt_after_a_registration(self) -> None:
        from openclaw_tw.protocol.dispatch import MethodTable

        table = MethodTable()
        table.add("health", lambda ctx, params: None)
        table.add("secret.internal", lambda ctx, params: None, advertise=False)
        first = table.advertised()
        self.assertEqual(first, ["health"])
        self.assertIs(table.advertised(), first)  # hello-ok reuses it
        table.add("status", lambda ctx, params: None)
        self.assertEqual(table.advertised(), ["health", "status"])
