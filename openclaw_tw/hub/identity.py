"""The gateway's own Ed25519 identity, created once in the state dir."""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openclaw_tw.b64 import b64url
from openclaw_tw.config.settings import atomic_write

KEY_FILE = "identity/gateway-ed25519.pem"


def device_id_for(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()


@attrs.frozen
class GatewayIdentity:
    private_key: Ed25519PrivateKey
    device_id: str
    public_key: str  # base64url, raw 32 bytes, no padding

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def _from_key(key: Ed25519PrivateKey) -> GatewayIdentity:
    raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return GatewayIdentity(key, device_id_for(raw), b64url(raw))


def load_or_create(state_dir: Path, key_file: str = KEY_FILE) -> GatewayIdentity:
    path = state_dir / key_file
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        atomic_write(path, pem)
        return _from_key(key)
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    return _from_key(loaded)
