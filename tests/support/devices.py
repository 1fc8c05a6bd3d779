"""Device identities for the in-memory harness: ``Device`` signs connect params the way the
real CLI does (Ed25519 over the v3/v2 payload), and ``DeviceCase`` is a gateway with one device
and device-less local operators to administer it (used by the device test modules)."""

from __future__ import annotations

import base64
import hashlib
import string
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.scopes import ADMIN, PAIRING, READ
from tests.support.helpers import TOKEN, WSClient, hello, make_gateway

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def ascii_lower(value: str | None) -> str:
    return (value or "").strip().translate(_LOWER)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Device:
    """A client device: an Ed25519 key that signs connect params (v3 by default)."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.id = hashlib.sha256(self.raw).hexdigest()
        self.public_key = b64url(self.raw)

    def params(self, nonce: str, signed_at: int, *, token: str | None = TOKEN,
               device_token: str | None = None, role: str = "operator",
               scopes: list[str] | None = None, client_id: str = "cli", mode: str = "cli",
               platform: str = "linux", device_family: str | None = None,
               version: str = "v3", sign_platform: str | None = None) -> dict[str, Any]:
        scopes = ["operator.read"] if scopes is None else scopes
        auth = {k: v for k, v in (("token", token), ("deviceToken", device_token)) if v}
        client = {"id": client_id, "version": "2026.9.6", "platform": platform, "mode": mode}
        if device_family is not None:
            client["deviceFamily"] = device_family
        params: dict[str, Any] = {"minProtocol": 4, "maxProtocol": 4, "client": client,
                                  "role": role, "scopes": list(scopes), "caps": []}
        if auth:
            params["auth"] = auth
        fields = [version, self.id, client_id, mode, role, ",".join(scopes), str(signed_at),
                  auth.get("token") or auth.get("deviceToken") or "", nonce]
        if version == "v3":
            fields += [ascii_lower(platform) if sign_platform is None else sign_platform,
                       ascii_lower(device_family)]
        signature = b64url(self.key.sign("|".join(fields).encode("utf-8")))
        params["device"] = {"id": self.id, "publicKey": self.public_key,
                            "signature": signature, "signedAt": signed_at, "nonce": nonce}
        return params

    def send_connect(self, client: WSClient, signed_at: int | None = None, **kw: Any) -> str:
        """Sign over the client's challenge nonce (at the gateway's now) and send connect."""
        nonce = client.challenge()["payload"]["nonce"]
        at = client.gw.now_ms() if signed_at is None else signed_at
        return client.request("connect", self.params(nonce, at, **kw))

    def connect(self, client: WSClient, signed_at: int | None = None,
                **kw: Any) -> dict[str, Any] | None:
        """``send_connect``; the response, if already answered."""
        return client.response(self.send_connect(client, signed_at, **kw))


# -- a gateway, a device and its administrators ------------------------------------------------

REMOTE = "10.9.9.9"
DEVICE_TOKEN_MISMATCH = {
    "code": "INVALID_REQUEST",
    "message": "unauthorized: device token mismatch (rotate/reissue device token)",
    "details": {"code": "AUTH_DEVICE_TOKEN_MISMATCH", "authReason": "device_token_mismatch",
                "canRetryWithDeviceToken": False, "recommendedNextStep": "update_auth_credentials"},
}
SCOPE_MISMATCH = {
    "code": "INVALID_REQUEST",
    "message": "unauthorized: device token scope mismatch (re-pair or approve scope upgrade)",
    "details": {"code": "AUTH_SCOPE_MISMATCH", "authReason": "scope_mismatch",
                "canRetryWithDeviceToken": False,
                "recommendedNextStep": "review_auth_configuration"},
}


class DeviceCase(SynchronousTestCase):
    """A gateway, one device, and device-less local operators to administer it."""

    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.dev = Device()
        self.pairer = hello(self.gw, scopes=[PAIRING])
        self.admin = hello(self.gw, scopes=[ADMIN])

    def attempt(self, dev: Device | None = None, ip: str = "127.0.0.1", **kw: Any
                ) -> tuple[WSClient, dict[str, Any]]:
        """A device-signed connect; waits out any auth-limiter delay (small clock steps)."""
        c = WSClient(self.gw, ip=ip)
        rid = (dev or self.dev).send_connect(c, **kw)
        res = c.response(rid)
        for _ in range(40):
            if res is not None:
                break
            self.clock.advance(0.25)
            res = c.response(rid)
        assert res is not None, "no answer to connect"
        return c, res

    def ok(self, dev: Device | None = None, ip: str = "127.0.0.1", **kw: Any
           ) -> tuple[WSClient, dict[str, Any]]:
        c, res = self.attempt(dev, ip, **kw)
        self.assertTrue(res["ok"], res)
        c.pop()
        return c, res["payload"]

    def refused(self, dev: Device | None = None, ip: str = "127.0.0.1", **kw: Any
                ) -> dict[str, Any]:
        """The error; asserts the close 1008 with the message (+ requestId) after it."""
        c, res = self.attempt(dev, ip, **kw)
        self.assertFalse(res["ok"], res)
        closed = c.closed()
        assert closed is not None, "refused without a close frame"
        rid = (res["error"].get("details") or {}).get("requestId")
        reason = res["error"]["message"] + (f" (requestId: {rid})" if rid else "")
        self.assertEqual((closed.code, closed.reason), (1008, reason))
        return dict(res["error"])

    @staticmethod
    def close_of(c: WSClient) -> tuple[int | None, str]:
        """(code, reason) of the close frame c received; (None, "") while still open."""
        closed = c.closed()
        return (None, "") if closed is None else (closed.code, closed.reason)

    def call(self, c: WSClient, method: str, params: Any = None) -> dict[str, Any]:
        res = c.response(c.request(method, params if params is not None else {}))
        assert res is not None, f"no answer to {method}"
        return res

    def listing(self) -> dict[str, Any]:
        res = self.call(self.pairer, "device.pair.list")
        self.assertTrue(res["ok"], res)
        return dict(res["payload"])

    def paired(self) -> dict[str, Any] | None:
        return next((d for d in self.listing()["paired"] if d["deviceId"] == self.dev.id), None)

    def events(self, c: WSClient, name: str) -> list[dict[str, Any]]:
        c.flush()
        return [e["payload"] for e in c.events(name)]

    def pending_request(self, **kw: Any) -> str:
        """A remote NOT_PAIRED attempt; returns its requestId."""
        err = self.refused(ip=REMOTE, **kw)
        self.assertEqual(err["code"], "NOT_PAIRED", err)
        return str(err["details"]["requestId"])

    def pair_locally(self, scopes: list[str] | None = None) -> str:
        """Silent local pairing; returns the device token."""
        c, hello_ok = self.ok(scopes=scopes or [READ])
        c.close_from_client(1000)
        return str(hello_ok["auth"]["deviceToken"])
