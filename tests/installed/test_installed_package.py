"""The installed package runs every optional feature it advertises, as a user's install does.

What users run is not the suite's dev environment: ``make run`` (and any ``pip install
openclaw_tw``) installs the package without extras. This tier builds a fresh virtualenv with
``pip install <checkout>`` (no extras, nothing from the source tree on ``sys.path``), starts
``twistd -n openclaw`` from it in a directory outside the checkout, with one config that turns
on every optional feature at once, and checks that each one answers:

- TLS: ``https://…/health`` with the gateway's self-signed certificate as the trust root;
- an OpenAI-compatible model provider (a loopback fake): a chat turn through
  ``/v1/chat/completions``, answered with the provider's text;
- hooks: ``POST /hooks/wake`` with the hooks token;
- Telegram (the fake Bot API): the account's status row says connected, and a DM is answered;
- Matrix (Synapse, when installed) and IRC (ngircd, when installed): status rows connected;
- mDNS ``minimal``: the service is found by a zeroconf query (multicast on loopback only);
- the installed ``openclaw-tw`` client program speaks wss:// to it (channels.status);
- the built-in dashboard (package data) is served at ``/`` (forced with
  ``OPENCLAW_TW_CONTROL_UI=builtin``, as this machine may have a Control UI build).

A feature whose dependency lives only in an extra makes the gateway stop at start-up with
a line naming the package, and this test fails showing that line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from treq.client import HTTPClient
from twisted.internet import defer, reactor, ssl, task
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from twisted.web import server
from twisted.web.client import Agent
from twisted.web.iweb import IPolicyForHTTPS
from zeroconf import ServiceBrowser, ServiceListener, Zeroconf
from zope.interface import implementer

from tests.support.children import ChildProcess
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.fakes.telegram_api import FakeBotAPI
from tests.support.loopback import free_port
from tests.support.synapse import Synapse, synapse_missing

REPO = Path(__file__).resolve().parents[2]
NGIRCD = shutil.which("ngircd") or ("/usr/sbin/ngircd" if os.path.exists("/usr/sbin/ngircd")
                                    else None)
TOKEN = "installed-" + uuid.uuid4().hex[:12]
HOOKS_TOKEN = "hooks-" + uuid.uuid4().hex[:12]
BOT_TOKEN = "123:installed"
REPLY = "Hello from the installed provider"
MATRIX_PASSWORD = "bot-password"
BUILD_TIMEOUT_S = 240
WAIT_S = 30
SERVICE_TYPE = "_openclaw-gw._tcp.local."


def clean_env(home: str) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH into the checkout, no dev venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("OPENCLAW")}
    env.update(HOME=home, OPENCLAW_MDNS_INTERFACES="127.0.0.1")
    return env


async def run(argv: list[str], env: dict[str, str], cwd: str, what: str,
              seconds: float = BUILD_TIMEOUT_S) -> str:
    child = ChildProcess()
    reactor.spawnProcess(child, argv[0], argv, env=env, path=cwd)
    try:
        await child.exited().addTimeout(seconds, reactor)
    except defer.TimeoutError:
        child.signal("KILL")
        raise unittest.FailTest(
            f"{what}: not done within {seconds:.0f}s:\n{child.text[-2000:]}") from None
    if child.exit_code != 0:
        raise unittest.FailTest(f"{what} failed ({child.exit}):\n{child.text[-3000:]}")
    return child.text


@implementer(IPolicyForHTTPS)
class TrustOne:
    """HTTPS that trusts exactly the gateway's self-signed certificate."""

    def __init__(self, pem: bytes) -> None:
        self.cert = ssl.Certificate.loadPEM(pem)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return ssl.optionsForClientTLS(hostname.decode(), trustRoot=self.cert)


