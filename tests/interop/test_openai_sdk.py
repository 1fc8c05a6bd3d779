"""Real-client tier: the official ``openai`` Python SDK against our gateway on a loopback port
(the case and its harness: ``tests/support/openai_sdk.py``)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor

from tests.support.helpers import stored_keys, stored_row
from tests.support.loopback import within
from tests.support.openai_sdk import TOKEN, UPSTREAM_KEY, SDKCase, openai, sync_client

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
