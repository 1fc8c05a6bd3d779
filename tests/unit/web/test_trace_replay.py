"""Replays the requests of the reference captures (traces/http-openai-compat.txt,
http-openai-compat-success.txt, http-probes.txt) against our gateway and compares status
codes, the headers that matter and the bodies (exactly, after replacing uuids and timestamps;
by shape where the content is the gateway's own state).

The captures hold responses only; each title's request is rebuilt here.  The upstream model
is ``tests/support/fakes/openai_server.py`` in memory: without an API key for the "failing" capture
(so the provider fails the way the reference's did), with one and the reference's mock reply
for the "success" capture.  ``KNOWN`` lists what we deliberately do not serve yet, and why.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
from treq.testing import StubTreq
from twisted.trial.unittest import SkipTest

from openclaw_tw.agent.openai import OpenAIProvider
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.helpers import TOKEN
from tests.support.http_harness import AUTH, ENABLED, HttpCase, Reply, merge
from tests.support.paths import TRACES

HOOK = "hook-secret"
HOOK_BEARER = {"Authorization": f"Bearer {HOOK}"}
HI = {"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]}

# title -> (method, path, headers, JSON body)
REQUESTS: dict[str, tuple[str, str, dict[str, str], Any]] = {
    "GET /v1/models (Bearer)": ("GET", "/v1/models", AUTH, None),
    "GET /v1/models (no auth)": ("GET", "/v1/models", {}, None),
    "GET /v1/models (wrong token)": ("GET", "/v1/models", {"Authorization": "Bearer nope"},
                                     None),
    "GET /v1/models/openclaw%2Fdefault": ("GET", "/v1/models/openclaw%2Fdefault", AUTH, None),
    "POST /v1/chat/completions non-stream": ("POST", "/v1/chat/completions", AUTH, HI),
    "POST /v1/chat/completions stream": ("POST", "/v1/chat/completions", AUTH,
                                         {**HI, "stream": True}),
    "POST /v1/chat/completions bad model": ("POST", "/v1/chat/completions", AUTH,
                                            {**HI, "model": "gpt-4o"}),
    "POST /v1/chat/completions reserved session key": (
        "POST", "/v1/chat/completions", {**AUTH, "x-openclaw-session-key": "subagent:x"}, HI),
    "POST /v1/chat/completions missing messages": ("POST", "/v1/chat/completions", AUTH,
                                                   {"model": "openclaw"}),
    "POST /v1/responses non-stream": ("POST", "/v1/responses", AUTH,
                                      {"model": "openclaw", "input": "hi"}),
    "POST /v1/responses stream": ("POST", "/v1/responses", AUTH,
                                  {"model": "openclaw", "input": "hi", "stream": True}),
    "POST /tools/invoke sessions_list": ("POST", "/tools/invoke", AUTH,
                                         {"tool": "sessions_list", "args": {}}),
    "POST /tools/invoke exec (denied)": ("POST", "/tools/invoke", AUTH,
                                         {"tool": "exec", "args": {"command": "ls"}}),
    "POST /tools/invoke no auth": ("POST", "/tools/invoke", {}, {"tool": "exec"}),
    "POST /hooks/wake": ("POST", "/hooks/wake", HOOK_BEARER, {"text": "ping"}),
    "POST /hooks/wake x-openclaw-token": ("POST", "/hooks/wake", {"x-openclaw-token": HOOK},
                                          {"text": "ping 2", "mode": "next-heartbeat"}),
    "POST /hooks/wake bad token": ("POST", "/hooks/wake", {"Authorization": "Bearer no"},
                                   {"text": "x"}),
    "POST /hooks/wake ?token=": ("POST", f"/hooks/wake?token={HOOK}", {}, {"text": "x"}),
    "POST /hooks/agent": ("POST", "/hooks/agent", HOOK_BEARER, {"message": "hi"}),
    "POST /hooks/unknownmap": ("POST", "/hooks/unknownmap", HOOK_BEARER, {"x": 1}),
    "GET /hooks/wake (method)": ("GET", "/hooks/wake", HOOK_BEARER, None),
    "POST /v1/embeddings": ("POST", "/v1/embeddings", AUTH, {"model": "openclaw", "input": "x"}),
    "GET /sessions/agent:main:main/history": ("GET", "/sessions/agent:main:main/history", AUTH,
                                              None),
    "POST /v1/chat/completions non-stream (success)": (
        "POST", "/v1/chat/completions", AUTH, {**HI, "model": "openclaw/default"}),
    "POST /v1/chat/completions stream (success, include_usage)": (
        "POST", "/v1/chat/completions", AUTH,
        {**HI, "model": "openclaw/main", "stream": True,
         "stream_options": {"include_usage": True}}),
    "POST /v1/responses non-stream (success)": ("POST", "/v1/responses", AUTH,
                                                {"model": "openclaw", "input": "hi"}),
    "POST /v1/responses stream (success)": ("POST", "/v1/responses", AUTH,
                                            {"model": "openclaw", "input": "hi",
                                             "stream": True}),
}
# Compared by shape (top-level keys, entry shapes), not content: the gateway's own state.
BY_SHAPE = {"GET /sessions/agent:main:main/history", "GET /ready (no auth)",
            "GET /readyz (no auth)", "GET /ready (Bearer)", "GET /startup (no auth)",
            "GET /startupz (no auth)", "GET /startup (Bearer)"}
KNOWN = {
    "POST /tools/invoke sessions_list": "no agent tools are implemented yet: 404 "
                                        "'Tool not available' instead of the session list",
    "GET /hooks/wake (no auth)": "no Control UI: the reference falls through to its SPA",
    "GET / (no auth)": "no Control UI (SPA shell)",
    "GET /__openclaw__/ (no auth)": "no Control UI (SPA shell)",
    "GET /api/nodes/watch/x (no auth)": "no watch-node API: plain 404 instead of its JSON 404",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_STAMP = re.compile(r'"(created|created_at|uptimeMs)":\d+')


@attrs.frozen
class Captured:
    title: str
    status: int
    headers: dict[str, str]  # lower-case names
    body: str


def parse(name: str) -> list[Captured]:
    out = []
    for block in (TRACES / name).read_text().split("=== ")[1:]:
        title, rest = block.split("\n", 1)
        head, _, body = rest.partition("\n\n")
        lines = head.split("\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        body = re.sub(r"\n*\[elapsed_ms=\d+\]\n*$", "", body).rstrip("\n")
        out.append(Captured(title.strip(), status, headers, body))
    return out


def normalize(text: str) -> str:
    return _STAMP.sub(r'"\1":0', _UUID.sub("<uuid>", text)).rstrip("\n")


def shape(value: Any) -> Any:
    """Top-level keys and the types of their values (entries themselves are ``chat.history``'s
    and the event-loop figures the health monitor's; both are tested where they are built)."""
    if isinstance(value, dict):
        return {k: type(v).__name__ for k, v in value.items()}
    return type(value).__name__


class Replay(HttpCase):
    config = merge(ENABLED, {"hooks": {"enabled": True, "token": HOOK}})
    api_key: str | None = None

    def setUp(self) -> None:
        if not TRACES.is_dir():
            raise SkipTest(f"reference traces not found at {TRACES}")
        super().setUp()
        self.fake = FakeOpenAI(self.clock, api_key="sk-upstream")
        self.upstream = StubTreq(self.fake.resource)
        spec: dict[str, Any] = {"baseUrl": "http://upstream.invalid/v1"}
        if self.api_key:
            spec["apiKey"] = self.api_key
        registry = self.app.runtime.registry
        registry.providers["openai"] = OpenAIProvider("openai", spec, self.clock,
                                                      http=self.upstream, environ={})
        registry.primary = "openai/gpt-6-astra"

    def settle(self, d: Any, steps: int = 2000) -> Any:
        fired: list[bool] = []
        d.addBoth(lambda r: (fired.append(True), r)[1])
        for _ in range(steps):
            self.stub.flush()
            self.upstream.flush()
            if fired:
                break
            self.clock.advance(0.005)
        return self.successResultOf(d)

    def replay(self, captured: Captured) -> Reply:
        method, path, headers, body = REQUESTS.get(captured.title) or (
            captured.title.split()[0], captured.title.split()[1],
            AUTH if "(Bearer)" in captured.title else {}, None)
        return self.fetch(method, path, body, headers)

    def compare(self, name: str) -> None:
        problems = []
        compared = 0
        for captured in parse(name):
            if captured.title in KNOWN:
                continue
            compared += 1
            ours = self.replay(captured)
            title = captured.title
            if ours.code != captured.status:
                problems.append(f"{title}: status {ours.code}, reference {captured.status}")
                continue
            for header in ("content-type", "allow", "cache-control", "x-content-type-options",
                           "referrer-policy", "permissions-policy"):
                theirs = captured.headers.get(header)
                if theirs is not None and ours.header(header) != theirs:
                    problems.append(f"{title}: {header} {ours.header(header)!r}, "
                                    f"reference {theirs!r}")
            if title in BY_SHAPE:
                if shape(ours.json()) != shape(json.loads(captured.body)):
                    problems.append(f"{title}: shape {shape(ours.json())}, reference "
                                    f"{shape(json.loads(captured.body))}")
            elif normalize(ours.body.decode()) != normalize(captured.body):
                problems.append(f"{title}: body\n  ours      {normalize(ours.body.decode())}"
                                f"\n  reference {normalize(captured.body)}")
        self.assertGreater(compared, 3)
        self.assertEqual(problems, [], "\n".join(problems))


class FailingProvider(Replay):
    """traces/http-openai-compat.txt: the reference had no key for its provider."""

    def test_replay(self) -> None:
        # the captured history had entries for agent:main:main
        self.post("/v1/chat/completions", HI, headers={**AUTH, "x-openclaw-session-key": "main"})
        self.compare("http-openai-compat.txt")


class SuccessfulProvider(Replay):
    """traces/http-openai-compat-success.txt: the reference's mock model answered."""

    api_key = "sk-upstream"

    def setUp(self) -> None:
        super().setUp()
        self.fake.behave(chunks=["Hello", " from", " the", " mock", " model", "."],
                         usage=(10, 6))

    def test_replay(self) -> None:
        self.compare("http-openai-compat-success.txt")


class Probes(Replay):
    """traces/http-probes.txt: OpenAI endpoints and hooks disabled (the capture's config)."""

    config: dict[str, Any] = {}

    def test_replay(self) -> None:
        self.assertEqual(TOKEN, AUTH["Authorization"][7:])
        self.compare("http-probes.txt")
