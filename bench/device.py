"""Ed25519 device identity for signed connects (protocol §4.4).

``device.id`` is the sha256 hex of the raw 32-byte public key, keys and signatures are base64url
without padding, and the signed text is the v3 payload
``v3|id|clientId|mode|role|scopes|signedAt|token|nonce|platform|deviceFamily`` where
``signedAt`` is the challenge ``ts`` and platform/deviceFamily are trimmed and ASCII-lowercased.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _lower(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in value.strip())


def v3_payload(device_id: str, client_id: str, mode: str, role: str, scopes: list[str],
               signed_at: int, token: str, nonce: str, platform: str | None,
               device_family: str | None) -> bytes:
    return "|".join(["v3", device_id, client_id, mode, role, ",".join(scopes), str(signed_at),
                     token, nonce, _lower(platform), _lower(device_family)]).encode("utf-8")


class DeviceKey:
    def __init__(self, key: Ed25519PrivateKey | None = None) -> None:
        self.key = key or Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = b64url(raw)
        self.device_id = hashlib.sha256(raw).hexdigest()

    def sign_connect(self, params: dict[str, Any], nonce: str, ts: int) -> dict[str, Any]:
        """The ``device`` block for ``params`` (a connect request) answering challenge nonce/ts."""
        client = params["client"]
        auth = params.get("auth") or {}
        token = auth.get("token") or auth.get("deviceToken") or auth.get("bootstrapToken") or ""
        payload = v3_payload(self.device_id, client["id"], client["mode"],
                             params.get("role") or "operator", list(params.get("scopes") or ()),
                             ts, token, nonce, client.get("platform"), client.get("deviceFamily"))
        return {"id": self.device_id, "publicKey": self.public_key,
                "signature": b64url(self.key.sign(payload)), "signedAt": ts, "nonce": nonce}
