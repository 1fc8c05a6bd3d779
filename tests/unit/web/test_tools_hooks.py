"""``POST /tools/invoke`` (reference §11.4) and hooks (§11.5): policy, auth, token handling,
throttling, wake and agent runs, body limits."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import succeed

from openclaw_tw.web import hooks, tools_invoke
from openclaw_tw.web.tools_invoke import DEFAULT_DENY, ToolsInvoke, allowed
from tests.support.helpers import hello, stored_keys
from tests.support.http_harness import AUTH, BEARER, HOOK_TOKEN, HOOKS, HttpCase, merge


class ToolsInvokeTests(HttpCase):
    config = HOOKS

    def test_every_tool_is_not_available(self) -> None:
        for name in ("exec", "sessions_list", "web_search", "cron"):
            reply = self.post("/tools/invoke", {"tool": name, "args": {}})
            self.assertEqual(reply.code, 404, name)
            self.assertEqual(reply.header("Content-Type"), "application/json; charset=utf-8")
            self.assertEqual(reply.json(), {"ok": False, "error": {
                "type": "not_found", "message": f"Tool not available: {name}"}})
            self.assert_security_headers(reply)
        self.assertEqual(self.post("/tools/invoke", {"name": "exec"}).code, 404)

    def test_get_is_405_before_auth(self) -> None:
        reply = self.fetch("GET", "/tools/invoke", headers={})
        self.assertEqual((reply.code, reply.header("Allow"), reply.body),
                         (405, "POST", b"Method Not Allowed"))
        self.assertEqual(reply.header("Content-Type"), "text/plain; charset=utf-8")

    def test_auth(self) -> None:
        reply = self.post("/tools/invoke", {"tool": "exec"}, headers={})
        self.assertEqual(reply.code, 401)
        self.assertEqual(reply.json(), {"error": {"message": "Unauthorized",
                                                  "type": "unauthorized"}})

    def test_bad_requests(self) -> None:
        for body, raw in (({}, None), ({"tool": ""}, None), ({"tool": 5}, None),
                          ({"tool": "x", "args": []}, None), (None, b"{nope")):
            reply = self.post("/tools/invoke", body, raw=raw)
            self.assertEqual(reply.code, 400, body)
            self.assertEqual(reply.json()["ok"], False)
            self.assertEqual(reply.json()["error"]["type"], "invalid_request")

    def test_body_limit(self) -> None:
        self.assertEqual(tools_invoke.MAX_BODY_BYTES, 2 * 1024 * 1024)
        self.patch(tools_invoke, "MAX_BODY_BYTES", 100)
        reply = self.post("/tools/invoke", {"tool": "exec", "args": {"x": "y" * 200}})
        self.assertEqual(reply.code, 413)
        self.assertEqual(reply.json()["ok"], False)

    def test_policy(self) -> None:
        self.assertEqual(DEFAULT_DENY, {"exec", "spawn", "shell", "fs_write", "fs_delete",
                                        "fs_move", "apply_patch", "sessions_spawn",
                                        "sessions_send", "cron", "gateway", "nodes"})
        self.assertFalse(allowed("exec", (), ()))
        self.assertTrue(allowed("exec", ("exec",), ()))
        self.assertTrue(allowed("web_search", (), ()))
        self.assertFalse(allowed("web_search", (), ("web_search",)))
        self.assertFalse(allowed("exec", ("exec",), ("exec",)))
        self.assertFalse(allowed("anything", (), ("*",)))
        self.assertEqual(self.gw.settings.tools_allow, ("cron",))
        self.assertEqual(self.gw.settings.tools_deny, ("sessions_list",))

    def test_an_allowed_tool_runs_and_a_denied_one_is_not_available(self) -> None:
        calls: list[Any] = []

        def echo(args: dict[str, Any], context: dict[str, Any]) -> Any:
            calls.append((args, context))
            return succeed({"content": [{"type": "text", "text": "ok"}], "details": args})

        self.root.tools = ToolsInvoke(self.app, {"echo": echo, "cron": echo,
                                                "sessions_list": echo, "exec": echo})
        reply = self.post("/tools/invoke", {"tool": "echo", "args": {"a": 1}},
                          headers={**AUTH, "x-openclaw-message-channel": "slack"})
        self.assertEqual((reply.code, reply.json()), (200, {"ok": True, "result": {
            "content": [{"type": "text", "text": "ok"}], "details": {"a": 1}}}))
        self.assertEqual(calls[0][1]["sessionKey"], "main")
        self.assertEqual(calls[0][1]["x-openclaw-message-channel"], "slack")
        self.assertEqual(self.post("/tools/invoke", {"tool": "cron"}).code, 200)  # allowed
        self.assertEqual(self.post("/tools/invoke", {"tool": "exec"}).code, 404)  # default deny
        self.assertEqual(self.post("/tools/invoke", {"tool": "sessions_list"}).code, 404)


class HooksDisabled(HttpCase):
    config = {"hooks": {"enabled": True}}  # no token: not served

    def test_fall_through(self) -> None:
        for config_path in ("/hooks/wake", "/hooks/agent"):
            reply = self.post(config_path, {"text": "x"}, headers=BEARER)
            self.assertEqual((reply.code, reply.body), (404, b"Not Found"))


class Hooks(HttpCase):
    config = HOOKS

    def test_wake(self) -> None:
        client = hello(self.gw, scopes=["operator.read"])
        reply = self.post("/hooks/wake", {"text": "New email"}, headers=BEARER)
        self.assertEqual(reply.code, 200)
        self.assertEqual(reply.body, b'{"ok":true,"mode":"now","eventOutcome":"queued"}')
        self.assert_security_headers(reply)
        reply = self.post("/hooks/wake", {"text": "Other", "mode": "next-heartbeat"},
                          headers={"x-openclaw-token": HOOK_TOKEN})
        self.assertEqual(reply.body,
                         b'{"ok":true,"mode":"next-heartbeat","eventOutcome":"queued"}')
        reply = self.post("/hooks/wake", {"text": "New email"}, headers=BEARER)
        self.assertEqual(reply.json()["eventOutcome"], "coalesced")
        pending = list(self.root.hooks.pending.values())
        self.assertEqual([(p["sessionKey"], p["text"]) for p in pending],
                         [("agent:main:main", "New email"), ("agent:main:main", "Other")])
        texts = [e.get("text") for e in self.gw.presence.snapshot()]
        self.assertIn("New email", texts)
        client.flush()
        self.assertTrue(client.events("presence"))

    def test_wake_queue_is_bounded(self) -> None:
        for i in range(hooks.MAX_PENDING + 5):
            self.post("/hooks/wake", {"text": f"t{i}"}, headers=BEARER)
        self.assertEqual(len(self.root.hooks.pending), hooks.MAX_PENDING)

    def test_wake_validation(self) -> None:
        for body in ({}, {"text": ""}, {"text": "x", "mode": "later"},
                     {"text": "x", "agentId": "ghost"}):
            reply = self.post("/hooks/wake", body, headers=BEARER)
            self.assertEqual(reply.code, 400, body)
            self.assertEqual(reply.json()["ok"], False)

    def test_agent(self) -> None:
        client = hello(self.gw, scopes=["operator.read"])
        reply = self.post("/hooks/agent", {"message": "Summarize inbox", "name": "Email"},
                          headers=BEARER)
        self.assertEqual(reply.code, 200, reply)
        body = reply.json()
        self.assertEqual(list(body), ["ok", "runId"])
        run_id = body["runId"]
        run = self.app.runtime.runs[run_id]
        self.assertTrue(run.session_key.startswith("agent:main:hook:"), run.session_key)
        self.settle(run.finished())
        self.assertEqual(run.outcome.status, "ok")
        client.flush()
        self.assertTrue([f for f in client.events("chat") if f["payload"]["runId"] == run_id])
        # each call is its own isolated session
        other = self.post("/hooks/agent", {"message": "again"}, headers=BEARER).json()
        self.assertNotEqual(self.app.runtime.runs[other["runId"]].session_key, run.session_key)

    def test_agent_idempotency_key(self) -> None:
        first = self.post("/hooks/agent", {"message": "m", "idempotencyKey": "k1"},
                          headers=BEARER).json()
        second = self.post("/hooks/agent", {"message": "m", "idempotencyKey": "k1"},
                           headers=BEARER).json()
        self.assertEqual(first, second)
        self.assertEqual(len(stored_keys(self.app)), 1)

    def test_agent_validation(self) -> None:
        for body in ({}, {"message": " "}, {"message": "x", "agentId": "ghost"},
                     {"message": "x", "model": "nope/x"}, {"message": "x", "timeoutSeconds": -1},
                     {"message": "x", "sessionKey": "agent:main:main"}):
            reply = self.post("/hooks/agent", body, headers=BEARER)
            self.assertEqual(reply.code, 400, body)
            self.assertEqual(reply.json()["ok"], False)
        self.assertEqual(self.app.runtime.runs, {})

    def test_token_in_query_is_400(self) -> None:
        reply = self.post("/hooks/wake?token=hook-secret", {"text": "x"}, headers={})
        self.assertEqual(reply.code, 400)
        self.assertEqual(reply.header("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(reply.body, hooks.QUERY_TOKEN.encode())
        self.assertEqual(len(reply.body), 124)
        reply = self.post("/hooks/wake?token=", {"text": "x"}, headers=BEARER)
        self.assertEqual(reply.code, 400)
        # a form field named token is not a query parameter
        reply = self.post("/hooks/wake", raw=b"token=x", headers={
            **BEARER, "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(reply.code, 400)
        self.assertEqual(reply.json()["ok"], False)  # the JSON body check, not the token one

    def test_bad_token_is_401_text(self) -> None:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"x-openclaw-token": "nope"},
                        AUTH):
            reply = self.post("/hooks/wake", {"text": "x"}, headers=headers)
            self.assertEqual((reply.code, reply.body), (401, b"Unauthorized"), headers)
            self.assertEqual(reply.header("Content-Type"), "text/plain; charset=utf-8")

    def test_method_and_unknown_paths(self) -> None:
        reply = self.fetch("GET", "/hooks/wake", headers=BEARER)
        self.assertEqual((reply.code, reply.header("Allow"), reply.body),
                         (405, "POST", b"Method Not Allowed"))
        for path in ("/hooks/unknownmap", "/hooks", "/hooks/", "/hooks/wake/x"):
            reply = self.post(path, {"text": "x"}, headers=BEARER)
            self.assertEqual((reply.code, reply.body), (404, b"Not Found"), path)
        self.assertEqual(self.post("/hooksy", {}, headers=BEARER).code, 404)

    def test_twenty_failures_in_a_minute_is_429(self) -> None:
        for _ in range(hooks.MAX_FAILURES):
            self.assertEqual(self.post("/hooks/wake", {"text": "x"}, headers={}).code, 401)
        reply = self.post("/hooks/wake", {"text": "x"}, headers=BEARER)  # even the right one
        self.assertEqual(reply.code, 429)
        self.assertEqual(reply.header("Retry-After"), "60")
        self.clock.advance(61)
        self.assertEqual(self.post("/hooks/wake", {"text": "x"}, headers=BEARER).code, 200)

    def test_body_limit_and_bad_json(self) -> None:
        self.assertEqual(hooks.MAX_BODY_BYTES, 256 * 1024)
        reply = self.post("/hooks/wake", {"text": "x" * (256 * 1024)}, headers=BEARER)
        self.assertEqual(reply.code, 413)
        reply = self.post("/hooks/wake", raw=b"{nope", headers=BEARER)
        self.assertEqual(reply.code, 400)
        self.assertEqual(reply.json()["ok"], False)


class HooksCustomPath(HttpCase):
    config = merge(HOOKS, {"hooks": {"path": "/in/", "allowRequestSessionKey": True}})

    def test_custom_path_and_request_session_key(self) -> None:
        self.assertEqual(self.post("/hooks/wake", {"text": "x"}, headers=BEARER).code, 404)
        self.assertEqual(self.post("/in/wake", {"text": "x"}, headers=BEARER).code, 200)
        reply = self.post("/in/agent", {"message": "m", "sessionKey": "mail",
                                        "sessionMode": "persistent"}, headers=BEARER)
        run = self.app.runtime.runs[reply.json()["runId"]]
        self.assertEqual(run.session_key, "agent:main:mail")
        # isolated (the default): checked, but a fresh session, as the real gateway
        reply = self.post("/in/agent", {"message": "m", "sessionKey": "mail"}, headers=BEARER)
        run = self.app.runtime.runs[reply.json()["runId"]]
        self.assertTrue(run.session_key.startswith("agent:main:hook:"), run.session_key)
        reply = self.post("/in/agent", {"message": "m", "sessionKey": "cron:x"}, headers=BEARER)
        self.assertEqual(reply.code, 400)


class HookSessionModes(HttpCase):
    """sessionMode and waitForCompletion (issue #20); the refusals' wording as the real
    gateway's (captured on 2026.9.6 with hooks.allowedSessionKeyPrefixes ["hook:"])."""

    config = merge(HOOKS, {"hooks": {"allowRequestSessionKey": True,
                                     "allowedSessionKeyPrefixes": ["hook:"]}})

    def test_refusals(self) -> None:
        for body, message in (
                ({"message": "x", "sessionMode": "persistent"},
                 "sessionKey is required when sessionMode is persistent"),
                ({"message": "x", "sessionKey": "other:p", "sessionMode": "persistent"},
                 "sessionKey must start with one of: hook:"),
                ({"message": "x", "sessionMode": "bogus"},
                 "sessionMode must be isolated or persistent"),
                ({"message": "x", "waitForCompletion": "yes"},
                 "waitForCompletion must be boolean")):
            reply = self.post("/hooks/agent", body, headers=BEARER)
            self.assertEqual((reply.code, reply.json()), (400, {"ok": False, "error": message}))
        self.assertEqual(self.app.runtime.runs, {})

    def test_persistent_runs_share_the_session_and_its_history(self) -> None:
        ids = [self.post("/hooks/agent", {"message": f"turn {i}", "sessionKey": "hook:p",
                                          "sessionMode": "persistent"},
                         headers=BEARER).json()["runId"] for i in range(2)]
        keys = {self.app.runtime.runs[i].session_key for i in ids}
        self.assertEqual(keys, {"agent:main:hook:p"})

    def test_wait_for_completion_answers_when_the_run_ends(self) -> None:
        reply = self.post("/hooks/agent", {"message": "count to 3", "waitForCompletion": True},
                          headers=BEARER)
        body = reply.json()
        self.assertEqual(reply.code, 200)
        self.assertEqual(body["completion"], {"status": "ok", "replyDisposition": "visible",
                                              "delivered": False, "deliveryAttempted": False})
        self.assertEqual(self.app.runtime.runs[body["runId"]].outcome.status, "ok")
        self.assertNotIn("1, 2, 3", reply.body.decode())  # never the reply itself

    def test_a_replayed_key_shares_the_completion(self) -> None:
        first = self.post("/hooks/agent", {"message": "m", "idempotencyKey": "w1",
                                           "waitForCompletion": True}, headers=BEARER).json()
        again = self.post("/hooks/agent", {"message": "m", "idempotencyKey": "w1",
                                           "waitForCompletion": True}, headers=BEARER).json()
        self.assertEqual(first, again)
        self.assertEqual(len(stored_keys(self.app)), 1)
        plain = self.post("/hooks/agent", {"message": "m", "idempotencyKey": "w1"},
                          headers=BEARER).json()
        self.assertEqual(plain, {"ok": True, "runId": first["runId"]})

    def test_silent_and_error_completions(self) -> None:
        from openclaw_tw.web.hooks import completion

        class Outcome:
            def __init__(self, status: str, text: str) -> None:
                self.status, self.text = status, text

        self.assertEqual(completion(Outcome("ok", " no_reply "))["replyDisposition"], "silent")
        self.assertEqual(completion(Outcome("ok", ""))["replyDisposition"], "empty")
        self.assertEqual(completion(Outcome("error", ""))["status"], "error")
        self.assertEqual(completion(Outcome("aborted", "partial"))["status"], "error")
