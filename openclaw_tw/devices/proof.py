"""Device proof (§4.4): Ed25519 over the v3 (then v2) payload, checked in the reference order.

Pure functions, no I/O.  Keys and signatures are accepted as base64url (the wire form), padded
or standard base64, and public keys also as PEM (SPKI).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from openclaw_tw.b64 import b64url
from openclaw_tw.errors import INVALID_REQUEST, GatewayError

SIGNATURE_SKEW_MS = 120_000


@attrs.frozen
class VerifiedDevice:
    device_id: str
    public_key: str  # canonical: base64url of the raw 32-byte key, no padding
    payload_version: str  # "v3" or "v2"


def device_error(message: str, code: str, reason: str) -> GatewayError:
    return GatewayError(INVALID_REQUEST, message, {"code": code, "reason": reason},
                        close_code=1008)


def decode_b64(text: str) -> bytes:
    """Both alphabets, padding optional."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def decode_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 key from base64/base64url/PEM; ValueError when impossible."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = decode_b64(text)
    except (binascii.Error, ValueError) as e:
        raise ValueError("not base64") from e
    if len(raw) == 44 and raw.startswith(bytes.fromhex("302a300506032b6570032100")):
        raw = raw[12:]  # DER SubjectPublicKeyInfo wrapping
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def _load_key(public_key: str) -> tuple[bytes, str, Ed25519PublicKey]:
    raw = decode_public_key(public_key)
    return raw, device_id_for(raw), Ed25519PublicKey.from_public_bytes(raw)


_cached_key = functools.lru_cache(maxsize=1024)(_load_key)
MAX_CACHED_KEY_TEXT = 256  # a base64url key is 43 characters, a PEM one about 113


def _verifier(public_key: str) -> tuple[bytes, str, Ed25519PublicKey]:
    """A device's public key as sent (raw bytes, device id, key object), decoded once: the
    text determines all three, so an entry is never stale -- removing or re-pairing a device
    changes what the authority decides, not what its key is.  A key that does not decode
    raises ValueError (not cached) every time; a long text (padding around a valid key) is
    decoded every time, so the cache stays small."""
    if len(public_key) > MAX_CACHED_KEY_TEXT:
        return _load_key(public_key)
    return _cached_key(public_key)


def device_id_for(raw_key: bytes) -> str:
    return hashlib.sha256(raw_key).hexdigest()


def _ascii_lower(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in value.strip())


def signed_token(auth: Mapping[str, Any]) -> str:
    for key in ("token", "deviceToken", "bootstrapToken"):
        value = auth.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def payloads(params: Mapping[str, Any], device: Mapping[str, Any]) -> dict[str, bytes]:
    client = params["client"]
    role = params.get("role") or "operator"
    scopes = ",".join(params.get("scopes") or ())
    token = signed_token(params.get("auth") or {})
    common = [device["id"], client["id"], client["mode"], role, scopes,
              str(device["signedAt"]), token, device["nonce"]]
    v3 = "|".join(["v3", *common, _ascii_lower(client.get("platform")),
                   _ascii_lower(client.get("deviceFamily"))])
    v2 = "|".join(["v2", *common])
    return {"v3": v3.encode("utf-8"), "v2": v2.encode("utf-8")}


def verify(params: Mapping[str, Any], nonce: str, now_ms: int) -> VerifiedDevice:
    """Check ``params["device"]`` against the challenge ``nonce``; raise the exact error."""
    device = params["device"]
    try:
        raw, device_id, key = _verifier(device["publicKey"])
    except ValueError:
        raise device_error("device public key invalid", "DEVICE_AUTH_PUBLIC_KEY_INVALID",
                           "device-public-key") from None
    if device["id"].strip().lower() != device_id:
        raise device_error("device identity mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH",
                           "device-id-mismatch")
    if abs(now_ms - int(device["signedAt"])) > SIGNATURE_SKEW_MS:
        raise device_error("device signature expired", "DEVICE_AUTH_SIGNATURE_EXPIRED",
                           "device-signature-stale")
    if not device["nonce"].strip():
        raise device_error("device nonce required", "DEVICE_AUTH_NONCE_REQUIRED",
                           "device-nonce-missing")
    if device["nonce"] != nonce:
        raise device_error("device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH",
                           "device-nonce-mismatch")
    invalid = device_error("device signature invalid", "DEVICE_AUTH_SIGNATURE_INVALID",
                           "device-signature")
    try:
        signature = decode_b64(device["signature"])
    except (binascii.Error, ValueError):
        raise invalid from None
    for version, payload in payloads(params, device).items():
        try:
            key.verify(signature, payload)
        except InvalidSignature:
            continue
        return VerifiedDevice(device_id, b64url(raw), version)
    raise invalid
