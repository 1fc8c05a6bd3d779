"""Typed HTTP settings read from the JSON5 config (§11.3-§11.5), and the session-history
endpoint (§11.6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.config.settings import ConfigError
from tests.support.helpers import make_settings
from tests.support.http_harness import AUTH, HttpCase, write_config


def settings(cfg: dict[str, Any]) -> Any:
    return make_settings(config=write_config(cfg))


class Settings(SynchronousTestCase):
    def test_defaults(self) -> None:
        s = settings({})
        self.assertEqual((s.chat_completions_enabled, s.responses_enabled), (False, False))
        self.assertEqual((s.tools_allow, s.tools_deny), ((), ()))
        self.assertEqual((s.hooks_enabled, s.hooks_token, s.hooks_path), (False, None, "/hooks"))
        self.assertFalse(s.hooks_allow_request_session_key)

    def test_values(self) -> None:
        s = settings({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": True}}},
                                  "tools": {"allow": ["exec"], "deny": ["browser"]}},
                      "hooks": {"enabled": True, "token": "t", "path": "in/hooks/",
                                "allowRequestSessionKey": True}})
        self.assertEqual((s.chat_completions_enabled, s.responses_enabled), (True, False))
        self.assertEqual((s.tools_allow, s.tools_deny), (("exec",), ("browser",)))
        self.assertEqual((s.hooks_enabled, s.hooks_token, s.hooks_path), (True, "t", "/in/hooks"))
        self.assertTrue(s.hooks_allow_request_session_key)

    def test_json5(self) -> None:
        path = Path(write_config({})).with_name("openclaw.json5")
        path.write_text("{gateway: {http: {endpoints: {responses: {enabled: true,},},},},}")
        self.assertTrue(make_settings(config=str(path)).responses_enabled)

    def test_invalid(self) -> None:
        for cfg in ({"hooks": {"path": "/"}}, {"hooks": {"path": 5}},
                    {"hooks": {"token": 123}}, {"gateway": {"tools": {"deny": "exec"}}},
                    {"gateway": {"tools": {"allow": [1]}}}):
            with self.assertRaises(ConfigError, msg=json.dumps(cfg)):
                settings(cfg)

    def test_truthy_is_not_true(self) -> None:
        s = settings({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": "yes"}}}},
                      "hooks": {"enabled": 1, "token": "t"}})
        self.assertFalse(s.chat_completions_enabled)
        self.assertFalse(s.hooks_enabled)


class History(HttpCase):
    def test_history(self) -> None:
        chat = {"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]}
        self.post("/v1/chat/completions", chat, headers={**AUTH, "x-openclaw-session-key": "main"})
        self.post("/v1/chat/completions", chat, headers={**AUTH, "x-openclaw-session-key": "main"})
        reply = self.fetch("GET", "/sessions/agent%3Amain%3Amain/history")
        self.assertEqual(reply.code, 200)
        body = reply.json()
        self.assertEqual(list(body), ["sessionKey", "items", "messages", "hasMore"])
        self.assertEqual(body["sessionKey"], "agent:main:main")
        self.assertEqual(body["items"], body["messages"])
        self.assertEqual([m["role"] for m in body["items"]],
                         ["user", "assistant", "user", "assistant"])
        self.assertIn("seq", body["items"][0]["__openclaw"])
        self.assertFalse(body["hasMore"])
        limited = self.fetch("GET", "/sessions/agent:main:main/history?limit=1").json()
        self.assertEqual((len(limited["items"]), limited["hasMore"]), (1, True))
        self.assertEqual(limited["items"][0]["role"], "assistant")
        self.assertEqual(self.fetch("GET", "/sessions/main/history").json()["sessionKey"],
                         "agent:main:main")
        empty = self.fetch("GET", "/sessions/agent:main:none/history").json()
        self.assertEqual((empty["items"], empty["hasMore"]), ([], False))

    def test_errors(self) -> None:
        self.assertEqual(self.fetch("GET", "/sessions/main/history", headers={}).code, 401)
        self.assertEqual(self.fetch("GET", "/sessions/main/history?limit=0").code, 400)
        self.assertEqual(self.fetch("GET", "/sessions/main/history?limit=x").code, 400)
        reply = self.fetch("POST", "/sessions/main/history", {})
        self.assertEqual((reply.code, reply.header("Allow")), (405, "GET"))
        self.assertEqual(self.fetch("GET", "/sessions//history").code, 404)
        self.assertEqual(self.fetch("GET", "/sessions/main/kill").code, 404)
