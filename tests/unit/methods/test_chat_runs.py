"""chat.send runs end to end (reference §6.2, §7.3, §9): commit-before-ack, event order and
shapes (vectors: traces/chat-stream-success.jsonl, chat-stream.jsonl), chat.history, dedupe,
abort, queueing, provider errors, timeouts, scopes and tool-event delivery."""

from __future__ import annotations

import sqlite3
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import ProviderError
from openclaw_tw.agent.runtime import HISTORY_TURNS
from openclaw_tw.methods.chat import MAX_MESSAGE_CHARS
from tests.support.agent import (
    MAIN,
    READ,
    RW,
    HeldAppends,
    by_label,
    drain,
    history,
    install_fake,
    label,
    labels,
    run_events,
    send,
    send_now,
    spy_frames,
    text_of,
    transcript,
)
from tests.support.helpers import call, hello, make_app, ok, stored_row


class ChatRuns(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.addCleanup(self.app.runtime.stopService)  # settle runs left open
        self.c = hello(self.gw, scopes=RW)

    def test_ack_only_after_user_entry_committed(self) -> None:
        held = HeldAppends(self, self.app, {"user"})
        frames = spy_frames(self, self.c, lambda: transcript(self.app))
        rid = send(self.c, "main", "hi", "k1")
        self.assertIsNone(self.c.response(rid))
        self.assertEqual(self.c.pop(), [])
        self.assertEqual(transcript(self.app), [])
        held.release()
        [(ack, rows_at_ack)] = [(f, rows) for f, rows in frames if f.get("type") == "res"]
        self.assertEqual(ack["payload"], {"runId": "k1", "status": "started"})
        self.assertEqual(rows_at_ack, [("user", "k1:user")])

    def test_ack_precedes_run_events_with_a_threaded_database(self) -> None:
        db, clock = self.app.sessions_db, self.clock

        def run_later(fn: Any) -> Deferred[Any]:  # commit now, report on a later turn
            d: Deferred[Any] = Deferred()
            clock.callLater(0, d.callback, db.run_now(fn))
            return d

        self.patch(db, "run", run_later)
        rid = send(self.c, "main", "hi", "k1")
        drain(self.clock)
        frames = [f for f in self.c.pop() if f.get("type") == "res" or
                  f.get("payload", {}).get("runId") == "k1"]
        self.assertEqual(frames[0]["id"], rid)
        self.assertEqual(label(frames[-1]), "chat:final")

    def test_successful_turn_event_order_and_shapes(self) -> None:
        send(self.c, "main", "count to 7", "k1")
        drain(self.clock)
        self.check_seqs(run_events(self.c, "k1"))
        seen = labels(self.c, "k1")
        for i, name in enumerate(seen):  # every chat status is paired with an agent run_status
            if name.startswith("chat:status:"):
                self.assertEqual(seen[i + 1], "agent:run_status:" + name.split(":")[2])
        seen = [s for s in seen if not s.startswith("agent:run_status")]
        self.assertEqual(seen[:4], ["chat:status:preparing_context", "agent:lifecycle:start",
                                    "chat:status:starting_model", "agent:lifecycle:model"])
        middle = seen[4:-4]
        self.assertEqual(seen[-4:], ["agent:usage", "agent:lifecycle:finishing",
                                     "agent:lifecycle:end", "chat:final"])
        self.assertGreaterEqual(len(middle), 4)
        self.assertEqual(middle, ["agent:assistant", "chat:delta"] * (len(middle) // 2))

        events = by_label(self.c, "k1")
        final_text = "1, 2, 3, 4, 5, 6, 7."
        model = events["agent:lifecycle:model"]
        self.assertEqual(model["data"], {"phase": "model", "provider": "offline",
                                         "model": "offline-echo"})
        row = stored_row(self.app, MAIN)
        assert row is not None
        self.assertEqual(model["sessionId"], row.session_id)
        cumulative = ""
        for f in run_events(self.c, "k1"):
            p = f["payload"]
            self.assertEqual((p["sessionKey"], p["agentId"]), (MAIN, "main"))
            if label(f) == "agent:assistant":
                cumulative += p["data"]["delta"]
                self.assertEqual(p["data"]["text"], cumulative)
            elif label(f) == "chat:delta":
                self.assertEqual(text_of(p["message"]), cumulative)
                self.assertTrue(cumulative.endswith(p["deltaText"]))
        self.assertEqual(cumulative, final_text)
        end = events["agent:lifecycle:end"]["data"]
        self.assertEqual(end["terminalReply"], {"disposition": "visible", "text": final_text})
        self.assertEqual((end["aborted"], end["stopReason"], end["executionSettled"]),
                         (False, "stop", True))
        receipt = end["terminalReceipt"]
        self.assertEqual((receipt["runId"], receipt["sessionId"], receipt["turnId"]),
                         ("k1", row.session_id, "k1"))
        self.assertEqual(receipt["requested"], {"provider": "offline", "model": "offline-echo"})
        final = events["chat:final"]
        self.assertEqual(final["stopReason"], "stop")
        self.assertEqual(final["message"]["role"], "assistant")
        self.assertEqual(final["message"]["content"], [{"type": "text", "text": final_text}])

    def check_seqs(self, frames: list[dict[str, Any]]) -> None:
        """Socket seq is gap-free; the per-run seq increases across the agent streams."""
        outer = [f["seq"] for f in frames]
        self.assertEqual(outer, list(range(outer[0], outer[0] + len(outer))))
        inner = [f["payload"]["seq"] for f in frames]
        self.assertEqual(inner, sorted(inner))
        agent = [f["payload"]["seq"] for f in frames if f["event"] == "agent"
                 and f["payload"]["stream"] != "run_status"]
        self.assertEqual(len(set(agent)), len(agent))
        for prev, f in zip(frames, frames[1:], strict=False):
            if label(f) == "chat:delta":  # a chat delta carries its assistant event's seq
                self.assertEqual(f["payload"]["seq"], prev["payload"]["seq"])

    def test_assistant_committed_before_final(self) -> None:
        held = HeldAppends(self, self.app, {"assistant"})
        frames = spy_frames(self, self.c, lambda: transcript(self.app))
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        seen = labels(self.c, "k1")
        self.assertIn("chat:delta", seen)
        self.assertNotIn("chat:final", seen)
        self.assertNotIn("agent:lifecycle:end", seen)
        self.assertEqual([r for r, _ in transcript(self.app)], ["user"])
        held.release()
        finals = [rows for f, rows in frames if f.get("event") == "chat"
                  and f["payload"]["state"] == "final"]
        self.assertEqual(len(finals), 1)
        self.assertEqual([r for r, _ in finals[0]], ["user", "assistant"])

    def test_history_shape(self) -> None:
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        h = history(self.c, "main")
        row = stored_row(self.app, MAIN)
        assert row is not None
        self.assertEqual((h["sessionKey"], h["sessionId"], h["hasMore"]),
                         (MAIN, row.session_id, False))
        user, assistant = h["messages"]
        self.assertEqual((user["role"], user["content"], user["idempotencyKey"]),
                         ("user", "hi", "k1:user"))
        self.assertIsInstance(user["timestamp"], int)
        self.assertLessEqual({"id", "seq"}, set(user["__openclaw"]))
        self.assertEqual(assistant["role"], "assistant")
        self.assertEqual(assistant["content"],
                         [{"type": "text", "text": "[offline model] You said: hi"}])
        self.assertEqual((assistant["provider"], assistant["model"], assistant["stopReason"]),
                         ("offline", "offline-echo", "stop"))
        self.assertLessEqual({"input", "output", "totalTokens"}, set(assistant["usage"]))
        meta = assistant["__openclaw"]
        self.assertEqual(meta["runId"], "k1")
        self.assertGreater(meta["seq"], user["__openclaw"]["seq"])
        self.assertNotEqual(meta["id"], user["__openclaw"]["id"])

    def test_history_paging_and_max_chars(self) -> None:
        for i, word in enumerate(["one", "two", "three"]):
            send(self.c, "main", f"say {word}", f"k{i}")
            drain(self.clock)
        pages: list[list[str]] = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            h = history(self.c, "main", **params)
            pages.insert(0, [text_of(m) for m in h["messages"]])
            if not h["hasMore"]:
                self.assertNotIn("cursor", h)
                break
            params["cursor"] = h["cursor"]
        flat = [t for page in pages for t in page]
        self.assertEqual(len(pages), 3)
        self.assertEqual(flat[::2], ["say one", "say two", "say three"])
        self.assertEqual(flat[1::2], [f"[offline model] You said: say {w}"
                                      for w in ("one", "two", "three")])
        short = history(self.c, "main", maxChars=5)["messages"]
        self.assertEqual([text_of(m) for m in short[:2]], ["say o", "[offl"])
        self.assertEqual(call(self.c, "chat.history", {"sessionKey": "main", "cursor": "x"})
                         ["error"]["code"], "INVALID_REQUEST")

    def test_duplicate_while_running_is_in_flight(self) -> None:
        send(self.c, "main", "count to 30", "k1")
        dup = send_now(self.c, "main", "count to 30", "k1")
        self.assertEqual((dup["ok"], dup["payload"]), (True, {"runId": "k1",
                                                              "status": "in_flight"}))
        drain(self.clock)
        self.assertEqual(labels(self.c, "k1").count("agent:lifecycle:start"), 1)
        self.assertEqual(transcript(self.app), [("user", "k1:user"), ("assistant", None)])

    def test_duplicate_after_completion_replays(self) -> None:
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        self.c.pop()
        again = send_now(self.c, "main", "hi", "k1")
        self.assertTrue(again["ok"])
        self.assertEqual((again["payload"]["runId"], again["payload"]["status"]), ("k1", "ok"))
        drain(self.clock)
        self.assertEqual(run_events(self.c, "k1"), [])
        self.assertEqual(len(transcript(self.app)), 2)

    def test_reused_key_after_the_dedupe_window_is_not_an_internal_error(self) -> None:
        """§9: dedupe entries expire after 5 minutes (and do not survive a restart); a key
        sent again later must not trip over the transcript's unique idempotency index."""
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        for _ in range(31):  # past the 300 s TTL (the idle client is dropped on the way)
            self.clock.advance(10)
        late = hello(self.gw, scopes=RW)
        res = send_now(late, "main", "hi", "k1")
        self.assertEqual(self.flushLoggedErrors(sqlite3.IntegrityError), [])
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["payload"]["runId"], "k1")
        self.assertIn(res["payload"]["status"], ("ok", "started"))


    def test_duplicate_after_failure_replays_the_error(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        fake.calls[0].fail(ProviderError("upstream exploded"))
        again = send_now(self.c, "main", "hi", "k1")
        self.assertFalse(again["ok"])
        self.assertEqual((again["payload"]["runId"], again["payload"]["status"]),
                         ("k1", "error"))
        self.assertEqual(again["error"]["code"], "UNAVAILABLE")
        self.assertEqual(again["error"]["message"], again["payload"]["summary"])
        self.assertIn("upstream exploded", again["error"]["message"])
        self.assertEqual(len(fake.calls), 1)

    def test_abort_mid_stream(self) -> None:
        send(self.c, "main", "count to 60", "k1")
        drain(self.clock, 3)
        partial = [f["payload"]["data"]["text"] for f in run_events(self.c, "k1", "agent")
                   if f["payload"]["stream"] == "assistant"][-1]
        res = call(self.c, "chat.abort", {"sessionKey": "main", "runId": "k1"})
        self.assertEqual(res["payload"], {"ok": True, "aborted": True, "runIds": ["k1"]})
        events = by_label(self.c, "k1")
        aborted = events["chat:aborted"]
        self.assertEqual(aborted["stopReason"], "rpc")
        self.assertEqual(text_of(aborted["message"]), partial)
        end = events["agent:lifecycle:end"]["data"]
        self.assertEqual((end["status"], end["aborted"]), ("cancelled", True))
        self.assertNotIn("chat:final", events)
        count = len(run_events(self.c, "k1"))
        drain(self.clock)
        self.assertEqual(len(run_events(self.c, "k1")), count)  # the stream really stopped
        last = history(self.c)["messages"][-1]
        self.assertEqual((last["role"], text_of(last), last["stopReason"]),
                         ("assistant", partial, "aborted"))
        nothing = ok(self.c, "chat.abort", {"sessionKey": "main"})
        self.assertEqual(nothing, {"ok": True, "aborted": False, "runIds": []})

    def test_second_send_is_queued_as_followup(self) -> None:
        send(self.c, "main", "count to 9", "k1")
        res = send_now(self.c, "main", "hi", "k2")
        self.assertEqual(res["payload"], {"runId": "k2", "status": "started"})
        self.assertEqual(run_events(self.c, "k2"), [])
        drain(self.clock)
        self.c.flush()
        order = [(f["payload"]["runId"], label(f)) for f in self.c.events()
                 if f["event"] in ("chat", "agent")]
        self.assertLess(order.index(("k1", "chat:final")),
                        order.index(("k2", "agent:lifecycle:start")))
        final = run_events(self.c, "k2", "chat")[-1]["payload"]
        self.assertEqual(text_of(final["message"]), "[offline model] You said: hi")

    def test_followup_run_sees_its_own_message_last(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "one", "k1")
        send(self.c, "main", "two", "k2")
        send(self.c, "main", "three", "k3")  # queued behind k2: not part of k2's context
        fake.calls[0].finish("reply one")
        self.assertEqual(len(fake.calls), 2)
        self.assertEqual(fake.calls[1].request.messages,
                         [{"role": "user", "content": "one"},
                          {"role": "assistant", "content": "reply one"},
                          {"role": "user", "content": "two"}])

    def test_a_long_queue_still_answers_each_turn_its_own_message(self) -> None:
        # found by the Matrix flood test: with more turns queued than the history window,
        # the window held only queued entries, and later turns answered an empty message
        for i in range(HISTORY_TURNS + 20):
            send(self.c, "main", f"m{i}", f"k{i}")
        drain(self.clock)
        self.c.flush()
        for i in range(HISTORY_TURNS + 20):
            final = run_events(self.c, f"k{i}", "chat")[-1]["payload"]
            self.assertEqual(text_of(final["message"]), f"[offline model] You said: m{i}")

    def test_queue_mode_interrupt_aborts_the_active_run(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "one", "k1")
        fake.calls[0].say("partial")
        rid = send(self.c, "main", "two", "k2", queueMode="interrupt")
        self.assertTrue(fake.calls[0].cancelled)
        self.assertIn("chat:aborted", labels(self.c, "k1"))
        self.assertEqual(self.c.response(rid)["payload"], {"runId": "k2", "status": "started"})
        self.assertNotIn("chat:aborted", labels(self.c, "k2"))
        self.assertEqual(len(fake.calls), 2)
        fake.calls[1].finish("reply two")
        self.assertIn("chat:final", labels(self.c, "k2"))


    def test_provider_error(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        fake.calls[0].fail(ProviderError("upstream exploded", "rate_limit", http_status=429))
        seen = labels(self.c, "k1")
        self.assertLess(seen.index("agent:lifecycle:error"), seen.index("chat:error"))
        self.assertNotIn("chat:final", seen)
        events = by_label(self.c, "k1")
        self.assertIn("upstream exploded", events["agent:lifecycle:error"]["data"]["error"])
        err = events["chat:error"]
        self.assertIn("upstream exploded", err["errorMessage"])
        self.assertEqual(err["errorKind"], "rate_limit")
        self.assertEqual((err["errorDetail"]["provider"], err["errorDetail"]["httpStatus"]),
                         ("fake", 429))
        entry = history(self.c)["messages"][-1]
        self.assertEqual((entry["role"], entry["customType"], entry["display"]),
                         ("custom", "run-failed-before-reply", True))
        self.assertIn("upstream exploded", text_of(entry))
        waited = ok(self.c, "agent.wait", {"runId": "k1", "timeoutMs": 10})
        self.assertEqual(waited["status"], "error")

    def test_run_timeout(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1", timeoutMs=1000)
        self.clock.advance(0.999)
        self.assertNotIn("chat:error", labels(self.c, "k1"))
        self.clock.advance(0.002)
        self.assertTrue(fake.calls[0].cancelled)
        err = run_events(self.c, "k1", "chat")[-1]["payload"]
        self.assertEqual((err["state"], err["errorKind"]), ("error", "timeout"))
        self.assertEqual(history(self.c)["messages"][-1]["customType"],
                         "run-failed-before-reply")

    def test_missing_idempotency_key(self) -> None:
        res = call(self.c, "chat.send", {"sessionKey": "main", "message": "no idem key"})
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST", "message":
                                        "invalid chat.send params: must have required property"
                                        " 'idempotencyKey'"})

    def test_read_only_scope_cannot_send(self) -> None:
        reader = hello(self.gw, scopes=READ)
        res = send_now(reader, "main", "hi", "k1")
        self.assertEqual(res["error"]["message"], "missing scope: operator.write")
        self.assertIsNone(stored_row(self.app, MAIN))

    def test_oversized_message_rejected_other_sessions_unaffected(self) -> None:
        send(self.c, "agent:main:busy", "count to 9", "k1")
        res = call(self.c, "chat.send", {"sessionKey": "agent:main:big", "idempotencyKey": "k2",
                                         "message": "x" * (MAX_MESSAGE_CHARS + 1)})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        self.assertIsNone(stored_row(self.app, "agent:main:big"))
        drain(self.clock)
        self.assertEqual(labels(self.c, "k1")[-1], "chat:final")
        self.assertEqual(labels(self.c, "k2"), [])
        retry = send_now(self.c, "agent:main:big", "hi", "k2")
        self.assertEqual(retry["payload"]["status"], "started")

    def test_tool_events_only_to_the_starting_socket_with_the_cap(self) -> None:
        fake = install_fake(self.app)
        starter = hello(self.gw, scopes=RW, caps=["tool-events"])
        other = hello(self.gw, scopes=RW, caps=["tool-events"])
        send(starter, "main", "use a tool", "k1")
        send(self.c, "agent:main:nocap", "use a tool", "k2")  # a starter without the cap
        for i in range(2):
            fake.calls[i].on_tool({"phase": "start", "name": "exec", "toolCallId": f"t{i}"})
            fake.calls[i].finish("done")
        tools = [f["payload"] for f in run_events(starter, "k1", "agent")
                 if f["payload"]["stream"] == "tool"]
        self.assertEqual([(t["data"]["toolCallId"], t["sessionKey"]) for t in tools],
                         [("t0", MAIN)])
        for watcher, run_id in ((other, "k1"), (self.c, "k1"), (self.c, "k2"), (starter, "k2")):
            streams = [f["payload"]["stream"] for f in run_events(watcher, run_id, "agent")]
            self.assertIn("assistant", streams)
            self.assertNotIn("tool", streams)


class UnfinishedRunsBounded(SynchronousTestCase):
    """Accepted runs wait in memory with their messages until they end: a session keeps at
    most MAX_UNFINISHED_PER_SESSION, the gateway MAX_UNFINISHED; past that a turn is refused
    before anything is recorded (UNAVAILABLE, retryable) and its key stays free to retry."""

    def setUp(self) -> None:
        from openclaw_tw.agent import runtime

        self.patch(runtime, "MAX_UNFINISHED_PER_SESSION", 2)
        self.patch(runtime, "MAX_UNFINISHED", 3)
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)
        self.fake = install_fake(self.app)

    def test_per_session_then_retry_with_the_same_key(self) -> None:
        for i in range(2):
            self.assertTrue(send_now(self.c, "main", f"m{i}", f"k{i}")["ok"])
        refused = send_now(self.c, "main", "m2", "k2")
        self.assertEqual((refused["ok"], refused["error"]["code"], refused["error"]["retryable"]),
                         (False, "UNAVAILABLE", True))
        self.assertIn("unfinished runs", refused["error"]["message"])
        self.assertNotIn("k2:user", [k for _, k in transcript(self.app)])
        self.fake.calls[0].finish("done")
        self.assertEqual(send_now(self.c, "main", "m2", "k2")["payload"]["status"], "started")

    def test_over_all_sessions(self) -> None:
        for i in range(3):
            self.assertTrue(send_now(self.c, f"s{i}", "hi", f"k{i}")["ok"])
        refused = send_now(self.c, "s9", "hi", "k9")
        self.assertEqual(refused["error"]["code"], "UNAVAILABLE")
        self.fake.calls[1].finish("done")
        self.assertTrue(send_now(self.c, "s9", "hi", "k9")["ok"])
        self.assertEqual(sorted(self.app.runtime._unfinished), ["agent:main:s0", "agent:main:s2",
                                                                "agent:main:s9"])