class InstalledPackage(unittest.TestCase):
    timeout = BUILD_TIMEOUT_S + 180

    async def setUp(self) -> None:
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.env = clean_env(os.path.join(self.work, "home"))
        self.env["OPENCLAW_TW_CONTROL_UI"] = "builtin"
        os.makedirs(self.env["HOME"])
        self.venv = os.path.join(self.work, "venv")
        await run([sys.executable, "-m", "venv", self.venv], self.env, self.work, "python -m venv")
        await run([f"{self.venv}/bin/pip", "install", "-q", "--disable-pip-version-check",
                   str(REPO)], self.env, self.work, "pip install . (no extras)")
        where = await run([f"{self.venv}/bin/python", "-c",
                           "import openclaw_tw; print(openclaw_tw.__file__)"],
                          self.env, self.work, "import from the venv")
        self.assertTrue(where.strip().startswith(self.venv), where)

    async def start_fakes(self) -> dict[str, Any]:
        """Every optional feature's counterpart, and the config that turns each one on."""
        self.provider = FakeOpenAI(reactor, api_key="sk-installed").start()
        self.addCleanup(self.provider.stop)
        self.provider.behave(text=REPLY)
        self.bot_api = FakeBotAPI(BOT_TOKEN)
        api_port = reactor.listenTCP(0, server.Site(self.bot_api), interface="127.0.0.1")
        self.addCleanup(api_port.stopListening)
        self.addCleanup(self.bot_api.release_all)
        channels: dict[str, Any] = {
            "telegram": {"botToken": BOT_TOKEN, "pollTimeoutSeconds": 2,
                         "apiRoot": f"http://127.0.0.1:{api_port.getHost().port}",
                         "dmPolicy": "open", "allowFrom": ["*"]},
        }
        if synapse_missing() is None:
            self.synapse = Synapse(os.path.join(self.work, "synapse"))
            self.addCleanup(self.synapse.stop)
            await self.synapse.start()
            bot = await self.synapse.register("claw", MATRIX_PASSWORD)
            channels["matrix"] = {"homeserver": self.synapse.url, "userId": bot["user_id"],
                                  "password": MATRIX_PASSWORD,
                                  "network": {"dangerouslyAllowPrivateNetwork": True}}
        if NGIRCD is not None:
            irc_port = free_port()
            conf = os.path.join(self.work, "ngircd.conf")
            Path(conf).write_text(
                "[Global]\nName = irc.test.local\nInfo = installed tier\nListen = 127.0.0.1\n"
                f"Ports = {irc_port}\nMotdPhrase = test\n[Limits]\nMaxConnectionsIP = 0\n"
                "[Options]\nPAM = no\nIdent = no\nDNS = no\n")
            ircd = ChildProcess(ready_marker=b"Now listening on")
            reactor.spawnProcess(ircd, NGIRCD, [NGIRCD, "-n", "-f", conf], env=self.env)
            self.addCleanup(ircd.stop)
            await ircd.ready.addTimeout(WAIT_S, reactor)
            channels["irc"] = {"host": "127.0.0.1", "port": irc_port, "nick": "claw",
                               "tls": False}
        return {
            "gateway": {"tls": {"enabled": True},
                        "http": {"endpoints": {"chatCompletions": {"enabled": True}}}},
            "discovery": {"mdns": {"mode": "minimal"}},
            "hooks": {"enabled": True, "token": HOOKS_TOKEN},
            "models": {"providers": {"fake": {
                "baseUrl": self.provider.base_url, "apiKey": "sk-installed",
                "api": "openai-completions", "models": [{"id": "fake-model"}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
            "channels": channels,
        }

    async def start_gateway(self, config: dict[str, Any]) -> ChildProcess:
        state = os.path.join(self.work, "state")
        path = os.path.join(self.work, "openclaw.json")
        Path(path).write_text(json.dumps(config))
        self.port = free_port()
        gateway = ChildProcess(ready_marker=b"gateway listening on")
        argv = [f"{self.venv}/bin/twistd", "-n", "--pidfile=", "openclaw", "--port",
                str(self.port), "--token", TOKEN, "--state-dir", state, "--config", path]
        reactor.spawnProcess(gateway, argv[0], argv, env=self.env, path=self.work)
        self.addCleanup(gateway.stop)
        try:
            await gateway.ready.addTimeout(WAIT_S, reactor)
        except Exception as e:
            raise unittest.FailTest(f"the installed gateway did not start ({e}):\n"
                                    f"{gateway.text[-3000:]}") from None
        self.cert_pem = Path(state, "gateway", "tls", "gateway-cert.pem").read_bytes()
        self.http = HTTPClient(Agent(reactor, contextFactory=TrustOne(self.cert_pem)))
        return gateway

    async def client_call(self, method: str, params: dict[str, Any]) -> Any:
        """The installed ``openclaw-tw`` client over wss://, trusting the gateway's cert."""
        ca = os.path.join(self.work, "gateway-cert.pem")
        Path(ca).write_bytes(self.cert_pem)
        out = await run([f"{self.venv}/bin/openclaw-tw", "call", method, "--params",
                         json.dumps(params), "--url", f"wss://127.0.0.1:{self.port}",
                         "--token", TOKEN, "--ca-file", ca, "--json"],
                        self.env, self.work, f"openclaw-tw call {method}", WAIT_S)
        return json.loads(out)

    async def channels_connected(self, expected: set[str]) -> dict[str, Any]:
        """channels.status until every expected channel's default account is connected."""
        deadline = reactor.seconds() + WAIT_S
        while True:
            status = await self.client_call("channels.status", {})
            rows = {ch: accts[0] for ch, accts in status.get("channelAccounts", {}).items()
                    if accts}
            if all(rows.get(ch, {}).get("connected") for ch in expected):
                return rows
            if reactor.seconds() > deadline:
                self.fail(f"not every channel connected: {rows}")
            await task.deferLater(reactor, 0.2, lambda: None)

    async def test_every_configured_feature_answers(self) -> None:
        config = await self.start_fakes()
        gateway = await self.start_gateway(config)
        base = f"https://127.0.0.1:{self.port}"
        # start-up printed the features and their packages
        self.assertIn("model providers: fake [treq ok]", gateway.text)
        self.assertIn("mDNS: minimal [zeroconf ok]", gateway.text)

        # TLS: an HTTPS probe
        response = await self.http.get(f"{base}/health")
        self.assertEqual(response.code, 200, await response.text())

        # the model provider: a chat turn through the OpenAI-compatible endpoint
        response = await self.http.post(
            f"{base}/v1/chat/completions",
            json={"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {TOKEN}"})
        body = await response.json()
        self.assertEqual(response.code, 200, body)
        self.assertEqual(body["choices"][0]["message"]["content"], REPLY)

        # hooks
        response = await self.http.post(f"{base}/hooks/wake", json={"text": "installed"},
                                        headers={"Authorization": f"Bearer {HOOKS_TOKEN}"})
        self.assertEqual(response.code, 200, await response.text())

        # the built-in dashboard, from the installed package's data files
        response = await self.http.get(f"{base}/", headers={"Accept": "text/html"})
        index = await response.text()
        self.assertEqual(response.code, 200, index)
        self.assertIn('<script type="module" src="/assets/app.js"></script>', index)
        for asset in ("app.js", "gateway.js", "device.js", "chat.js", "dashboard.css"):
            response = await self.http.get(f"{base}/assets/{asset}")
            self.assertEqual(response.code, 200, f"{asset}: {await response.text()}")
        self.assertIn("serving the built-in dashboard", gateway.text)

        # channels: every configured account connected; a Telegram DM answered by the provider
        rows = await self.channels_connected(set(config["channels"]))
        self.assertEqual(set(rows), set(config["channels"]), rows)
        self.bot_api.push({"message_id": 1, "date": 1795000000, "text": "hello bot",
                           "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
                           "chat": {"id": 42, "type": "private"}})
        sent = await self.bot_api.sent.get().addTimeout(WAIT_S, reactor)
        self.assertEqual((sent["chat_id"], sent["text"]), ("42", REPLY))

        # mDNS minimal: the advertisement is found by a query on loopback
        info = await deferToThread(browse_gateway)
        self.assertIsNotNone(info, f"no _openclaw-gw._tcp answer:\n{gateway.text[-2000:]}")
        self.assertEqual(info.port, self.port)
        self.assertEqual(info.properties.get(b"gatewayTls"), b"1")


def browse_gateway() -> Any:
    """One zeroconf browse for the gateway's service on loopback (blocking: run in a thread)."""
    found: list[str] = []
    seen = threading.Event()

    class Listener(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            found.append(name)
            seen.set()

        def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

        def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

    zc = Zeroconf(interfaces=["127.0.0.1"])
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, Listener())
        seen.wait(10)
        browser.cancel()
        return zc.get_service_info(SERVICE_TYPE, found[0], timeout=3000) if found else None
    finally:
        zc.close()
