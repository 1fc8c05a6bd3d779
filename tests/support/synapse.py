"""A real Matrix homeserver for the Matrix provider's tests: Synapse (``matrix-synapse`` from
PyPI, in its own venv made by ``scripts/install-synapse.sh``), SQLite, one loopback port, users
registered through the shared-secret admin API, started fresh per test (about 1.5 s).

``Human`` is the person at the other end: a small client-server API client over treq that
creates rooms, sends messages and reads what the bot answers through its own ``/sync``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.web.client import Agent, HTTPConnectionPool

from tests.support.children import ChildProcess
from tests.support.loopback import free_port

SYNAPSE_PYTHON = os.environ.get("OPENCLAW_SYNAPSE_PYTHON") or os.path.expanduser(
    "~/.cache/openclaw_tw/synapse/venv/bin/python")
SHARED_SECRET = "openclaw-test-registration-secret"
SERVER_NAME = "localhost"
API = "/_matrix/client/v3"
READY = b"Synapse now listening on TCP port"


def _http() -> HTTPClient:
    """A client that keeps no connections open between requests (nothing left for the test's
    clean-reactor check)."""
    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


def synapse_missing() -> str | None:
    """Why the Synapse tier cannot run here, or None."""
    if not os.path.exists(SYNAPSE_PYTHON):
        return (f"Synapse is not installed ({SYNAPSE_PYTHON} missing; run "
                "scripts/install-synapse.sh — .ci/run does)")
    return None


def _rate(n: int = 1000) -> dict[str, int]:
    return {"per_second": n, "burst_count": n}


def config(root: str, port: int) -> str:
    """homeserver.yaml (JSON is YAML): client API only, no federation, no outbound traffic,
    rate limits out of the way of the tests."""
    return json.dumps({
        "server_name": SERVER_NAME,
        "pid_file": f"{root}/homeserver.pid",
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http",
                       "tls": False, "x_forwarded": False,
                       "resources": [{"names": ["client"], "compress": False}]}],
        "database": {"name": "sqlite3", "args": {"database": f"{root}/homeserver.db"}},
        "media_store_path": f"{root}/media",
        "signing_key_path": f"{root}/signing.key",
        "registration_shared_secret": SHARED_SECRET,
        "macaroon_secret_key": "openclaw-test-macaroon",
        "form_secret": "openclaw-test-form",
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "enable_metrics": False,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "rc_message": _rate(), "rc_registration": _rate(), "rc_joins": {"local": _rate()},
        "rc_login": {"address": _rate(), "account": _rate(), "failed_attempts": _rate()},
        "rc_invites": {"per_room": _rate(), "per_user": _rate()},
    })


def signing_key() -> str:
    seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                      NoEncryption())
    return "ed25519 a_test " + base64.b64encode(seed).decode().rstrip("=") + "\n"


class Synapse:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ChildProcess | None = None
        os.makedirs(self.root, exist_ok=True)
        with open(f"{self.root}/homeserver.yaml", "w") as f:
            f.write(config(self.root, self.port))
        with open(f"{self.root}/signing.key", "w") as f:
            f.write(signing_key())

    async def start(self) -> None:
        self.process = ChildProcess(ready_marker=READY)
        reactor.spawnProcess(self.process, SYNAPSE_PYTHON,
                             [SYNAPSE_PYTHON, "-m", "synapse.app.homeserver", "-c",
                              f"{self.root}/homeserver.yaml"],
                             env={**os.environ, "SYNAPSE_CACHE_FACTOR": "0.1"},
                             path=self.root)
        await self.process.ready.addTimeout(60, reactor)

    async def kill(self) -> None:
        if self.process is not None:
            self.process.signal("KILL")
            await self.process.exited().addTimeout(15, reactor)

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()

    async def register(self, user: str, password: str) -> dict[str, Any]:
        http = _http()
        nonce = (await (await http.get(f"{self.url}/_synapse/admin/v1/register")).json())
        mac = hmac.new(SHARED_SECRET.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce["nonce"].encode(), user.encode(), password.encode(),
                                 b"notadmin"]))
        response = await http.post(
            f"{self.url}/_synapse/admin/v1/register",
            json={"nonce": nonce["nonce"], "username": user, "password": password,
                  "admin": False, "mac": mac.hexdigest()})
        body = await response.json()
        assert response.code == 200, body
        return dict(body)

    async def human(self, user: str, password: str = "human-password") -> Human:
        reg = await self.register(user, password)
        human = Human(self.url, reg["user_id"], reg["access_token"])
        await human.sync()  # start reading from "now"
        return human


class Human:
    def __init__(self, url: str, user_id: str, token: str) -> None:
        self.url = url
        self.user_id = user_id
        self.token = token
        self.since: str | None = None
        self.inbox: list[tuple[str, dict[str, Any]]] = []  # (room, event) from others
        self.txn = 0
        self.http = _http()

    async def call(self, method: str, path: str, body: Any = None,
                   query: dict[str, str] | None = None) -> Any:
        response = await self.http.request(
            method, self.url + API + path, json=body, params=query,
            headers={"Authorization": f"Bearer {self.token}"}, timeout=40)
        data = await response.json()
        assert response.code == 200, (method, path, response.code, data)
        return data

    async def create_dm(self, bot: str) -> str:
        created = await self.call("POST", "/createRoom", {
            "is_direct": True, "invite": [bot], "preset": "trusted_private_chat"})
        return str(created["room_id"])

    async def create_group(self, invite: list[str], alias: str | None = None,
                           name: str = "ops") -> str:
        body: dict[str, Any] = {"invite": invite, "preset": "private_chat", "name": name}
        if alias:
            body["room_alias_name"] = alias
        created = await self.call("POST", "/createRoom", body)
        return str(created["room_id"])

    async def join(self, room: str) -> None:
        await self.call("POST", f"/join/{quote(room, safe='')}", {})

    async def say(self, room: str, text: str, **content: Any) -> str:
        self.txn += 1
        sent = await self.call(
            "PUT", f"/rooms/{quote(room, safe='')}/send/m.room.message/h{self.txn}",
            {"msgtype": "m.text", "body": text, **content})
        return str(sent["event_id"])

    async def sync(self, timeout_ms: int = 0) -> list[tuple[str, dict[str, Any]]]:
        query = {"timeout": str(timeout_ms),
                 "filter": json.dumps({"room": {"timeline": {"limit": 1000}}})}
        if self.since:
            query["since"] = self.since
        data = await self.call("GET", "/sync", query=query)
        fresh = self.since is not None
        self.since = data["next_batch"]
        got = []
        for room, joined in (data.get("rooms") or {}).get("join", {}).items():
            for ev in (joined.get("timeline") or {}).get("events", []):
                if fresh and ev.get("type") == "m.room.message" and \
                        ev.get("sender") != self.user_id:
                    got.append((room, ev))
        self.inbox += got
        return got

    async def next_message(self, deadline_s: float = 20) -> tuple[str, dict[str, Any]]:
        """The next message someone else posted in a room this user is in."""
        end = reactor.seconds() + deadline_s
        while not self.inbox:
            if reactor.seconds() >= end:
                raise AssertionError(f"{self.user_id}: no message within {deadline_s}s")
            await self.sync(timeout_ms=1000)
        return self.inbox.pop(0)
