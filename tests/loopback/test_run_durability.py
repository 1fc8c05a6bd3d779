"""Agent runs survive the gateway process dying: kill -9 mid-burst, and SIGTERM mid-run.

Real processes, real sockets: the gateway runs as ``twistd -n openclaw`` in a child process
on a free loopback port, and the tests talk to it with Autobahn WebSocket clients over TCP.

1. kill -9 mid-burst: 60 concurrent ``chat.send`` requests (50 sessions with one turn each,
   plus 2 sessions with 5 queued turns each) stream the offline model's ``count to 100``
   reply (34 chunks, 5 ms apart).  The moment enough ``final`` events have arrived while
   other runs are still streaming, the client side sends SIGKILL.  Then the SQLite file must
   pass ``PRAGMA integrity_check``, and a restarted gateway on the same state dir must show,
   through ``chat.history``: every turn whose ``final`` arrived has its full reply; every
   acknowledged turn has its user entry; every acknowledged turn whose ``final`` did not
   arrive has a complete reply or a ``run-interrupted`` marker of its own (never silently
   missing).
2. SIGTERM mid-run: the client sees the run's ``chat`` ``aborted`` event (stopReason
   ``shutdown``), then ``shutdown``, then a close with code 1012; the process exits
   promptly; after a restart the transcript holds the partial reply (marked aborted) and one
   ``run-interrupted`` marker, and ``sessions.list`` shows the session ``interrupted``.

The child-process harness (no sleeps) is ``tests/support/gateway_process.py``.
"""

from __future__ import annotations

import signal
import sqlite3
import uuid
from typing import Any

from twisted.internet import defer, reactor
from twisted.python import log
from twisted.trial import unittest

from openclaw_tw.agent.offline import reply_for
from tests.support.gateway_process import (
    EXIT_TIMEOUT_S,
    WAIT_S,
    GatewayProcess,
    GatewayProcessCase,
)
from tests.support.loopback import within

LONG = "count to 100"
FULL_REPLY = reply_for(LONG)  # "1, 2, ..., 100." -- 34 chunks of 3 words, 5 ms apart
SIGTERM_EXIT_BOUND_S = 5.0  # "exits within a few seconds" (the runtime's grace is 1.5 s)

DISTINCT_KEYS = 50
SHARED_KEYS = 2
TURNS_PER_SHARED_KEY = 5  # queued one after another on their session: ~1 s of streaming
# Every operator client receives every run's events (~4,000 frames for this burst), so each
# extra client makes the test process lag further behind the gateway: with 3 clients the
# kill landed when the gateway had already finished ~52 of 60 runs; with 1, ~20-45 runs are
# still streaming or queued when it dies.
CLIENTS = 1
KILL_AT_FINALS = 10  # kill once this many finals are in and some run is still streaming
BURST_TIMEOUT_S = 30.0


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def run_id_of(message: dict[str, Any]) -> str | None:
    meta = message.get("__openclaw") or {}
    return meta.get("runId")


def seq_of(message: dict[str, Any]) -> int:
    return int((message.get("__openclaw") or {}).get("seq", 0))


def is_marker(message: dict[str, Any]) -> bool:
    return message.get("role") == "custom" and message.get("customType") == "run-interrupted"


# -- the burst's bookkeeping ------------------------------------------------------------------


class Turn:
    def __init__(self, run_id: str, key: str, message: str, shared: bool) -> None:
        self.run_id, self.key, self.message, self.shared = run_id, key, message, shared
        self.req_id = f"chat.send:{run_id}"
        self.ack: dict[str, Any] | None = None  # the response frame, ok or not
        self.deltas = 0
        self.final: dict[str, Any] | None = None
        self.other_terminal: str | None = None  # aborted / error, should not happen here

    @property
    def acked(self) -> bool:
        return bool(self.ack and self.ack.get("ok"))

    @property
    def streaming(self) -> bool:
        return self.deltas > 0 and self.final is None and self.other_terminal is None

    def describe(self) -> str:
        return (f"{self.run_id} on {self.key} (acked={self.acked}, deltas={self.deltas}, "
                f"final={self.final is not None})")


