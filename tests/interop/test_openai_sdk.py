"""Real-client tier: the official ``openai`` Python SDK against our gateway on a loopback port.

The gateway runs in-process on the real reactor; the SDK's blocking client runs in a worker
thread (``deferToThread``) and ``AsyncOpenAI`` runs in ``asyncio.run`` in a worker thread (its
own event loop, no mixing with the reactor).  Every SDK client is closed inside its thread,
and teardown waits until each server-side connection is gone.  Two backends: the offline
model, and ``tests/support/fakes/openai_server.py`` as the configured upstream provider.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.config import settings as config
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.helpers import stored_keys, stored_row
from tests.support.loopback import close_store, listen_loopback, require_clean_reactor, within

try:
    import openai
except ImportError:  # pragma: no cover - the dev extra installs it
    openai = None  # type: ignore[assignment]

TOKEN = "sdk-secret"
UPSTREAM_KEY = "sk-upstream-test"
ENDPOINTS = {"chatCompletions": {"enabled": True}, "responses": {"enabled": True}}


class TrackedClock:
    """The real reactor's clock, remembering the timers set through it: the runtime keeps
    finished runs for 5 minutes (``agent.wait``); teardown cancels those timers."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def seconds(self) -> float:
        return reactor.seconds()

    def callLater(self, delay: float, f: Any, *args: Any, **kw: Any) -> Any:
        self.calls = [c for c in self.calls if c.active()]
        call = reactor.callLater(delay, f, *args, **kw)
        self.calls.append(call)
        return call

    def getDelayedCalls(self) -> list[Any]:
        return [c for c in self.calls if c.active()]

    def cancel_all(self) -> None:
        for call in self.getDelayedCalls():
            call.cancel()


def sync_client(base_url: str, token: str = TOKEN) -> Any:
    return openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=20)


