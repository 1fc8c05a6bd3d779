"""Channel supervision on a Clock: backoff with jitter, reconnect, stop deadline, fault
containment and reload diffs (only changed accounts restart)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.channels import bindings
from openclaw_tw.channels.ingress import BACKLOG, MAX_IN_FLIGHT, Ingress
from openclaw_tw.channels.manager import (
    BACKOFF_MAX_S,
    STOP_DEADLINE_S,
    AccountService,
    ChannelContext,
    backoff_delay,
)
from openclaw_tw.channels.message import Inbound, session_key
from tests.support.helpers import hello, make_app, ok


class FakeAccount(AccountService):
    channel = "irc"
    made: list[FakeAccount] = []

    def __init__(self, account_id: str, config: Mapping[str, Any],
                 ctx: ChannelContext) -> None:
        super().__init__(account_id, config, ctx)
        self.connects: list[Deferred[Any]] = []
        self.sent_lines: list[tuple[str, str]] = []
        self.closing: Deferred[Any] | None = None
        self.intake: list[str] = []
        self.probes: list[Deferred[Any]] = []
        FakeAccount.made.append(self)

    def backlog(self) -> None:
        self.intake.append("paused")

    def drained(self) -> None:
        self.intake.append("resumed")

    def probe(self) -> Deferred[dict[str, Any]]:
        d: Deferred[dict[str, Any]] = Deferred()
        self.probes.append(d)
        return d

    def connect(self) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.connects.append(d)
        return d

    def disconnect(self) -> Deferred[Any]:
        if self.closing is not None:
            return self.closing
        return succeed(None)

    def deliver(self, to: str, text: str, reply_to: str | None = None,
                thread_id: str | None = None) -> Deferred[Any]:
        self.sent_lines.append((to, text))
        self.sent()
        return succeed(None)


def irc(**kw: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "nick": "claw", **kw}


class Supervision(SynchronousTestCase):
    def setUp(self) -> None:
        FakeAccount.made = []
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        # The app's own manager (the one channels.status reads), with the fake as its only
        # provider; its router is the app's.
        self.manager = self.app.channels
        self.manager.providers.clear()
        self.manager.providers["irc"] = FakeAccount
        self.router = self.manager.router

    def configure(self, raw: dict[str, Any]) -> None:
        self.gw.settings = attrs.evolve(self.gw.settings, raw=raw)

    def test_backoff_grows_with_jitter_and_caps(self) -> None:
        self.assertEqual(backoff_delay(1, lambda: 0.5), 1.0)
        self.assertAlmostEqual(backoff_delay(3, lambda: 0.0), 3.2)
        self.assertAlmostEqual(backoff_delay(3, lambda: 1.0), 4.8)
        self.assertEqual(backoff_delay(30, lambda: 0.5), BACKOFF_MAX_S)

    def test_failures_retry_on_the_clock_then_connect(self) -> None:
        self.configure({"channels": {"irc": irc()}})
        self.manager.startService()
        account = FakeAccount.made[0]
        account.connects[0].errback(ConnectionRefusedError("refused"))
        self.assertEqual(account.attempts, 1)
        self.assertIn("refused", account.status()["lastError"])
        self.assertEqual(account.status()["healthState"], "reconnecting")
        self.clock.advance(0.7)  # the first retry is 0.8..1.2 s away
        self.assertEqual(len(account.connects), 1)
        self.clock.advance(0.6)
        self.assertEqual(len(account.connects), 2)
        account.connects[1].callback(None)
        status = account.status()
        self.assertEqual((status["connected"], status["reconnectAttempts"], status["lastError"]),
                         (True, 0, None))
        account.lost("server closed")
        self.clock.advance(1.3)
        self.assertEqual(len(account.connects), 3)

    def test_stop_cancels_retries_and_has_a_deadline(self) -> None:
        self.configure({"channels": {"irc": irc()}})
        self.manager.startService()
        account = FakeAccount.made[0]
        account.connects[0].callback(None)
        account.closing = Deferred()  # a provider that never finishes closing
        done = self.manager.stopService()
        self.assertNoResult(done)
        self.clock.advance(STOP_DEADLINE_S)
        self.successResultOf(done)
        self.assertFalse(account.connected)
        self.assertIsNone(account._retry)

    def test_stop_while_waiting_to_retry_cancels_the_retry(self) -> None:
        self.configure({"channels": {"irc": irc()}})
        self.manager.startService()
        account = FakeAccount.made[0]
        account.connects[0].errback(ConnectionRefusedError("refused"))
        self.assertIsNotNone(account._retry)
        self.successResultOf(self.manager.stopService())
        self.assertIsNone(account._retry)
        self.clock.advance(BACKOFF_MAX_S)
        self.assertEqual(len(account.connects), 1)

    def test_reload_restarts_only_changed_accounts(self) -> None:
        cfg = {"channels": {"irc": {**irc(), "accounts": {"a": {}, "b": {}}}}}
        self.configure(cfg)
        self.manager.startService()
        first = {a.account_id: a for a in FakeAccount.made}
        self.assertEqual(sorted(first), ["a", "b"])
        from openclaw_tw.channels.accounts import configured_accounts

        changed = {"channels": {"irc": {**irc(), "accounts": {"a": {}, "b": {"nick": "x"}}}}}
        self.manager.configure(configured_accounts(changed))
        self.assertIs(self.manager.account("irc", "a"), first["a"])
        self.assertIsNot(self.manager.account("irc", "b"), first["b"])
        self.assertFalse(first["b"].running)
        self.manager.configure({})
        self.assertEqual(self.manager.accounts(), [])

    def test_a_faulty_turn_is_contained(self) -> None:
        self.configure({"channels": {"irc": irc(dmPolicy="open", allowFrom=["*"])}})
        self.manager.startService()
        account = FakeAccount.made[0]
        account.connects[0].callback(None)

        def boom(*a: Any) -> Any:
            raise RuntimeError("provider bug")

        self.patch(self.router, "handle", boom)
        d = account.inbound(Inbound("irc", "default", "dm", "ann", "ann", "hi"))
        self.assertTrue(self.successResultOf(d))  # accepted; the turn's fault stays inside
        self.assertIn("provider bug", account.status()["lastError"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        # the control plane still answers
        client = hello(self.gw, scopes=["operator.read"])
        status = ok(client, "channels.status", {})
        self.assertEqual(status["channelAccounts"]["irc"][0]["running"], True)

    def test_dm_from_unknown_sender_is_paired_once(self) -> None:
        self.configure({"channels": {"irc": irc()}})
        self.manager.startService()
        account = FakeAccount.made[0]
        account.connects[0].callback(None)
        msg = Inbound("irc", "default", "dm", "ann", "ann", "hi")
        self.successResultOf(account.inbound(msg))
        self.successResultOf(account.inbound(msg))
        self.assertEqual(len(account.sent_lines), 1)
        to, text = account.sent_lines[0]
        self.assertEqual(to, "ann")
        self.assertIn("openclaw pairing approve irc", text)
        self.assertEqual(len(self.app.dm_pairing.pending("irc")), 1)


    def test_accepted_messages_are_durable_until_their_turn_ends(self) -> None:
        self.configure({"channels": {"irc": irc(dmPolicy="open", allowFrom=["*"])}})
        self.manager.startService()
        account = FakeAccount.made[0]
        account.connects[0].callback(None)
        hold: Deferred[Any] = Deferred()
        self.patch(self.router, "handle", lambda acct, msg: hold)
        msg = Inbound("irc", "default", "dm", "ann", "ann", "remember me")
        self.assertTrue(self.successResultOf(account.inbound(msg)))
        self.assertEqual(account.status()["activeRuns"], 1)
        # a "restart" now: a fresh Ingress over the same database finds the message
        fresh = Ingress(self.app.nodes_db)
        fresh.load()
        self.assertEqual([m.text for _, m in fresh.unfinished[("irc", "default")]],
                         ["remember me"])
        hold.callback(None)
        self.assertEqual(account.status()["activeRuns"], 0)
        fresh = Ingress(self.app.nodes_db)
        fresh.load()
        self.assertEqual(fresh.unfinished, {})

    def test_unfinished_messages_replay_when_the_account_connects(self) -> None:
        msg = Inbound("irc", "default", "dm", "ann", "ann", "left over")
        self.successResultOf(self.app.ingress.accept(msg, 1))
        self.app.ingress.load()
        self.configure({"channels": {"irc": irc(dmPolicy="open", allowFrom=["*"])}})
        seen: list[str] = []
        self.patch(self.router, "handle", lambda acct, m: seen.append(m.text))
        self.manager.startService()
        FakeAccount.made[0].connects[0].callback(None)
        self.assertEqual(seen, ["left over"])
        fresh = Ingress(self.app.nodes_db)
        fresh.load()
        self.assertEqual(fresh.unfinished, {})

    def test_a_flood_is_bounded_and_other_accounts_are_unaffected(self) -> None:
        cfg = {**irc(dmPolicy="open", allowFrom=["*"]), "accounts": {"loud": {}, "calm": {}}}
        self.configure({"channels": {"irc": cfg}})
        self.manager.startService()
        loud, calm = (self.manager.account("irc", a) for a in ("loud", "calm"))
        for account in (loud, calm):
            account.connects[0].callback(None)
        self.patch(self.router, "handle", lambda acct, m: Deferred())  # turns never end
        results = [self.successResultOf(loud.inbound(
            Inbound("irc", "loud", "dm", "x", "x", f"m{i}"))) for i in range(MAX_IN_FLIGHT + 5)]
        self.assertEqual(results.count(False), 5)
        self.assertEqual(loud.refused, 5)
        self.assertIn("queue full", loud.status()["lastError"])
        self.assertTrue(self.successResultOf(calm.inbound(
            Inbound("irc", "calm", "dm", "y", "y", "hello"))))


    def test_intake_pauses_at_the_backlog_and_resumes_when_it_drains(self) -> None:
        self.configure({"channels": {"irc": irc(dmPolicy="open", allowFrom=["*"])}})
        self.manager.startService()
        account = FakeAccount.made[0]
        account.connects[0].callback(None)
        turns: list[Deferred[Any]] = []

        def handle(acct: Any, m: Inbound) -> Deferred[Any]:
            turns.append(Deferred())
            return turns[-1]

        self.patch(self.router, "handle", handle)
        for i in range(BACKLOG + 3):
            self.assertTrue(self.successResultOf(account.inbound(
                Inbound("irc", "default", "dm", "x", "x", f"m{i}"))))
        self.assertEqual(account.intake, ["paused"])
        self.assertTrue(account.status()["backlogged"])
        for d in turns[:3]:
            d.callback(None)
        self.assertEqual(account.intake, ["paused"])  # still at the backlog
        turns[3].callback(None)
        self.assertEqual(account.intake, ["paused", "resumed"])
        self.assertFalse(account.status()["backlogged"])

    def test_probe_reports_each_account_within_the_timeout(self) -> None:
        cfg = {**irc(), "accounts": {"slow": {}, "fine": {}}}
        self.configure({"channels": {"irc": cfg}})
        self.manager.startService()
        slow, fine = (self.manager.account("irc", a) for a in ("slow", "fine"))
        admin = hello(self.gw, scopes=["operator.admin"])
        rid = admin.request("channels.status", {"probe": True, "timeoutMs": 500})
        fine.probes[0].callback({"ok": True})
        self.assertIsNone(admin.response(rid))
        self.clock.advance(0.5)
        status = admin.response(rid)["payload"]
        rows = {r["accountId"]: r for r in status["channelAccounts"]["irc"]}
        self.assertEqual(rows["fine"]["probe"], {"ok": True})
        self.assertEqual(rows["slow"]["probe"],
                         {"ok": False, "error": "probe timed out after 500ms"})
        self.assertEqual([i["accountId"] for i in status["statusIssues"]], ["slow"])


class Routing(SynchronousTestCase):
    def test_bindings_choose_the_agent_most_specific_first(self) -> None:
        raw = {"bindings": [
            {"match": {"channel": "irc"}, "agentId": "chan"},
            {"match": {"channel": "irc", "accountId": "work"}, "agentId": "acct"},
            {"match": {"channel": "irc", "peer": {"kind": "group", "id": "*"}},
             "agentId": "groups"},
            {"match": {"channel": "irc", "peer": {"kind": "group", "id": "#Ops"}},
             "agentId": "Ops", "session": {"groupScope": "main"}},
            {"match": {"channel": "irc", "peer": {"kind": "direct", "id": "ann"}},
             "agentId": "ann-agent"},
            {"match": {"channel": "slack", "teamId": "T1"}, "agentId": "never"},
        ], "agents": {"list": [{"id": "main"}, {"id": "helper", "default": True}]}}

        def pick(msg: Inbound) -> tuple[str, dict[str, Any]]:
            return bindings.resolve(raw, msg)

        ops = Inbound("irc", "default", "group", "#ops", "bob", "hi")
        self.assertEqual(pick(ops), ("ops", {"groupScope": "main"}))
        self.assertEqual(pick(attrs.evolve(ops, thread_id="t1"))[0], "ops")  # parent peer
        self.assertEqual(pick(attrs.evolve(ops, peer_id="#dev"))[0], "groups")
        self.assertEqual(pick(Inbound("irc", "default", "dm", "Ann", "Ann", "hi"))[0],
                         "ann-agent")
        self.assertEqual(pick(Inbound("irc", "work", "dm", "bob", "bob", "hi"))[0], "acct")
        self.assertEqual(pick(Inbound("irc", "home", "dm", "bob", "bob", "hi"))[0], "chan")
        self.assertEqual(pick(Inbound("telegram", "default", "dm", "1", "1", "hi"))[0],
                         "helper")  # no binding: the default agent
        self.assertEqual(bindings.resolve({}, ops), ("main", {}))
        key = session_key(ops, raw, *pick(ops))
        self.assertEqual(key, "agent:ops:main")

    def test_session_keys(self) -> None:
        dm = Inbound("irc", "default", "dm", "Ann", "Ann", "hi")
        group = Inbound("irc", "default", "group", "#Ops", "ann", "hi", thread_id="t1")
        self.assertEqual(session_key(dm, {}), "agent:main:main")
        self.assertEqual(session_key(dm, {"session": {"dmScope": "per-channel-peer"}}),
                         "agent:main:irc:direct:ann")
        self.assertEqual(session_key(dm, {"session": {"dmScope": "per-account-channel-peer"}}),
                         "agent:main:irc:default:direct:ann")
        self.assertEqual(session_key(group, {}), "agent:main:irc:group:#ops:thread:t1")
        self.assertEqual(session_key(group, {"session": {"groupScope": "main"}}),
                         "agent:main:main")
