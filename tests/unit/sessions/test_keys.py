"""Session key grammar (reference §12.1): request-side keys resolve to canonical
``agent:<agentId>:<rest>`` store keys, and channel conversations map to the DM, group and
thread shapes driven by ``session.dmScope``/``groupScope``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.sessions.keys import agent_of, is_reserved, kind_of, peer_key, resolve_key, rest_of

# (raw key as a client sends it, agentId param, canonical store key)
RESOLVE_TABLE = [
    (None, None, "agent:main:main"),
    ("", None, "agent:main:main"),
    ("   ", None, "agent:main:main"),
    ("main", None, "agent:main:main"),
    (" main ", None, "agent:main:main"),
    ("agent:main:main", None, "agent:main:main"),
    ("agent:Ops:x", None, "agent:ops:x"),
    ("agent:OPS:Deep:Rest", None, "agent:ops:Deep:Rest"),
    ("agent:ops", None, "agent:ops:main"),
    ("http-test-1", None, "agent:main:http-test-1"),
    ("mock-chat", None, "agent:main:mock-chat"),
    ("telegram:direct:42", None, "agent:main:telegram:direct:42"),
    ("global", None, "global"),
    ("unknown", None, "unknown"),
    # the agentId param picks the agent for unscoped keys only
    (None, "Ops", "agent:ops:main"),
    ("", "ops", "agent:ops:main"),
    ("main", "Ops", "agent:ops:main"),
    ("scratch", "ops", "agent:ops:scratch"),
    ("agent:work:x", "ops", "agent:work:x"),
    ("global", "ops", "global"),
    ("main", "  ", "agent:main:main"),
]


class ResolveKey(SynchronousTestCase):
    def test_table(self) -> None:
        for raw, agent_id, expected in RESOLVE_TABLE:
            with self.subTest(raw=raw, agent_id=agent_id):
                self.assertEqual(resolve_key(raw, agent_id=agent_id), expected)

    def test_default_agent_and_main_key(self) -> None:
        self.assertEqual(resolve_key("", default_agent="work"), "agent:work:main")
        self.assertEqual(resolve_key("x", default_agent="work"), "agent:work:x")
        self.assertEqual(resolve_key("home", main="home"), "agent:main:home")
        self.assertEqual(resolve_key(None, main="home"), "agent:main:home")

    def test_sentinels_stay_unscoped(self) -> None:
        for sentinel in ("global", "unknown"):
            self.assertEqual(kind_of(resolve_key(sentinel)), sentinel)
            self.assertEqual(rest_of(sentinel), sentinel)

    def test_agent_and_rest_of_canonical_keys(self) -> None:
        self.assertEqual(agent_of("agent:ops:x:y"), "ops")
        self.assertEqual(rest_of("agent:ops:x:y"), "x:y")
        self.assertEqual(agent_of("global"), "main")

    def test_reserved_namespaces(self) -> None:
        for raw in ("subagent:a", "cron:job1", "acp:zed", "incognito-1", "CRON:job"):
            self.assertTrue(is_reserved(raw), raw)
        for raw in ("main", "agent:main:cron", "chat"):
            self.assertFalse(is_reserved(raw), raw)

    @settings(max_examples=300, deadline=None)
    @given(raw=st.one_of(st.none(), st.text(max_size=40),
                         st.builds(lambda a, r: f"agent:{a}:{r}", st.text(max_size=8),
                                   st.text(max_size=12)),
                         st.sampled_from(["main", "global", "unknown", "agent:", "agent::x"])),
           agent_id=st.one_of(st.none(), st.text(alphabet="abcXYZ-_ ", max_size=6)))
    def test_resolve_is_idempotent(self, raw: str | None, agent_id: str | None) -> None:
        once = resolve_key(raw, agent_id=agent_id)
        self.assertEqual(resolve_key(once, agent_id=agent_id), once)
        self.assertEqual(resolve_key(once), once)
        self.assertTrue(once in ("global", "unknown") or once.startswith("agent:"), once)


class PeerKeys(SynchronousTestCase):
    def test_dm_scopes(self) -> None:
        cases = {
            "main": "agent:main:main",
            "per-peer": "agent:main:direct:user42",
            "per-channel-peer": "agent:main:telegram:direct:user42",
            "per-account-channel-peer": "agent:main:telegram:acct1:direct:user42",
        }
        for scope, expected in cases.items():
            with self.subTest(scope=scope):
                self.assertEqual(peer_key("main", "Telegram", "dm", "User42", account_id="acct1",
                                          dm_scope=scope), expected)
                self.assertEqual(kind_of(expected), "direct")

    def test_dm_default_scope_is_main(self) -> None:
        self.assertEqual(peer_key("Ops", "discord", "dm", "u1"), "agent:ops:main")

    def test_groups_and_channels(self) -> None:
        group = peer_key("main", "discord", "group", "G1")
        channel = peer_key("main", "slack", "channel", "C9")
        self.assertEqual(group, "agent:main:discord:group:g1")
        self.assertEqual(channel, "agent:main:slack:channel:c9")
        self.assertEqual((kind_of(group), kind_of(channel)), ("group", "group"))

    def test_kind_is_the_rule_on_the_rest_of_the_key(self) -> None:
        for key, kind in (("agent:main:groupie", "direct"), ("agent:group:main", "direct"),
                          ("agent:main:group", "group"), ("agent:main:x:channel:y", "group"),
                          ("channel:x", "group"), ("agent:main:channels:x", "direct"),
                          ("agent:main:s1", "direct"), ("group", "group")):
            rest = rest_of(key)
            rule = "group" if ":group:" in f":{rest}:" or ":channel:" in f":{rest}:" \
                else "direct"
            self.assertEqual((kind_of(key), rule), (kind, kind), key)

    def test_group_scope_main(self) -> None:
        self.assertEqual(peer_key("main", "discord", "group", "g1", group_scope="main"),
                         "agent:main:main")
        self.assertEqual(peer_key("ops", "slack", "channel", "c1", group_scope="main"),
                         "agent:ops:main")

    def test_threads(self) -> None:
        self.assertEqual(peer_key("main", "discord", "group", "g1", thread_id="t9"),
                         "agent:main:discord:group:g1:thread:t9")
        self.assertEqual(peer_key("main", "slack", "dm", "u1", dm_scope="per-peer",
                                  thread_id="t9"), "agent:main:direct:u1:thread:t9")
        self.assertEqual(peer_key("main", "slack", "dm", "u1", thread_id="t9"),
                         "agent:main:main:thread:t9")

    def test_peer_keys_are_canonical(self) -> None:
        """A key a channel builds resolves to itself when a client sends it back."""
        for scope in ("main", "per-peer", "per-channel-peer", "per-account-channel-peer"):
            key = peer_key("Ops", "telegram", "dm", "Peer", dm_scope=scope, thread_id="t1")
            self.assertEqual(resolve_key(key), key)