class SDKCase(unittest.TestCase):
    timeout = 30
    upstream = False

    def setUp(self) -> None:
        if openai is None:
            raise unittest.SkipTest("the openai SDK is not installed (pip install '.[dev]')")
        require_clean_reactor(self)
        state = os.path.abspath(self.mktemp())
        os.makedirs(state)
        cfg: dict[str, Any] = {"gateway": {"http": {"endpoints": ENDPOINTS}}}
        self.fake: FakeOpenAI | None = None
        if self.upstream:
            self.fake = FakeOpenAI(reactor, api_key=UPSTREAM_KEY).start()
            cfg["models"] = {"providers": {"fake": {
                "baseUrl": self.fake.base_url, "apiKey": UPSTREAM_KEY,
                "models": [{"id": "gpt-4o-mini"}]}}}
            cfg["agents"] = {"defaults": {"model": {"primary": "fake/gpt-4o-mini"}}}
        path = os.path.join(state, "openclaw.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        settings = config.resolve({"port": "0", "token": TOKEN, "state-dir": state,
                                   "config": path}, env={"HOME": state})
        self.app = composition.build(settings, reactor)
        self.gw = self.app.hub
        self.clock = TrackedClock()
        self.gw.clock = self.clock
        self.gw.startService()
        self.app.runtime.startService()
        self.port = listen_loopback(tap.build_site(self.app))
        self.base_url = f"http://127.0.0.1:{self.port.getHost().port}/v1"

    async def tearDown(self) -> None:
        await defer.maybeDeferred(self.port.stopListening)
        await self.app.runtime.stopService()
        await defer.gatherResults([defer.maybeDeferred(p.close) for p in
                                   self.app.runtime.registry.providers.values()
                                   if hasattr(p, "close")])
        if self.gw.running:
            await self.gw.stopService()
        await defer.gatherResults([conn.lost for conn in self.port.connections])
        if self.fake is not None:
            await self.fake.stop()
        close_store(self.app)
        self.clock.cancel_all()

    def in_thread(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        return within(deferToThread(fn, *args), f"SDK call {fn.__name__}", 20)

    def in_asyncio(self, coro_fn: Any) -> defer.Deferred[Any]:
        return self.in_thread(lambda: asyncio.run(coro_fn()))

    async def ended(self, run_id: str) -> Any:
        """The run's outcome, once the runtime has let go of it: ``finished()`` fires inside
        the runtime's settle step, so give the reactor one turn (no delay) before looking."""
        outcome = await within(self.app.runtime.runs[run_id].finished(),
                               "the run to end after the client hung up")
        await task.deferLater(reactor, 0, lambda: None)
        return outcome

    def assert_idle(self) -> None:
        runtime = self.app.runtime
        self.assertEqual(runtime.active, {})
        self.assertTrue(all(r.outcome is not None for r in runtime.runs.values()))


# -- the SDK calls (run in worker threads) -----------------------------------------------------


def chat_plain(base_url: str, text: str) -> dict[str, Any]:
    with sync_client(base_url) as client:
        c = client.chat.completions.create(
            model="openclaw", messages=[{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": text}])
        return {"id": c.id, "object": c.object, "model": c.model,
                "content": c.choices[0].message.content, "role": c.choices[0].message.role,
                "finish": c.choices[0].finish_reason,
                "usage": c.usage.model_dump() if c.usage else None}


def chat_stream(base_url: str, text: str) -> dict[str, Any]:
    with sync_client(base_url) as client:
        stream = client.chat.completions.create(
            model="openclaw/default", messages=[{"role": "user", "content": text}], stream=True,
            stream_options={"include_usage": True})
        chunks = list(stream)
    return {"ids": sorted({c.id for c in chunks}),
            "deltas": [c.choices[0].delta.content for c in chunks
                       if c.choices and c.choices[0].delta.content],
            "roles": [c.choices[0].delta.role for c in chunks
                      if c.choices and c.choices[0].delta.role],
            "finish": [c.choices[0].finish_reason for c in chunks
                       if c.choices and c.choices[0].finish_reason],
            "usage": [c.usage.model_dump() for c in chunks if c.usage]}


def models_list(base_url: str) -> dict[str, Any]:
    with sync_client(base_url) as client:
        ids = [m.id for m in client.models.list()]
        one = client.models.retrieve("openclaw/default")
        return {"ids": ids, "one": one.id, "owned_by": one.owned_by}


def responses_plain(base_url: str, text: str, previous: str | None = None) -> dict[str, Any]:
    with sync_client(base_url) as client:
        kwargs: dict[str, Any] = {"previous_response_id": previous} if previous else {}
        r = client.responses.create(model="openclaw", input=text, **kwargs)
        return {"id": r.id, "status": r.status, "text": r.output_text,
                "usage": r.usage.total_tokens if r.usage else None}


def responses_stream(base_url: str, text: str) -> dict[str, Any]:
    with sync_client(base_url) as client:
        events = list(client.responses.create(model="openclaw", input=text, stream=True,
                                              instructions="Be brief."))
    completed = [e for e in events if e.type == "response.completed"]
    return {"types": [e.type for e in events],
            "deltas": [e.delta for e in events if e.type == "response.output_text.delta"],
            "final": completed[0].response.output_text if completed else None}


def errors(base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with sync_client(base_url) as client:
        try:
            client.chat.completions.create(model="gpt-4o",
                                           messages=[{"role": "user", "content": "x"}])
        except openai.BadRequestError as e:
            out["bad_model"] = (e.status_code, e.body)
        try:
            client.chat.completions.create(model="openclaw", messages=[])
        except openai.BadRequestError as e:
            out["no_messages"] = (e.status_code, e.body)
    with sync_client(base_url, "wrong-token") as client:
        try:
            client.models.list()
        except openai.AuthenticationError as e:
            out["auth"] = (e.status_code, e.body)
    return out


def stream_then_hang_up(base_url: str, text: str, keep: int) -> list[str]:
    """Read ``keep`` chunks of a streamed completion, then close the connection."""
    client = sync_client(base_url)
    try:
        stream = client.chat.completions.create(
            model="openclaw", messages=[{"role": "user", "content": text}], stream=True)
        seen = []
        for chunk in stream:
            seen.append(chunk.id)
            if len(seen) >= keep:
                break
        stream.close()
        return seen
    finally:
        client.close()


async def async_calls(base_url: str) -> dict[str, Any]:
    async with openai.AsyncOpenAI(base_url=base_url, api_key=TOKEN, max_retries=0,
                                  timeout=20) as client:
        plain = await client.chat.completions.create(
            model="openclaw", messages=[{"role": "user", "content": "async hello"}])
        stream = await client.chat.completions.create(
            model="openclaw", messages=[{"role": "user", "content": "count to 9"}], stream=True)
        deltas = [c.choices[0].delta.content async for c in stream
                  if c.choices and c.choices[0].delta.content]
        r_stream = await client.responses.create(model="openclaw", input="async responses",
                                                 stream=True)
        r_deltas = [e.delta async for e in r_stream if e.type == "response.output_text.delta"]
        models = [m.id async for m in client.models.list()]
    return {"plain": plain.choices[0].message.content, "deltas": deltas,
            "responses": "".join(r_deltas), "models": models}


# -- the tests -----------------------------------------------------------------------------------


class OfflineModel(SDKCase):
    async def test_chat_completions_plain(self) -> None:
        out = await self.in_thread(chat_plain, self.base_url, "hello SDK")
        self.assertEqual(out["content"], "[offline model] You said: hello SDK")
        self.assertTrue(out["id"].startswith("chatcmpl_"))
        self.assertEqual((out["object"], out["model"], out["role"], out["finish"]),
                         ("chat.completion", "openclaw", "assistant", "stop"))
        self.assertEqual(set(out["usage"]) >= {"prompt_tokens", "completion_tokens",
                                               "total_tokens"}, True)
        self.assert_idle()

    async def test_chat_completions_stream(self) -> None:
        out = await self.in_thread(chat_stream, self.base_url, "count to 12")
        self.assertEqual(len(out["ids"]), 1)
        self.assertEqual(out["roles"], ["assistant"])
        self.assertEqual("".join(out["deltas"]), "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12.")
        self.assertGreater(len(out["deltas"]), 2)
        self.assertEqual(out["finish"], ["stop"])
        self.assertEqual(len(out["usage"]), 1)
        self.assert_idle()

    async def test_models(self) -> None:
        out = await self.in_thread(models_list, self.base_url)
        self.assertEqual(out["ids"], ["openclaw", "openclaw/default", "openclaw/main"])
        self.assertEqual((out["one"], out["owned_by"]), ("openclaw/default", "openclaw"))

    async def test_responses_plain_and_continued(self) -> None:
        first = await self.in_thread(responses_plain, self.base_url, "first")
        self.assertEqual((first["status"], first["text"]),
                         ("completed", "[offline model] You said: first"))
        self.assertTrue(first["id"].startswith("resp_"))
        second = await self.in_thread(responses_plain, self.base_url, "second", first["id"])
        self.assertEqual(second["text"], "[offline model] You said: second")
        (key,) = stored_keys(self.app)
        self.assertTrue(key.startswith("agent:main:openresponses:"))

    async def test_responses_stream(self) -> None:
        out = await self.in_thread(responses_stream, self.base_url, "count to 8")
        self.assertEqual(out["types"][:4], ["response.created", "response.in_progress",
                                            "response.output_item.added",
                                            "response.content_part.added"])
        self.assertEqual(out["types"][-1], "response.completed")
        self.assertEqual("".join(out["deltas"]), "1, 2, 3, 4, 5, 6, 7, 8.")
        self.assertEqual(out["final"], "1, 2, 3, 4, 5, 6, 7, 8.")

    async def test_async_client(self) -> None:
        out = await self.in_asyncio(lambda: async_calls(self.base_url))
        self.assertEqual(out["plain"], "[offline model] You said: async hello")
        self.assertEqual("".join(out["deltas"]), "1, 2, 3, 4, 5, 6, 7, 8, 9.")
        self.assertEqual(out["responses"], "[offline model] You said: async responses")
        self.assertIn("openclaw/main", out["models"])
        self.assert_idle()

    async def test_sdk_errors(self) -> None:
        out = await self.in_thread(errors, self.base_url)
        self.assertEqual(out["bad_model"][0], 400)
        self.assertEqual(out["bad_model"][1]["message"],
                         "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`.")
        self.assertEqual(out["no_messages"][0], 400)
        self.assertEqual(out["auth"][0], 401)

    async def test_disconnect_mid_stream_aborts_the_run(self) -> None:
        held: list[Any] = []
        offline = self.app.runtime.registry.providers["offline"]

        class Held:
            id, api = offline.id, offline.api

            def stream(self, request: Any, on_text: Any, on_tool: Any) -> Any:
                d: defer.Deferred[Any] = defer.Deferred(lambda _: held.append("cancelled"))
                reactor.callLater(0, on_text, "partial ")
                held.append(d)
                return d

        self.app.runtime.registry.providers["offline"] = Held()
        seen = await self.in_thread(stream_then_hang_up, self.base_url, "hi", 2)
        run = self.app.runtime.runs[seen[0]]
        outcome = await self.ended(run.run_id)
        self.assertEqual((outcome.status, outcome.stop_reason), ("aborted", "disconnect"))
        self.assertIn("cancelled", held)
        self.assert_idle()
        row = stored_row(self.app, run.session_key)
        self.assertEqual(row.status, "aborted")
        entries = self.successResultOf(self.app.sessions.history(row.key, 10))
        self.assertEqual([e.role for e in entries], ["user", "assistant"])
        self.assertEqual((entries[-1].body["aborted"], entries[-1].body["abortReason"]),
                         (True, "disconnect"))
        self.assertEqual(entries[-1].body["content"][0]["text"], "partial ")


class UpstreamProvider(SDKCase):
    """The configured provider is the fake OpenAI server: the gateway streams its deltas."""

    upstream = True

    async def test_chat_plain_and_stream(self) -> None:
        assert self.fake is not None
        self.fake.behave(text="Hello from the fake model.")
        out = await self.in_thread(chat_plain, self.base_url, "hi upstream")
        self.assertEqual(out["content"], "Hello from the fake model.")
        sent = self.fake.requests[-1].body
        self.assertEqual(sent["model"], "gpt-4o-mini")
        self.assertEqual(sent["messages"][0], {"role": "system", "content": "Be brief."})
        self.assertEqual(sent["messages"][-1], {"role": "user", "content": "hi upstream"})
        self.assertEqual(self.fake.requests[-1].headers["authorization"],
                         f"Bearer {UPSTREAM_KEY}")
        self.fake.behave(chunks=["one ", "two ", "three"])
        out = await self.in_thread(chat_stream, self.base_url, "stream it")
        self.assertEqual(out["deltas"], ["one ", "two ", "three"])
        self.assertEqual(out["finish"], ["stop"])
        self.assertEqual(out["usage"][0]["completion_tokens"], 3)

    async def test_async_and_responses(self) -> None:
        assert self.fake is not None
        self.fake.behave(chunks=["fake ", "reply"])
        out = await self.in_asyncio(lambda: async_calls(self.base_url))
        self.assertEqual(out["plain"], "fake reply")
        self.assertEqual(out["deltas"], ["fake ", "reply"])
        self.assertEqual(out["responses"], "fake reply")
        r = await self.in_thread(responses_stream, self.base_url, "x")
        self.assertEqual(r["deltas"], ["fake ", "reply"])
        plain = await self.in_thread(responses_plain, self.base_url, "y")
        self.assertEqual((plain["status"], plain["text"]), ("completed", "fake reply"))

    async def test_upstream_auth_failure_reaches_the_sdk(self) -> None:
        assert self.fake is not None
        self.fake.enqueue(status=401)
        with self.assertRaises(openai.AuthenticationError):
            await self.in_thread(chat_plain, self.base_url, "x")
        self.fake.enqueue(status=401)
        with self.assertRaises(openai.APIError):
            await self.in_thread(chat_stream, self.base_url, "x")

    async def test_disconnect_cancels_the_upstream_request(self) -> None:
        assert self.fake is not None
        self.fake.behave(chunks=["a ", "b ", "c ", "d"], stall_after=3)
        seen = await self.in_thread(stream_then_hang_up, self.base_url, "hi", 2)
        outcome = await self.ended(seen[0])
        self.assertEqual(outcome.status, "aborted")
        completed = await within(self.fake.requests[-1].finished, "upstream request to end")
        self.assertFalse(completed)  # the gateway dropped the upstream request mid-body
        self.assert_idle()
