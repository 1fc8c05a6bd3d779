"""The Telegram provider's message chunking (the provider against the fake Bot API on a real
port is in tests/loopback/test_telegram.py)."""

from __future__ import annotations

from twisted.trial import unittest

from openclaw_tw.channels.telegram import TEXT_LIMIT, chunks


class Chunking(unittest.SynchronousTestCase):
    def test_chunks_respect_the_limit_and_prefer_newlines(self) -> None:
        text = ("a" * 3000 + "\n") * 3
        parts = chunks(text)
        self.assertTrue(all(0 < len(p) <= TEXT_LIMIT for p in parts))
        self.assertEqual("".join(parts).replace("\n", ""), "a" * 9000)
        self.assertEqual(chunks("x" * (TEXT_LIMIT + 1)), ["x" * TEXT_LIMIT, "x"])
