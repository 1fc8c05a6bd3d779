"""The idempotency cache: a fixed TTL, expiry from the front, in-flight entries kept."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.dedupe import MAX_ENTRIES, TTL_S, DedupeCache


class DedupeExpiry(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = DedupeCache(self.clock)

    def settled(self, key: str) -> None:
        self.cache.start(key)
        self.cache.settle(key, True, {"key": key})

    def test_settled_entries_expire_after_the_ttl_oldest_first(self) -> None:
        self.settled("a")
        self.clock.advance(100)
        self.settled("b")
        self.clock.advance(TTL_S - 100 + 1)  # a is past the TTL, b is not
        self.assertIsNone(self.cache.get("a"))
        self.assertEqual(self.cache.get("b").payload, {"key": "b"})  # type: ignore[union-attr]
        self.clock.advance(100)
        self.assertIsNone(self.cache.get("b"))
        self.assertEqual(len(self.cache), 0)

    def test_the_ttl_counts_from_the_settle(self) -> None:
        self.cache.start("long")
        self.clock.advance(TTL_S * 3)  # a long run: in flight, never expired
        self.assertTrue(self.cache.get("long").active)  # type: ignore[union-attr]
        self.cache.settle("long", False, None, {"message": "x"})
        self.clock.advance(TTL_S - 1)
        self.assertFalse(self.cache.get("long").ok)  # type: ignore[union-attr]
        self.clock.advance(2)
        self.assertIsNone(self.cache.get("long"))

    def test_an_in_flight_entry_does_not_hold_back_later_expiry(self) -> None:
        self.cache.start("running")
        self.settled("done")
        self.clock.advance(TTL_S + 1)
        self.assertIsNone(self.cache.get("done"))
        self.assertIsNotNone(self.cache.get("running"))

    def test_bounded_by_count_evicting_the_oldest_settled(self) -> None:
        self.cache.start("running")
        for i in range(MAX_ENTRIES + 50):
            self.settled(f"k{i}")
        self.assertEqual(len(self.cache), MAX_ENTRIES)
        self.assertIsNone(self.cache.get("k0"))
        self.assertIsNotNone(self.cache.get(f"k{MAX_ENTRIES + 49}"))
        self.assertIsNotNone(self.cache.get("running"))

    def test_restart_of_a_key_and_forget(self) -> None:
        self.settled("a")
        entry = self.cache.start("a", "fp")
        self.assertTrue(entry.active)
        self.assertEqual(self.cache.get("a").fingerprint, "fp")  # type: ignore[union-attr]
        self.assertEqual(len(self.cache), 1)
        self.cache.forget("a")
        self.assertIsNone(self.cache.get("a"))
