"""Loopback tier: remote device pairing over a real 127.0.0.1 port, Python clients only.

The same flow as ``tests/interop/test_remote_pairing.py`` (which drives the real CLI in a network
namespace), through the locality seam instead: the gateway trusts 127.0.0.1 as a proxy
(``gateway.trustedProxies``), so a client sending ``X-Forwarded-For: 192.0.2.50`` counts as
remote, while a client without the header is direct-local.  The remote client signs its
device connects itself (Ed25519, v3 payload), independently of ``openclaw_tw.devices.proof``:

1. remote device connect -> ``NOT_PAIRED``/``PAIRING_REQUIRED`` with a requestId, close 1008;
2. local admin (cli/cli, operator.admin + operator.pairing): ``device.pair.list`` shows it;
3. ``device.pair.approve``;
4. remote device connect again -> hello-ok with ``auth.deviceToken``;
5. remote device connect with only ``auth.deviceToken`` -> ``auth.method == "device-token"``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.config import settings as config
from tests.support.loopback import (
    RecordingClient,
    close_store,
    listen_loopback,
    require_clean_reactor,
    within,
)

TOKEN = "pairing-loopback-secret"
REMOTE_IP = "192.0.2.50"  # TEST-NET-1: only ever a header value here
ADMIN_SCOPES = ["operator.admin", "operator.pairing"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Device:
    """A client-side device identity that signs connects as the real CLI does."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        self.public_key = b64url(raw)
        self.device_id = hashlib.sha256(raw).hexdigest()

    def connect_params(self, challenge: dict[str, Any], auth: dict[str, str],
                       scopes: list[str]) -> dict[str, Any]:
        client = {"id": "cli", "version": "2026.9.6", "platform": "linux", "mode": "cli",
                  "deviceFamily": "Linux", "instanceId": str(uuid.uuid4())}
        role = "operator"
        nonce, signed_at = challenge["nonce"], challenge["ts"]
        token = auth.get("token") or auth.get("deviceToken") or ""
        payload = "|".join([
            "v3", self.device_id, client["id"], client["mode"], role, ",".join(scopes),
            str(signed_at), token, nonce, client["platform"].lower(),
            client["deviceFamily"].lower(),
        ])
        return {
            "minProtocol": 4, "maxProtocol": 4, "client": client, "caps": [], "role": role,
            "scopes": scopes, "auth": auth,
            "device": {"id": self.device_id, "publicKey": self.public_key,
                       "signature": b64url(self.key.sign(payload.encode("utf-8"))),
                       "signedAt": signed_at, "nonce": nonce},
        }


