"""Our small-frame unmasking gives Autobahn's native masker's bytes, piece by piece."""

from __future__ import annotations

import os
import random

from autobahn.websocket import xormasker
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.scopes import READ
from openclaw_tw.protocol.xormask import SMALL_FRAME, SmallFrameMasker
from tests.support.helpers import hello, make_gateway, ws_frame


class SmallFrames(SynchronousTestCase):
    def test_same_bytes_as_autobahn_in_any_pieces(self) -> None:
        rng = random.Random(7)
        for length in [*range(0, 40), 125, 126, 127, 511, 1023, SMALL_FRAME]:
            mask, data = os.urandom(4), os.urandom(length)
            want = xormasker.create_xor_masker(mask, max(length, 1)).process(data)
            self.assertEqual(SmallFrameMasker(mask).process(data), want, length)
            ours = SmallFrameMasker(mask)
            cuts = sorted(rng.sample(range(length + 1), min(3, length + 1)))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, length], strict=True)]
            self.assertEqual(b"".join(ours.process(p) for p in pieces), want, (length, cuts))
            self.assertEqual(ours.pointer(), length)
            ours.reset()
            self.assertEqual(ours.pointer(), 0)
        with self.assertRaises(ValueError):
            SmallFrameMasker(b"abc")

    def test_small_frames_use_ours_and_large_ones_the_native_masker(self) -> None:
        import autobahn.websocket.protocol as autobahn_protocol

        import openclaw_tw.protocol.websocket  # noqa: F401  (installs the choice)

        create = autobahn_protocol.create_xor_masker
        self.assertIsInstance(create(b"abcd", SMALL_FRAME), SmallFrameMasker)
        self.assertNotIsInstance(create(b"abcd", SMALL_FRAME + 1), SmallFrameMasker)
        self.assertNotIsInstance(create(b"abcd"), SmallFrameMasker)

    def test_masked_requests_reach_the_gateway_intact(self) -> None:
        gw, _ = make_gateway()
        client = hello(gw, scopes=[READ])
        for size in (10, 900, 5000):  # ours, ours, the native masker
            req_id = "r" + "x" * size
            frame = '{"type":"req","id":"' + req_id + '","method":"health","params":{}}'
            client.transport.clear()
            client.proto.dataReceived(ws_frame(frame.encode(), mask=b"\x9a\x0f\x3c\x77"))
            self.assertIn(b'"id":"%s","ok":true' % req_id.encode(), client.transport.value())