class Burst:
    """Tracks every run from the frames of all clients; SIGKILLs the gateway at the moment
    ``KILL_AT_FINALS`` finals are in and at least one run is still streaming."""

    def __init__(self, gateway: GatewayProcess, turns: list[Turn]) -> None:
        self.gateway = gateway
        self.turns = {t.run_id: t for t in turns}
        self.by_req = {t.req_id: t for t in turns}
        self.killed: defer.Deferred[dict[str, int]] = defer.Deferred()
        self.frames = 0

    def counts(self) -> dict[str, int]:
        turns = self.turns.values()
        return {"sent": len(self.turns), "acked": sum(t.acked for t in turns),
                "finals": sum(t.final is not None for t in turns),
                "streaming": sum(t.streaming for t in turns),
                "acked_not_started": sum(t.acked and t.deltas == 0 for t in turns),
                "frames": self.frames}

    def on_frame(self, frame: dict[str, Any]) -> None:
        # Frames that arrive after the kill were still sent before the process died, so
        # they count: everything they report was committed first.
        self.frames += 1
        if frame.get("type") == "res":
            turn = self.by_req.get(frame.get("id", ""))
            if turn is not None:
                turn.ack = frame
        elif frame.get("type") == "event" and frame.get("event") == "chat":
            payload = frame.get("payload") or {}
            turn = self.turns.get(payload.get("runId", ""))
            if turn is None:
                return
            state = payload.get("state")
            if state == "delta":
                turn.deltas += 1
            elif state == "final":
                turn.final = turn.final or payload
            elif state in ("aborted", "error"):
                turn.other_terminal = state
        if self.killed.called:
            return
        counts = self.counts()
        if counts["finals"] >= KILL_AT_FINALS and counts["streaming"] > 0:
            self.gateway.signal("KILL")
            self.killed.callback(counts)


# -- the tests -------------------------------------------------------------------------------


