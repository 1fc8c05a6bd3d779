"""The test double for connections provides exactly what handlers may use, as the socket does."""

from __future__ import annotations

from twisted.trial import unittest
from zope.interface.verify import verifyClass, verifyObject

from openclaw_tw.interfaces import IConnection
from openclaw_tw.protocol.frames import EncodedEvent
from openclaw_tw.protocol.websocket import GatewayProtocol
from tests.support.connection import FakeConnection


class ConnectionInterface(unittest.SynchronousTestCase):
    def test_the_fake_and_the_socket_provide_iconnection(self) -> None:
        verifyObject(IConnection, FakeConnection())
        verifyClass(IConnection, GatewayProtocol)
        verifyObject(IConnection, GatewayProtocol())

    def test_the_fake_records_sends_with_seq(self) -> None:
        conn = FakeConnection()
        conn.deliver(EncodedEvent("tick", {"ts": 1}), False)
        conn.send_event("node.invoke.request", {"id": "x"})
        self.assertEqual(conn.events, [("tick", {"ts": 1}, 1),
                                       ("node.invoke.request", {"id": "x"}, None)])
