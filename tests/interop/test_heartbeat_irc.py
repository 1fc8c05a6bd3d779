"""A heartbeat alert delivered to an IRC channel, driven and read by the real CLI.

``agents.defaults.heartbeat: {target: "irc", to: "#ops"}`` with our IRC provider connected to a
real IRC server (ngircd): ``openclaw system event --mode now`` wakes the heartbeat, the fake
model answers an alert, a human in ``#ops`` receives it from the bot, and ``openclaw system
heartbeat last`` reads it ``sent`` with ``to``/``channel``/``preview``, as the real runner
reports a delivered alert (``prepareHeartbeatDispatchReply`` in its dist).  The real 2026.9.6
has no IRC plugin, so this cannot be compared live with it.  Skips without ngircd or the
reference CLI.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest

from tests.interop.test_cli_everyday import EverydayCase
from tests.support.agent import first_heartbeat
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.loopback import free_port, within
from tests.support.ngircd import NGIRCD, SKIP_REASON, Human, start_plain_ngircd

ALERT = "Disk is full on /var"
TIMEOUT_S = 30


class HeartbeatToIrc(EverydayCase):
    def setUp(self) -> None:
        if NGIRCD is None:
            raise unittest.SkipTest(SKIP_REASON)
        super().setUp()

    def config(self) -> dict[str, Any]:
        self.irc_port = free_port()
        self.model = FakeOpenAI(reactor, api_key="sk-fake").start()
        self.addCleanup(self.model.stop)
        self.model.behave(text=ALERT)
        return {"models": {"providers": {"fake": {
            "baseUrl": self.model.base_url, "apiKey": "sk-fake", "api": "openai-completions",
            "models": [{"id": "fake-model", "name": "Fake model", "input": ["text"],
                        "contextWindow": 128000}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"},
                                    "heartbeat": {"every": "1h", "target": "irc",
                                                  "to": "#ops"}}},
            "channels": {"irc": {"host": "127.0.0.1", "port": self.irc_port, "nick": "claw",
                                 "channels": ["#ops"], "tls": False}}}

    async def tearDown(self) -> None:
        if self.app.channels.running:
            await self.app.channels.stopService()
        human = getattr(self, "human", None)
        if human is not None and human.transport is not None and not human.gone.called:
            human.transport.loseConnection()
            await human.gone
        server = getattr(self, "server", None)
        if server is not None:
            await server.stop()
        await super().tearDown()

    async def test_an_alert_reaches_the_channel_and_last_heartbeat_says_sent(self) -> None:
        self.server = await start_plain_ngircd(os.path.abspath(self.mktemp()), self.irc_port)
        self.app.channels.startService()
        account = self.app.channels.account("irc", "default")
        await within(account.when_connected(), "the bot signing on", TIMEOUT_S)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.irc_port)
        self.human = await endpoint.connect(protocol.Factory.forProtocol(Human))
        await within(self.human.signed_on, "the human signing on", TIMEOUT_S)
        self.human.join("#ops")
        await within(self.human.joined_channels.get(), "the human joining #ops", TIMEOUT_S)

        published = first_heartbeat(self, self.app)
        r = await self.openclaw("system", "event", "--mode", "now", "--text", "Check the disk",
                                "--json")
        self.succeeded(r)
        sender, where, text = await within(self.human.lines.get(), "the alert in #ops",
                                           TIMEOUT_S)
        self.assertEqual((sender, where, text), ("claw", "#ops", ALERT))
        await within(published, "the heartbeat event", TIMEOUT_S)

        r = await self.openclaw("system", "heartbeat", "last", "--json")
        self.succeeded(r)
        self.assertEqual(dict(self.calls), {"last-heartbeat": 1})
        beat = r.json()
        self.assertEqual(beat, {"ts": beat["ts"], "status": "sent", "preview": ALERT,
                                "channel": "irc", "indicatorType": "alert", "to": "#ops",
                                "hasMedia": False, "durationMs": beat["durationMs"]})
        self.assertEqual(len(self.model.requests), 1)