class RunDurability(GatewayProcessCase):
    timeout = 90

    def integrity_check(self) -> str:
        path = self.state / "agents" / "main" / "agent" / "openclaw_tw-sessions.sqlite"
        self.assertTrue(path.exists(), f"no session database at {path}")
        conn = sqlite3.connect(str(path))
        try:
            return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        finally:
            conn.close()

    # -- 1. kill -9 in the middle of a burst ----------------------------------------------------

    async def test_kill_9_mid_burst_loses_no_acknowledged_turn(self) -> None:
        gateway, first = await self.start_gateway()
        clients = [first] + [await self.open_client(gateway) for _ in range(CLIENTS - 1)]

        turns = [Turn(str(uuid.uuid4()), f"burst-{i:02d}", LONG, False)
                 for i in range(DISTINCT_KEYS)]
        turns += [Turn(str(uuid.uuid4()), f"burst-shared-{k}", LONG, True)
                  for _ in range(TURNS_PER_SHARED_KEY) for k in range(SHARED_KEYS)]
        burst = Burst(gateway, turns)
        for client in clients:
            client.on_frame = burst.on_frame
        t0 = reactor.seconds()
        for i, turn in enumerate(turns):
            clients[i % len(clients)].send_json({
                "type": "req", "id": turn.req_id, "method": "chat.send",
                "params": {"sessionKey": turn.key, "message": turn.message,
                           "idempotencyKey": turn.run_id}})

        try:
            at_kill = await within(burst.killed, "a moment with >= "
                                   f"{KILL_AT_FINALS} finals and a run still streaming",
                                   BURST_TIMEOUT_S)
        except unittest.FailTest as e:
            raise unittest.FailTest(f"{e}; counts {burst.counts()}") from None
        kill_s = reactor.seconds() - t0
        await gateway.ended(EXIT_TIMEOUT_S, "gateway exit after SIGKILL")
        for client in clients:
            await within(client.lost, "client socket gone after the kill", WAIT_S)
        after = burst.counts()  # including frames that were already on their way
        log.msg(f"SIGKILL {kill_s:.3f}s after the burst started; at the kill {at_kill}; "
                f"once the sockets were gone {after}")
        self.assertEqual(getattr(gateway.exit.value, "signal", None), signal.SIGKILL,
                         f"the gateway did not die of SIGKILL: {gateway.exit.value}")

        # The file is whole before anything reopens it.
        self.assertEqual(self.integrity_check(), "ok")

        _restarted, client = await self.start_gateway()  # health answered inside
        problems: list[str] = []
        histories: dict[str, list[dict[str, Any]]] = {}
        for key in sorted({t.key for t in turns}):
            histories[key] = await self.history(client, key)
        sessions = await self.sessions_by_key(client)
        still_running = [k for k, row in sessions.items() if row.get("status") == "running"]
        if still_running:
            problems.append(f"sessions still 'running' after the restart: {still_running}")
        for key, msgs in histories.items():
            row = sessions.get(f"agent:main:{key}")
            if row is None:
                if msgs:
                    problems.append(f"session {key} has a transcript but is not listed")
                continue
            # a stopped run's row reads "failed" with abortedLastRun (the real rows have no
            # "interrupted" status: its session store reads its own "interrupted" as "failed")
            if msgs and is_marker(msgs[-1]) and (row.get("status"), row.get(
                    "abortedLastRun")) != ("failed", True):
                problems.append(f"session {key} ends with a run-interrupted marker but its "
                                f"status is {row.get('status')!r}")

        outcome = {"final+reply": 0, "complete reply without final": 0,
                   "marked interrupted": 0, "not acked": 0}
        for turn in turns:
            msgs = histories[turn.key]
            mine = [m for m in msgs if run_id_of(m) == turn.run_id]
            users = [m for m in mine if m.get("role") == "user"]
            replies = [m for m in mine if m.get("role") == "assistant"]
            complete = [m for m in replies if text_of(m) == FULL_REPLY and not m.get("aborted")]
            markers = [m for m in mine if is_marker(m)]
            if len(users) > 1 or len(replies) > 1 or len(markers) > 1:
                problems.append(f"duplicate entries for {turn.describe()}: {mine}")
            if replies and not users:
                problems.append(f"a reply without its user entry: {turn.describe()}")
            if turn.other_terminal is not None:
                problems.append(f"unexpected {turn.other_terminal} event: {turn.describe()}")
            if turn.final is not None:
                if text_of(turn.final.get("message") or {}) != FULL_REPLY:
                    problems.append(f"final event without the full reply: {turn.describe()}")
                if not complete:
                    problems.append(f"final received but reply not in history: "
                                    f"{turn.describe()}; history entries {mine}")
            if not turn.acked:
                outcome["not acked"] += 1
                continue
            if not users or text_of(users[0]) != turn.message:
                problems.append(f"acked turn lost its user entry: {turn.describe()}")
            if turn.final is not None:
                outcome["final+reply"] += 1
            elif complete:
                outcome["complete reply without final"] += 1
            elif markers:
                outcome["marked interrupted"] += 1
                if users and seq_of(markers[0]) < seq_of(users[0]):
                    problems.append(f"interrupted marker before the user entry: "
                                    f"{turn.describe()}")
            else:
                later = [m for m in msgs if is_marker(m) and users and
                         seq_of(m) > seq_of(users[0])]
                row = sessions.get(f"agent:main:{turn.key}", {})
                problems.append(
                    f"acked turn silently missing (no reply, no run-interrupted marker of its "
                    f"own): {turn.describe()}; session status {row.get('status')!r}, "
                    f"lastRunId {row.get('lastRunId')!r}; markers for other runs after its "
                    f"user entry: {[run_id_of(m) for m in later]}")
        log.msg(f"after the restart: {outcome}")
        if problems:
            self.fail(f"{len(problems)} problem(s) after kill -9 (at the kill {at_kill}; "
                      f"finally {after}; outcome {outcome}):\n" + "\n".join(problems))
        self.assertGreaterEqual(outcome["final+reply"], KILL_AT_FINALS)
        self.assertGreater(outcome["complete reply without final"] +
                           outcome["marked interrupted"], 0,
                           "the kill did not catch any run in flight")

    # -- 2. SIGTERM during a run ---------------------------------------------------------------

    async def test_sigterm_mid_run_aborts_persists_and_closes_1012(self) -> None:
        gateway, client = await self.start_gateway()
        run_id, key = str(uuid.uuid4()), "sigterm-run"
        ack = await client.request("chat.send", {"sessionKey": key, "message": LONG,
                                                 "idempotencyKey": run_id})
        self.assertTrue(ack["ok"], ack)
        self.assertEqual(ack["payload"], {"runId": run_id, "status": "started"})
        while True:
            frame = await client.next_frame("event", "chat")
            payload = frame["payload"]
            if payload.get("runId") != run_id:
                continue
            self.assertNotIn(payload.get("state"), ("final", "aborted", "error"),
                             f"the run ended before its first delta: {payload}")
            if payload.get("state") == "delta":
                break
        mark = len(client.seen)  # frames after the first delta
        t0 = reactor.seconds()
        gateway.signal("TERM")

        code, reason = await within(client.closed, "close frame after SIGTERM", WAIT_S)
        closed_s = reactor.seconds() - t0
        await within(client.lost, "client socket gone after the close", WAIT_S)
        await gateway.ended(SIGTERM_EXIT_BOUND_S, "gateway exit within "
                            f"{SIGTERM_EXIT_BOUND_S:.0f}s of SIGTERM")
        exit_s = reactor.seconds() - t0

        after = client.seen[mark:]
        ours = [f for f in after if f.get("type") == "event" and f.get("event") == "chat"
                and f["payload"].get("runId") == run_id]
        states = [f["payload"]["state"] for f in ours]
        names = [f.get("event") for f in after if f.get("type") == "event"]
        log.msg(f"SIGTERM: close {code} after {closed_s:.3f}s, exit after {exit_s:.3f}s; "
                f"events after the first delta: {names}; run states {states}")
        self.assertNotIn("final", states, "the run completed before SIGTERM took effect; "
                         "the offline reply is too short for this test")
        aborted = [f for f in ours if f["payload"]["state"] == "aborted"]
        shutdown = [i for i, f in enumerate(after) if f.get("event") == "shutdown"]
        summary = (f"events after the first delta {names}, run states {states}, "
                   f"close {code} {reason!r}")
        self.assertTrue(aborted and shutdown, f"missing aborted and/or shutdown: {summary}")
        self.assertLess(after.index(aborted[0]), shutdown[0],
                        f"aborted must come before shutdown: {summary}")
        self.assertEqual(aborted[0]["payload"]["stopReason"], "shutdown", aborted[0])
        self.assertEqual(after[shutdown[0]]["payload"], {"reason": "gateway stopping"})
        self.assertEqual((code, reason), (1012, "service restart"), summary)
        # A clean stop: the service tree finished ("Server Shut Down."), then twistd exits 0
        # or, as Twisted >= 23 does after a signal, re-raises SIGTERM on itself.
        exit_signal = getattr(gateway.exit.value, "signal", None)
        self.assertTrue(gateway.exit_code == 0 or exit_signal == signal.SIGTERM,
                        f"twistd exit: {gateway.exit.value}\n{gateway.text[-3000:]}")
        self.assertIn("Server Shut Down.", gateway.text)

        partial = text_of(aborted[0]["payload"]["message"])
        streamed = "".join(f["payload"].get("deltaText", "") for f in client.seen
                           if f.get("type") == "event" and f.get("event") == "chat" and
                           f["payload"].get("runId") == run_id and
                           f["payload"].get("state") == "delta")
        self.assertTrue(partial, "the aborted event carries no partial text")
        self.assertEqual(partial, streamed, "aborted text is not what was streamed")
        self.assertTrue(FULL_REPLY.startswith(partial) and len(partial) < len(FULL_REPLY),
                        f"not a strict prefix of the reply: {partial!r}")

        self.assertEqual(self.integrity_check(), "ok")
        _restarted, client = await self.start_gateway()
        msgs = await self.history(client, key)
        mine = [m for m in msgs if run_id_of(m) == run_id]
        roles = [(m.get("role"), m.get("customType")) for m in mine]
        users = [m for m in mine if m.get("role") == "user"]
        replies = [m for m in mine if m.get("role") == "assistant"]
        markers = [m for m in mine if is_marker(m)]
        self.assertEqual([text_of(m) for m in users], [LONG], roles)
        self.assertEqual(len(replies), 1, f"expected one (partial) reply: {roles}")
        self.assertEqual(text_of(replies[0]), partial)
        self.assertIs(replies[0].get("aborted"), True, replies[0])
        self.assertEqual(replies[0].get("abortReason"), "shutdown", replies[0])
        self.assertEqual(replies[0].get("stopReason"), "aborted", replies[0])
        self.assertEqual(len(markers), 1, f"expected one run-interrupted marker: {roles}")
        self.assertLess(seq_of(users[0]), seq_of(replies[0]))
        self.assertLess(seq_of(replies[0]), seq_of(markers[0]))
        row = (await self.sessions_by_key(client)).get(f"agent:main:{key}")
        self.assertIsNotNone(row, "the session is not listed after the restart")
        self.assertEqual(row["status"], "failed", row)  # the real rows' value for it
        self.assertIs(row["abortedLastRun"], True, row)
        self.assertEqual(row["lastRunId"], run_id, row)
