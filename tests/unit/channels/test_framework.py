"""Channel framework: DM access policy, DM pairing (codes, expiry, cap, persistence) and the
channels.* / send methods (reference §6.1, docs/channels/pairing.md of the real package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.channels import policy
from openclaw_tw.channels.pairing import (
    ALPHABET,
    MIGRATION,
    PENDING_PER_ACCOUNT,
    TTL_MS,
    DmPairing,
    PairingError,
)
from openclaw_tw.db import Database
from openclaw_tw.nodes.store import MIGRATIONS as NODE_MIGRATIONS
from tests.support.helpers import call, hello, make_app, ok

ADMIN = ["operator.admin"]
PAIRING = ["operator.pairing"]


def result(d: Any) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "deferred did not fire"
    return out[0]


class Policy(SynchronousTestCase):
    def test_dm_pairing_default(self) -> None:
        self.assertEqual(policy.dm_decision({}, "irc", "alice", approved=False), "pair")
        self.assertEqual(policy.dm_decision({}, "irc", "alice", approved=True), "process")
        cfg = {"allowFrom": ["irc:bob"]}
        self.assertEqual(policy.dm_decision(cfg, "irc", "bob", approved=False), "process")

    def test_dm_allowlist_open_disabled(self) -> None:
        allow = {"dmPolicy": "allowlist", "allowFrom": ["bob"]}
        self.assertEqual(policy.dm_decision(allow, "irc", "bob", False), "process")
        self.assertEqual(policy.dm_decision(allow, "irc", "eve", True), "drop")
        # open is public only with "*"; approvals never widen a concrete open list
        self.assertEqual(policy.dm_decision({"dmPolicy": "open", "allowFrom": ["*"]},
                                            "irc", "eve", False), "process")
        self.assertEqual(policy.dm_decision({"dmPolicy": "open", "allowFrom": ["bob"]},
                                            "irc", "eve", True), "drop")
        self.assertEqual(policy.dm_decision({"dmPolicy": "disabled", "allowFrom": ["*"]},
                                            "irc", "bob", True), "drop")

    def test_groups_and_mentions(self) -> None:
        cfg = {"groups": {"#ops": {}}}
        self.assertEqual(policy.group_decision(cfg, "irc", "#ops", "a", mentioned=True),
                         "process")
        self.assertEqual(policy.group_decision(cfg, "irc", "#ops", "a", mentioned=False), "drop")
        self.assertEqual(policy.group_decision(cfg, "irc", "#other", "a", True), "drop")
        quiet = {"groups": {"*": {"requireMention": False}}}
        self.assertEqual(policy.group_decision(quiet, "irc", "#any", "a", False), "process")
        senders = {"groups": {"#ops": {}}, "groupAllowFrom": ["bob"]}
        self.assertEqual(policy.group_decision(senders, "irc", "#ops", "a", True), "drop")
        self.assertEqual(policy.group_decision(senders, "irc", "#ops", "bob", True), "process")
        self.assertEqual(policy.group_decision({"groupPolicy": "open"}, "irc", "#x", "a", True),
                         "process")
        self.assertEqual(policy.group_decision({"groupPolicy": "disabled", "groups": {"*": {}}},
                                               "irc", "#x", "a", True), "drop")


class Pairing(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp()) / "nodes.sqlite"
        self.clock = Clock()
        self.clock.advance(1_795_000_000)
        self.db = self.open_db()
        self.store = self.make_store(self.db)

    def open_db(self) -> Database:
        db = Database(self.path, [*NODE_MIGRATIONS, MIGRATION], inline=True)
        db.open()
        self.addCleanup(db.close)
        return db

    def make_store(self, db: Database) -> DmPairing:
        store = DmPairing(db, lambda: int(self.clock.seconds() * 1000))
        store.load()
        return store

    def test_code_shape_and_same_sender_keeps_code(self) -> None:
        req, created = result(self.store.request("irc", "default", "alice", "Alice"))
        self.assertTrue(created)
        self.assertEqual(len(req.code), 8)
        self.assertTrue(set(req.code) <= set(ALPHABET))
        self.assertFalse(set(req.code) & set("0O1I"))
        again, created_again = result(self.store.request("irc", "default", "alice"))
        self.assertEqual((again.code, created_again), (req.code, False))

    def test_cap_per_account_and_expiry(self) -> None:
        for i in range(PENDING_PER_ACCOUNT):
            self.assertTrue(result(self.store.request("irc", "default", f"s{i}"))[1])
        self.assertEqual(result(self.store.request("irc", "default", "late")), (None, False))
        # another account has its own cap
        self.assertTrue(result(self.store.request("irc", "work", "late"))[1])
        self.clock.advance(TTL_MS / 1000)
        self.assertEqual(self.store.pending("irc", "default"), [])
        self.assertTrue(result(self.store.request("irc", "default", "late"))[1])

    def test_approve_allows_sender_and_survives_restart(self) -> None:
        req, _ = result(self.store.request("telegram", "default", "123"))
        approved = result(self.store.approve("telegram", req.code.lower(), "default"))
        self.assertEqual(approved.sender_id, "123")
        self.assertTrue(self.store.is_allowed("telegram", "default", "123"))
        pending, _ = result(self.store.request("telegram", "default", "456"))
        reloaded = self.make_store(self.db)
        self.assertTrue(reloaded.is_allowed("telegram", "default", "123"))
        self.assertEqual([r.code for r in reloaded.pending()], [pending.code])

    def test_wrong_channel_or_unknown_code_is_refused(self) -> None:
        req, _ = result(self.store.request("telegram", "default", "123"))
        self.assertRaises(PairingError, self.store.approve, "irc", req.code)
        self.assertRaises(PairingError, self.store.approve, "telegram", "ZZZZZZZZ")
        result(self.store.dismiss("telegram", req.code))
        self.assertFalse(self.store.is_allowed("telegram", "default", "123"))
        self.assertRaises(PairingError, self.store.dismiss, "telegram", req.code)


CHANNELS_CFG = {
    "channels": {
        "telegram": {"botToken": "123:abc", "dmPolicy": "pairing"},
        "irc": {"enabled": False, "host": "127.0.0.1", "nick": "claw"},
        "matrix": {"accounts": {"home": {"homeserver": "http://127.0.0.1:1"}}},
        "slack": {"botToken": "x"},
    },
}


class Methods(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.admin = hello(self.gw, scopes=ADMIN)

    def configure(self, raw: dict[str, Any]) -> None:
        self.gw.settings = attrs.evolve(self.gw.settings, raw=raw)

    def test_status_without_channels_matches_the_real_shape(self) -> None:
        status = ok(self.admin, "channels.status", {})
        self.assertEqual(status["channelOrder"], [])
        self.assertEqual(status["channels"], {})
        self.assertEqual(status["channelAccounts"], {})
        self.assertEqual(status["statusIssues"], [])
        self.assertIn("degraded", status["eventLoop"])

    def test_status_is_truthful_about_configured_accounts(self) -> None:
        self.configure(CHANNELS_CFG)
        status = ok(self.admin, "channels.status", {"probe": True})
        self.assertEqual(status["channelOrder"], ["telegram", "matrix"])
        tg = status["channelAccounts"]["telegram"][0]
        self.assertEqual((tg["accountId"], tg["configured"], tg["running"], tg["connected"]),
                         ("default", True, False, False))
        mx = status["channelAccounts"]["matrix"][0]
        self.assertEqual((mx["accountId"], mx["configured"]), ("home", False))
        self.assertEqual(status["channelDefaultAccountId"], {"telegram": "default",
                                                             "matrix": "home"})
        # probe: an account whose service is not running is reported, not probed
        self.assertEqual(mx["probe"], {"ok": False, "error": "not running"})
        self.assertIsNotNone(mx["lastProbeAt"])
        self.assertEqual(status["statusIssues"], [])

    def test_send_without_channels_is_the_real_error(self) -> None:
        res = call(self.admin, "send", {"to": "+15555550123", "message": "hi",
                                        "idempotencyKey": "send-1"})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        self.assertTrue(res["error"]["message"].startswith(
            "Error: Channel is required (no configured channels detected)."))

    def test_send_and_start_refuse_clearly_when_no_provider_runs(self) -> None:
        self.configure(CHANNELS_CFG)
        res = call(self.admin, "send", {"to": "1", "message": "hi", "idempotencyKey": "k",
                                        "channel": "telegram"})
        self.assertEqual(res["error"]["code"], "UNAVAILABLE")
        res = call(self.admin, "send", {"to": "1", "idempotencyKey": "k", "channel": "nope"})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        res = call(self.admin, "channels.start", {"channel": "irc"})  # disabled in config
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        res = call(self.admin, "channels.start", {"channel": "matrix", "accountId": "nope"})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        self.assertIn("unknown account: matrix:nope", res["error"]["message"])

    def test_pairing_methods_round_trip(self) -> None:
        self.configure(CHANNELS_CFG)
        req, _ = result(self.app.dm_pairing.request("telegram", "default", "42", "@ann"))
        pairer = hello(self.gw, scopes=PAIRING)
        listed = ok(pairer, "channels.pairing.list", {"channel": "telegram"})
        self.assertEqual(listed["limits"], {"pendingPerAccount": 3, "ttlMs": 3_600_000})
        self.assertEqual([a["accountId"] for a in listed["accounts"]], ["default"])
        row = listed["requests"][0]
        self.assertEqual((row["requestId"], row["senderId"], row["senderLabel"]),
                         (req.code, "42", "@ann"))
        self.assertTrue(row["expiresAt"].endswith("Z"))
        approved = ok(pairer, "channels.pairing.approve",
                      {"channel": "telegram", "accountId": "default", "requestId": req.code})
        self.assertEqual(approved, {"requestId": req.code, "senderId": "42",
                                    "notification": "not-requested",
                                    "commandOwnerBootstrap": "not-requested"})
        self.assertTrue(self.app.dm_pairing.is_allowed("telegram", "default", "42"))
        again = call(pairer, "channels.pairing.approve",
                     {"channel": "telegram", "accountId": "default", "requestId": req.code})
        self.assertEqual(again["error"]["code"], "INVALID_REQUEST")
        # bootstrapping a command owner needs admin too (dynamic scope)
        denied = call(pairer, "channels.pairing.approve",
                      {"channel": "telegram", "accountId": "default", "requestId": req.code,
                       "bootstrapCommandOwner": True})
        self.assertFalse(denied["ok"])
        self.assertIn("operator.admin", denied["error"]["message"])

    def test_read_scope_cannot_list_pairing_requests(self) -> None:
        reader = hello(self.gw, scopes=["operator.read"])
        res = call(reader, "channels.pairing.list", {})
        self.assertFalse(res["ok"])
        self.assertTrue(ok(reader, "channels.status", {}) is not None)
