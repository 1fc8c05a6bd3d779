"""The one base64url helper: unpadded out, padding optional in, the URL-safe alphabet only."""

from __future__ import annotations

import binascii

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.b64 import b64url, b64url_decode


class Base64Url(SynchronousTestCase):
    def test_round_trip_without_padding(self) -> None:
        for data in (b"", b"\xfb", b"\xfb\xff", b"\xfb\xff\xbf", bytes(range(256))):
            text = b64url(data)
            self.assertNotIn("=", text)
            self.assertFalse({"+", "/"} & set(text))
            self.assertEqual(b64url_decode(text), data)
            self.assertEqual(b64url_decode(text + "=" * (-len(text) % 4)), data)

    def test_refuses_other_alphabets_and_garbage(self) -> None:
        for bad in ("+/8", "ab cd", "a!b", "abcde"):
            with self.subTest(bad=bad):
                self.assertRaises((binascii.Error, ValueError), b64url_decode, bad)
