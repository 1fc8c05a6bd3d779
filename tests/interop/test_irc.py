"""The IRC provider against a real IRC server (Debian's ngircd, started here on a loopback
port), with a second IRC client playing the human: DM pairing → approval → agent turn → reply,
mention gating in a channel, reconnect after the server restarts, and a wrong server password
that leaves a truthful status while the control plane keeps serving.  Skips without ngircd
(``.ci/run`` installs it)."""

from __future__ import annotations

import os
import re
from typing import Any

import attrs
from twisted.internet import protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest

from tests.support.children import ChildProcess
from tests.support.loopback import free_port, start_gateway, stop_gateway, within
from tests.support.ngircd import NGIRCD, Human

BOT = "claw"
TIMEOUT_S = 20


class IrcAgainstNgircd(unittest.TestCase):
    timeout = 60

    def setUp(self) -> Any:
        if NGIRCD is None:
            raise unittest.SkipTest("ngircd not installed (apt-get install -y ngircd; "
                                    ".ci/run installs it)")
        self.irc_port = free_port()
        self.tls_port: int | None = None
        self.conf = os.path.abspath(self.mktemp())
        self.servers: list[ChildProcess] = []
        start_gateway(self, "irc-secret")
        self.app.runtime.startService()
        return self.start_server()

    def write_conf(self, password: str | None = None) -> None:
        lines = ["[Global]", "Name = irc.test.local", "Info = openclaw_tw test",
                 "Listen = 127.0.0.1", f"Ports = {self.irc_port}", "MotdPhrase = test"]
        if password:
            lines.append(f"Password = {password}")
        if self.tls_port:
            lines += ["[SSL]", f"CertFile = {self.cert}", f"KeyFile = {self.key}",
                      f"Ports = {self.tls_port}"]
        lines += ["[Limits]", "MaxConnectionsIP = 0", "[Options]", "PAM = no", "Ident = no",
                  "DNS = no", "[Channel]", "Name = #ops"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    async def start_server(self, password: str | None = None) -> None:
        self.write_conf(password)
        server = ChildProcess(ready_marker=b"Now listening on")
        reactor.spawnProcess(server, NGIRCD, [NGIRCD, "-n", "-f", self.conf], env=os.environ)
        self.servers.append(server)
        await server.ready

    async def stop_server(self) -> None:
        server = self.servers[-1]
        server.signal("KILL")
        await server.exited()

    async def tearDown(self) -> None:
        if self.app.channels.running:
            await self.app.channels.stopService()
        for human in getattr(self, "humans", []):
            if human.transport is not None and not human.gone.called:
                human.transport.loseConnection()
                await human.gone
        await self.stop_server()
        await self.app.runtime.stopService()
        await stop_gateway(self)

    def configure(self, **irc_cfg: Any) -> None:
        cfg = {"host": "127.0.0.1", "port": self.irc_port, "nick": BOT, "channels": ["#ops"],
               "groups": {"#ops": {}}, "tls": False, **irc_cfg}
        self.gw.settings = attrs.evolve(self.gw.settings, raw={"channels": {"irc": cfg}})

    async def start_channels(self) -> Any:
        self.app.channels.startService()
        account = self.app.channels.account("irc", "default")
        await within(account.when_connected(), "the bot signing on", TIMEOUT_S)
        return account

    async def human(self) -> Human:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.irc_port)
        human = await endpoint.connect(protocol.Factory.forProtocol(Human))
        self.humans = [*getattr(self, "humans", []), human]
        await human.signed_on
        return human

    async def dm_answered(self, text: str) -> None:
        """A new human DMs the bot ``text``; the bot's answer quotes it."""
        human = await self.human()
        human.msg(BOT, text)
        sender, _, answer = await self.next_line(human)
        self.assertEqual(sender, BOT)
        self.assertIn(text, answer)

    async def next_line(self, human: Human) -> tuple[str, str, str]:
        return await within(human.lines.get(), "a line for the human", TIMEOUT_S)

    async def test_dm_pairing_then_agent_reply(self) -> None:
        self.configure()
        await self.start_channels()
        human = await self.human()
        human.msg(BOT, "hello there")
        sender, target, text = await self.next_line(human)
        self.assertEqual((sender, target), (BOT, "human"))
        code = re.search(r"Pairing code: ([A-Z2-9]{8})", text)
        assert code is not None, text
        # a second message while pending is not answered again and not processed
        pending = self.app.dm_pairing.pending("irc")
        self.assertEqual([r.sender_id for r in pending], ["human"])
        await self.app.dm_pairing.approve("irc", code.group(1))
        human.msg(BOT, "ping after approval")
        sender, target, text = await self.next_line(human)
        self.assertEqual((sender, target), (BOT, "human"))
        self.assertIn("ping after approval", text)
        status = self.app.channels.account("irc", "default").status()
        self.assertTrue(status["connected"])
        self.assertIsNotNone(status["lastInboundAt"])
        self.assertIsNotNone(status["lastOutboundAt"])

    async def test_group_needs_a_mention(self) -> None:
        self.configure()
        await self.start_channels()
        human = await self.human()
        human.join("#ops")
        await human.joined_channels.get()
        human.msg("#ops", "chatter without the bot's name")
        human.msg("#ops", f"{BOT}: are you there")
        sender, target, text = await self.next_line(human)
        self.assertEqual((sender, target), (BOT, "#ops"))
        self.assertIn("are you there", text)
        self.assertNotIn("chatter", text)

    async def test_reconnects_after_the_server_restarts(self) -> None:
        self.configure(dmPolicy="open", allowFrom=["*"])
        account = await self.start_channels()
        await self.stop_server()
        reconnected = account.when_connected()
        await self.start_server()
        await within(reconnected, "reconnect after the server restart", TIMEOUT_S)
        self.assertGreaterEqual(account.status()["lastConnectedAt"], 0)
        await self.dm_answered("still there?")

    async def test_wrong_password_is_reported_and_the_gateway_keeps_serving(self) -> None:
        await self.stop_server()
        await self.start_server(password="right")
        self.configure(password="wrong")
        self.app.channels.startService()
        account = self.app.channels.account("irc", "default")
        reason = await within(account.when_lost(), "the failed sign-on", TIMEOUT_S)
        self.assertIn("sign-on", reason)
        status = self.app.channels.account("irc", "default").status()
        self.assertFalse(status["connected"])
        self.assertTrue(status["running"])
        self.assertTrue(status["lastError"])
        self.assertEqual(status["healthState"], "reconnecting")
        self.assertEqual(status["reconnectAttempts"], 1)
        self.assertTrue(self.gw.health.current()["ok"])

    async def test_tls_with_a_verified_certificate(self) -> None:
        await self.stop_server()
        self.tls_port = free_port()
        self.cert, self.key, ca = self.make_cert()
        await self.start_server()
        # the bot trusts this server through the standard OpenSSL variable, as a deployment
        # with a private CA would; the default trust store does not know it
        before = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = ca
        self.addCleanup(lambda: os.environ.pop("SSL_CERT_FILE") if before is None else
                        os.environ.__setitem__("SSL_CERT_FILE", before))
        self.configure(host="localhost", port=self.tls_port, tls=True,
                       dmPolicy="open", allowFrom=["*"])
        await self.start_channels()
        await self.dm_answered("over tls")

    async def test_tls_refuses_an_untrusted_certificate(self) -> None:
        await self.stop_server()
        self.tls_port = free_port()
        self.cert, self.key, _ = self.make_cert()
        await self.start_server()
        self.configure(host="localhost", port=self.tls_port, tls=True)
        self.app.channels.startService()
        account = self.app.channels.account("irc", "default")
        reason = await within(account.when_lost(), "the refused handshake", TIMEOUT_S)
        self.assertIn("certificate verify failed", reason)
        self.assertFalse(account.status()["connected"])

    def make_cert(self) -> tuple[str, str, str]:
        """A self-signed certificate for localhost/127.0.0.1 (it is its own CA)."""
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        with open(f"{base}/cert.pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(f"{base}/key.pem", "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
        return f"{base}/cert.pem", f"{base}/key.pem", f"{base}/cert.pem"
