"""hooks.mappings: /hooks/<name> matched by path/source, templated into wake/agent actions."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.web import hook_mappings
from tests.support.http_harness import BEARER, HOOKS, HttpCase, merge

MAPPINGS = {"hooks": {"mappings": [
    {"id": "gh", "match": {"path": "github", "source": "github"}, "action": "agent",
     "name": "GitHub {{action}}", "messageTemplate": "PR {{pull_request.number}}: "
     "{{pull_request.title}} by {{headers.x-sender}}", "sessionKey": "hook:gh:{{repo}}",
     "sessionMode": "persistent"},
    {"match": {"path": "gh-fresh"}, "action": "agent", "messageTemplate": "PR {{n}}",
     "sessionKey": "hook:gh:{{repo}}"},  # sessionMode isolated, the default
    {"match": {"path": "mail"}, "action": "wake", "textTemplate": "Mail from {{from}}"},
    {"match": {"path": "batch"}, "forEach": "events", "messageTemplate": "event {{id}}"},
    {"match": {"path": "empty"}, "messageTemplate": "{{nothing}}"},
    {"match": {"path": "js"}, "transform": {"module": "x.js"}},
]}}


class HookMappings(HttpCase):
    config = merge(HOOKS, MAPPINGS)

    def runs(self) -> list[tuple[str, str]]:
        return [(r.session_key, r.message) for r in self.app.runtime.runs.values()]

    def test_agent_mapping_renders_templates_and_uses_its_session_key(self) -> None:
        body = {"source": "github", "action": "opened", "repo": "acme/app",
                "pull_request": {"number": 7, "title": "Fix it"}}
        reply = self.post("/hooks/github", body, headers={**BEARER, "x-sender": "ann"})
        self.assertEqual(reply.code, 200, reply.body)
        self.assertTrue(reply.json()["ok"])
        self.assertEqual(self.runs(), [("agent:main:hook:gh:acme/app", "PR 7: Fix it by ann")])

    def test_an_isolated_mapping_runs_in_a_fresh_session_each_time(self) -> None:
        for _ in range(2):
            reply = self.post("/hooks/gh-fresh", {"repo": "acme/app", "n": 7}, headers=BEARER)
            self.assertEqual(reply.code, 200, reply.body)
        keys = [k for k, _ in self.runs()]
        self.assertEqual(len(set(keys)), 2)
        self.assertTrue(all(k.startswith("agent:main:hook:") and "gh:" not in k for k in keys))

    def test_source_must_match_too(self) -> None:
        reply = self.post("/hooks/github", {"source": "gitlab"}, headers=BEARER)
        self.assertEqual((reply.code, reply.body), (404, b"Not Found"))

    def test_wake_mapping(self) -> None:
        reply = self.post("/hooks/mail", {"from": "bob@example.com"}, headers=BEARER)
        self.assertEqual(reply.json(), {"ok": True, "mode": "now", "eventOutcome": "queued"})
        texts = [p["text"] for p in self.root.hooks.pending.values()]
        self.assertEqual(texts, ["Mail from bob@example.com"])

    def test_for_each_fans_out(self) -> None:
        reply = self.post("/hooks/batch", {"events": [{"id": 1}, {"id": 2}, {"id": 3}]},
                          headers=BEARER)
        self.assertEqual(reply.json()["count"], 3)
        self.assertEqual(sorted(m for _, m in self.runs()), ["event 1", "event 2", "event 3"])

    def test_a_for_each_value_that_is_not_an_array_is_no_action_not_a_500(self) -> None:
        for body in ({}, {"events": None}, {"events": "x"}, {"events": {"id": 1}},
                     {"events": []}):
            reply = self.post("/hooks/batch", body, headers=BEARER)
            self.assertEqual((reply.code, reply.body), (204, b""), body)
        self.assertEqual(self.runs(), [])

    def test_no_action_is_204_and_no_mapping_is_404(self) -> None:
        self.assertEqual(self.post("/hooks/empty", {}, headers=BEARER).code, 204)
        self.assertEqual(self.runs(), [])
        self.assertEqual(self.post("/hooks/nowhere", {}, headers=BEARER).code, 404)

    def test_transform_modules_fail_clearly(self) -> None:
        reply = self.post("/hooks/js", {}, headers=BEARER)
        self.assertEqual(reply.code, 500)
        self.assertIn(b"hook mapping failed", reply.body)

    def test_mapped_paths_still_need_the_hook_token(self) -> None:
        self.assertEqual(self.post("/hooks/mail", {"from": "x"}).code, 401)


class Templates(SynchronousTestCase):
    def test_lookup_and_render(self) -> None:
        ctx = {"payload": {"a": {"b": [{"c": "deep"}]}, "n": None, "obj": {"k": 1}},
               "headers": {"x-id": "h1"}, "query": {"q": "v"}, "path": "p"}
        render = hook_mappings.render
        self.assertEqual(render("{{a.b[0].c}}", ctx), "deep")
        self.assertEqual(render("{{payload.a.b[0].c}}/{{headers.x-id}}/{{query.q}}/{{path}}",
                                ctx), "deep/h1/v/p")
        self.assertEqual(render("[{{n}}][{{missing.x}}][{{a.b[9]}}]", ctx), "[][][]")
        self.assertEqual(render("{{obj}}", ctx), '{"k":1}')
        self.assertEqual(render("{{__proto__.x}}", ctx), "")


class ToolsInvokeExec(HttpCase):
    """/tools/invoke exec: off by default; with tools.exec.enabled + gateway.tools.allow it
    runs through the exec tool, whose approval policy applies."""

    config = {"tools": {"exec": {"enabled": True}}, "gateway": {"tools": {"allow": ["exec"]}}}

    def test_exec_is_denied_when_the_policy_says_deny(self) -> None:
        from tests.support.http_harness import AUTH

        (self.gw.settings.state_dir / "exec-approvals.json").write_text(
            '{"version": 1, "defaults": {"security": "deny"}}')
        reply = self.post("/tools/invoke", {"tool": "exec", "args": {"command": "echo hi"}},
                          headers=AUTH)
        self.assertEqual(reply.code, 200, reply.body)
        details = reply.json()["result"]["details"]
        self.assertEqual((details["ok"], details["denied"]), (False, True))
        self.assertIn("security=deny", details["error"])


class ToolsInvokeExecNotAllowed(HttpCase):
    config = {"tools": {"exec": {"enabled": True}}}

    def test_exec_stays_behind_the_default_http_deny_list(self) -> None:
        from tests.support.http_harness import AUTH

        reply = self.post("/tools/invoke", {"tool": "exec", "args": {"command": "echo hi"}},
                          headers=AUTH)
        self.assertEqual(reply.code, 404)
        self.assertEqual(reply.json()["error"]["message"], "Tool not available: exec")