class SeeingClient(RecordingClient):
    """``RecordingClient`` that also keeps every frame (``next_frame`` skips what it passes)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.seen.append(json.loads(payload))
        super().onMessage(payload, isBinary)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [f for f in self.seen if f.get("type") == "event" and f.get("event") == name]


class PairingLoopbackTests(unittest.TestCase):
    timeout = 20

    def setUp(self) -> None:
        require_clean_reactor(self)
        state = os.path.abspath(self.mktemp())
        os.makedirs(state)
        with open(os.path.join(state, "openclaw.json"), "w") as f:
            json.dump({"gateway": {"trustedProxies": ["127.0.0.1"]}}, f)
        self.settings = config.resolve({"port": "0", "token": TOKEN, "state-dir": state},
                                       env={"HOME": state})
        self.assertEqual(self.settings.trusted_proxies, ("127.0.0.1",))
        self.app = composition.build(self.settings, reactor)
        self.gw = self.app.hub
        self.gw.startService()
        self.port = listen_loopback(tap.build_site(self.app))
        self.port_number = self.port.getHost().port
        self.url = f"ws://127.0.0.1:{self.port_number}"
        self.clients: list[SeeingClient] = []

    async def tearDown(self) -> None:
        # Clients first, each socket gone on our side; then the port and the hub (the service
        # tree's order); then every server-side connection gone too.
        for client in self.clients:
            if client.state == client.STATE_OPEN:
                client.sendClose()
            elif not client.lost.called and client.state != client.STATE_CLOSING:
                client.transport.loseConnection()
        await defer.gatherResults([c.lost for c in self.clients])
        await defer.maybeDeferred(self.port.stopListening)
        if self.gw.running:
            await self.gw.stopService()
        await defer.gatherResults([conn.lost for conn in self.port.connections])
        close_store(self.app)
        self.assertEqual(self.gw.conns, {})

    async def open_client(self, forwarded_for: str | None = None
                          ) -> tuple[SeeingClient, dict[str, Any]]:
        """A connected socket and its ``connect.challenge`` payload."""
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        factory = WebSocketClientFactory(self.url, headers=headers)
        factory.protocol = SeeingClient
        factory.setProtocolOptions(closeHandshakeTimeout=0, openHandshakeTimeout=5)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port_number)
        client: SeeingClient = await endpoint.connect(factory)
        self.clients.append(client)
        await within(client.opened, "websocket handshake")
        challenge = await client.next_frame("event", "connect.challenge")
        return client, challenge["payload"]

    async def remote_connect(self, device: Device, auth: dict[str, str]
                             ) -> tuple[SeeingClient, dict[str, Any]]:
        client, challenge = await self.open_client(forwarded_for=REMOTE_IP)
        res = await client.request("connect", device.connect_params(
            challenge, auth, ["operator.read"]))
        return client, res

    async def admin(self) -> SeeingClient:
        """Direct-local, device-less cli/cli with the shared token: keeps its scopes."""
        client, _challenge = await self.open_client()
        params = {
            "minProtocol": 4, "maxProtocol": 4,
            "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "mode": "cli",
                       "instanceId": str(uuid.uuid4())},
            "caps": [], "role": "operator", "scopes": ADMIN_SCOPES, "auth": {"token": TOKEN},
        }
        res = await client.request("connect", params)
        self.assertTrue(res["ok"], res)
        self.assertEqual(sorted(res["payload"]["auth"]["scopes"]), sorted(ADMIN_SCOPES))
        return client

    async def until_seen(self, client: SeeingClient, event: str) -> None:
        if not client.events(event):
            await client.next_frame("event", event)

    async def test_remote_device_pairing_flow(self) -> None:
        device = Device()
        admin = await self.admin()

        # 1. Remote device, first contact: pairing required, the socket closed with 1008.
        remote, res = await self.remote_connect(device, {"token": TOKEN})
        self.assertFalse(res["ok"], res)
        error = res["error"]
        self.assertEqual(error["code"], "NOT_PAIRED", res)
        self.assertIn("pairing required", error["message"])
        details = error["details"]
        self.assertEqual(details["code"], "PAIRING_REQUIRED", res)
        self.assertEqual(details["reason"], "not-paired", res)
        self.assertEqual(details["deviceId"], device.device_id)
        request_id = details["requestId"]
        self.assertIsInstance(request_id, str)
        code, reason = await within(remote.closed, "close after PAIRING_REQUIRED")
        self.assertEqual(code, 1008)
        self.assertIn(request_id, reason or "")
        await remote.lost

        # The admin (operator.pairing) is told about the request.
        await admin.next_frame("event", "device.pair.requested")
        self.assertEqual([e["payload"]["requestId"] for e in
                          admin.events("device.pair.requested")], [request_id])

        # 2. The local admin lists it: seen from the forwarded (remote) address.
        listed = await admin.request("device.pair.list")
        self.assertTrue(listed["ok"], listed)
        pending = {p["requestId"]: p for p in listed["payload"]["pending"]}
        self.assertIn(request_id, pending, listed)
        entry = pending[request_id]
        self.assertEqual(entry["deviceId"], device.device_id)
        self.assertEqual(entry["publicKey"], device.public_key)
        self.assertNotIn("reason", entry)  # the real pending record keeps no reason
        self.assertEqual(entry["remoteIp"], REMOTE_IP)
        self.assertEqual(entry["scopes"], ["operator.read"])
        self.assertEqual(listed["payload"]["paired"], [])

        # 3. ... and approves it.
        approved = await admin.request("device.pair.approve", {"requestId": request_id})
        self.assertTrue(approved["ok"], approved)
        self.assertEqual(approved["payload"]["requestId"], request_id)
        self.assertEqual(approved["payload"]["device"]["deviceId"], device.device_id)
        # The broadcast goes out with the approval (here, just before the response).
        await self.until_seen(admin, "device.pair.resolved")
        resolved = admin.events("device.pair.resolved")[0]["payload"]
        self.assertEqual((resolved["requestId"], resolved["deviceId"], resolved["decision"]),
                         (request_id, device.device_id, "approved"))
        listed = await admin.request("device.pair.list")
        self.assertEqual(listed["payload"]["pending"], [], listed)
        self.assertEqual([d["deviceId"] for d in listed["payload"]["paired"]],
                         [device.device_id])

        # 4. The remote device again, shared token: hello-ok hands over its device token.
        remote, res = await self.remote_connect(device, {"token": TOKEN})
        self.assertTrue(res["ok"], res)
        auth = res["payload"]["auth"]
        self.assertEqual(auth["method"], "token")
        self.assertEqual(auth["scopes"], ["operator.read"])
        device_token = auth.get("deviceToken")
        self.assertIsInstance(device_token, str, auth)
        self.assertTrue(device_token)
        conn = self.gw.conns[res["payload"]["server"]["connId"]]
        self.assertEqual(conn.peer_info.ip, REMOTE_IP)
        self.assertEqual(conn.device_id, device.device_id)
        remote.sendClose()
        await remote.lost

        # 5. Only the device token, no shared secret: accepted as device-token auth.
        remote, res = await self.remote_connect(device, {"deviceToken": device_token})
        self.assertTrue(res["ok"], res)
        auth = res["payload"]["auth"]
        self.assertEqual(auth["method"], "device-token")
        self.assertEqual(auth["role"], "operator")
        self.assertEqual(auth["scopes"], ["operator.read"])
        presence = await remote.request("system-presence")
        self.assertTrue(presence["ok"], presence)

    async def test_device_token_without_pairing_is_refused(self) -> None:
        """A made-up device token from an unpaired remote device is not a way in."""
        remote, res = await self.remote_connect(Device(), {"deviceToken": "not-a-real-token"})
        self.assertFalse(res["ok"], res)
        self.assertEqual(res["error"]["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH", res)
        code, _reason = await within(remote.closed, "close after the refusal")
        self.assertEqual(code, 1008)
        await remote.lost
        self.assertEqual(self.gw.devices.store.pending, {})
