"""Autobahn's options reach every protocol from the factory's one snapshot, as its own
per-connection copy would have put them there."""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketServerProtocol
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.limits import MAX_PREAUTH_PAYLOAD
from tests.support.helpers import WSClient, make_gateway


class ProtocolOptions(SynchronousTestCase):
    def test_every_server_option_is_the_factorys(self) -> None:
        gw, _ = make_gateway()
        client = WSClient(gw)
        proto, factory = client.proto, client.factory
        for name in WebSocketServerProtocol.CONFIG_ATTRS:
            if name in ("maxFramePayloadSize", "maxMessagePayloadSize"):
                continue  # onConnect lowered them to the pre-auth cap
            self.assertEqual(getattr(proto, name), getattr(factory, name), name)
        self.assertEqual(proto.maxFramePayloadSize, MAX_PREAUTH_PAYLOAD)
        self.assertIsNone(proto.perMessageCompressionAccept([object()]))  # not a bound method
        self.assertTrue(proto.requireMaskedClientFrames)

    def test_later_options_reach_new_protocols(self) -> None:
        gw, _ = make_gateway()
        factory = WSClient(gw).factory
        factory.setProtocolOptions(maxConnections=7)
        self.assertEqual(WSClient(gw, factory=factory).proto.maxConnections, 7)
