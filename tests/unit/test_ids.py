from __future__ import annotations

import uuid

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.ids import uuid4_text


class Uuid4Text(SynchronousTestCase):
    def test_canonical_version_4_rfc_4122(self) -> None:
        seen = set()
        for _ in range(2000):
            text = uuid4_text()
            parsed = uuid.UUID(text)
            self.assertEqual(str(parsed), text)
            self.assertEqual(parsed.version, 4)
            self.assertEqual(parsed.variant, uuid.RFC_4122)
            seen.add(text)
        self.assertEqual(len(seen), 2000)

    def test_every_variant_nibble_maps_to_10xx(self) -> None:
        from openclaw_tw import ids

        for nibble in range(16):
            self.assertEqual(int(ids._VARIANT[nibble], 16) >> 2, 0b10)
            self.assertEqual(int(ids._VARIANT[nibble], 16) & 3, nibble & 3)
