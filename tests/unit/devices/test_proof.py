"""Device proof (§4.4): Ed25519 over the v3/v2 payload, key and signature encodings, and the
exact failure table, both as pure ``proof.verify`` calls and over the wire (close 1008).

Vectors: the real CLI connect of ``traces/health-remote-device.jsonl`` (v3) and the Python
client's connects of ``traces/device-auth.jsonl`` (conn 6 is v2; conns 1-4 are the captured
failures).  ``Device``, the signing helper, is in ``tests/support/devices.py``.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.devices import proof
from openclaw_tw.errors import GatewayError
from tests.support.devices import Device, ascii_lower, b64url
from tests.support.helpers import Closed, WSClient, make_gateway

# -- trace vectors -------------------------------------------------------------------------------

CLI_NONCE, CLI_TS = "eda93878-a023-44df-bb11-e09ef275986b", 1795287727232
CLI_V3 = {  # traces/health-remote-device.jsonl, the real `openclaw health` CLI
    "minProtocol": 4, "maxProtocol": 4,
    "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "deviceFamily": "Linux",
               "mode": "cli", "instanceId": "c6f847ad-fe87-4621-adee-92e097f610c7"},
    "caps": [], "auth": {"token": "secret123"}, "role": "operator", "scopes": ["operator.read"],
    "device": {"id": "def7673ab758f30afbd13b3c5c953f3981b462e8e08cc15ef21d2d188c447129",
               "publicKey": "dT_on7xTeBeuANELO9XR0UNjKv3Rvm3afd6JlIuvTFU",
               "signature": "9Wa6g6N45Sv3XYD2sfaXOoXKOSpQNARWFLAXHVMZv5i2MXSUE71sYO8jk2MRNUSJ2bNz"
                            "lz--z6WWpfY24UymDg",
               "signedAt": CLI_TS, "nonce": CLI_NONCE}}

PY_ID = "ca951c0fe1f69c06f7f0a5d46e8692347d9a0a915a473c7799c6a5eeea7ba622"
PY_KEY = "xlLg3plj0zgN86Qj3wNFnwCA9XryIzDBWdr4sKvjsxw"


def py_params(nonce: str, signed_at: int, signature: str, device_id: str = PY_ID
              ) -> dict[str, Any]:
    """A connect of traces/device-auth.jsonl (Python client, scopes read+write)."""
    return {"minProtocol": 4, "maxProtocol": 4,
            "client": {"id": "cli", "version": "0.1.0", "platform": "linux", "mode": "cli"},
            "caps": [], "role": "operator", "scopes": ["operator.read", "operator.write"],
            "auth": {"token": "secret123"},
            "device": {"id": device_id, "publicKey": PY_KEY, "signature": signature,
                       "signedAt": signed_at, "nonce": nonce}}


V2_NONCE, V2_TS = "80590132-a935-4fc4-afa9-4b2f6eec39e7", 1795287843310
PY_V2 = py_params(V2_NONCE, V2_TS, "BYF3oku_njOJAA2R8ANaeACFwVhxNojhd4ZYYU4Z12_cHjy70Arf_-yIEc4"
                                   "P50uXJLKkUjDkWm1Aa9Xy-aBiDw")

# (challenge nonce, challenge ts, params, expected details.code) for device-auth.jsonl conns 1-4.
TRACE_FAILURES = [
    ("5256f6b9-57ba-4be3-aa18-88465422f894", 1795287841732, py_params(
        "5256f6b9-57ba-4be3-aa18-88465422f894", 1795287841732,
        "6YkZzpXlGCcrw9Rk01WQLk-6s7VOGZJzHoWRZ6QbkhH97gjlmMj1lYjH_kjbivtNWps0iiaKPdbcGaLkX2AAAA"),
     "DEVICE_AUTH_SIGNATURE_INVALID"),
    ("89e06eab-6dde-4c23-b835-9e84c1fd273b", 1795287842044, py_params(
        "89e06eab-6dde-4c23-b835-9e84c1fd273b", 1795287242044,
        "2g4J_KkOXXxwVFuyNPyCBVerkFb9L3rD3UUHIbcqosvLTlxhrU2ncjXuZ4iopvZb1MrieKMQiYm8lUzJhWSwCA"),
     "DEVICE_AUTH_SIGNATURE_EXPIRED"),
    ("21e08321-e333-4db2-88d9-8edaf55da77c", 1795287842352, py_params(
        "not-the-nonce", 1795287842352,
        "2OxejteXof9nZG5IGI7srMGm__dNzFTZdMFwYLOZmWSBGEjlhFjpUk43o78YhzHLOxPyMpWwOD9iBCThDhLbDg"),
     "DEVICE_AUTH_NONCE_MISMATCH"),
    ("029b6a2d-0417-4fa1-99d6-37531e9123f7", 1795287842662, py_params(
        "029b6a2d-0417-4fa1-99d6-37531e9123f7", 1795287842662,
        "i3jAITrLk4BX-2sIvPGI1bbIoeTWPVtuUzcpnxqRW7ksqjTQdZs2ofDEqiY86HqokuoMzFrfUuGdTq79b5QaDA",
        device_id="0" * 64), "DEVICE_AUTH_DEVICE_ID_MISMATCH"),
]

FAILURES = {  # details.code -> (message, details.reason), §4.4 table
    "DEVICE_AUTH_DEVICE_ID_MISMATCH": ("device identity mismatch", "device-id-mismatch"),
    "DEVICE_AUTH_SIGNATURE_EXPIRED": ("device signature expired", "device-signature-stale"),
    "DEVICE_AUTH_NONCE_REQUIRED": ("device nonce required", "device-nonce-missing"),
    "DEVICE_AUTH_NONCE_MISMATCH": ("device nonce mismatch", "device-nonce-mismatch"),
    "DEVICE_AUTH_SIGNATURE_INVALID": ("device signature invalid", "device-signature"),
    "DEVICE_AUTH_PUBLIC_KEY_INVALID": ("device public key invalid", "device-public-key"),
}


def encodings(raw: bytes) -> list[str]:
    """url/std alphabet x padded/unpadded."""
    url, std = base64.urlsafe_b64encode(raw).decode(), base64.b64encode(raw).decode()
    return [url, url.rstrip("="), std, std.rstrip("=")]


class TraceVectors(SynchronousTestCase):
    def test_real_cli_frame_verifies_as_v3(self) -> None:
        v = proof.verify(CLI_V3, CLI_NONCE, CLI_TS)
        self.assertEqual((v.device_id, v.public_key, v.payload_version),
                         (CLI_V3["device"]["id"], CLI_V3["device"]["publicKey"], "v3"))

    def test_python_client_conn6_verifies_as_v2(self) -> None:
        v = proof.verify(PY_V2, V2_NONCE, V2_TS)
        self.assertEqual((v.device_id, v.payload_version), (PY_ID, "v2"))

    def test_captured_failures(self) -> None:
        for nonce, ts, params, code in TRACE_FAILURES:
            with self.assertRaises(GatewayError) as cm:
                proof.verify(params, nonce, ts)
            message, reason = FAILURES[code]
            self.assertEqual((cm.exception.code, cm.exception.message, cm.exception.details,
                              cm.exception.close_code),
                             ("INVALID_REQUEST", message, {"code": code, "reason": reason}, 1008))

    def test_key_and_signature_in_every_base64_form(self) -> None:
        raw_key = proof.decode_b64(CLI_V3["device"]["publicKey"])
        raw_sig = proof.decode_b64(CLI_V3["device"]["signature"])
        self.assertEqual((len(raw_key), len(raw_sig)), (32, 64))
        # The vector's wire forms use both url-only characters, so the alphabets really differ.
        self.assertIn("_", CLI_V3["device"]["publicKey"])
        self.assertIn("-", CLI_V3["device"]["signature"])
        for key_text in encodings(raw_key):
            for sig_text in encodings(raw_sig):
                params = copy.deepcopy(CLI_V3)
                params["device"].update(publicKey=key_text, signature=sig_text)
                v = proof.verify(params, CLI_NONCE, CLI_TS)
                # Whatever the input form, the canonical key is unpadded base64url.
                self.assertEqual((v.device_id, v.public_key),
                                 (CLI_V3["device"]["id"], CLI_V3["device"]["publicKey"]))

    def test_pem_public_key_accepted(self) -> None:
        raw_key = proof.decode_b64(CLI_V3["device"]["publicKey"])
        pem = Ed25519PublicKey.from_public_bytes(raw_key).public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        params = copy.deepcopy(CLI_V3)
        params["device"]["publicKey"] = pem
        v = proof.verify(params, CLI_NONCE, CLI_TS)
        self.assertEqual((v.device_id, v.public_key, v.payload_version),
                         (CLI_V3["device"]["id"], CLI_V3["device"]["publicKey"], "v3"))


class Failures(SynchronousTestCase):
    """Each check of the §4.4 table, on params signed here (fresh key, v3)."""

    NOW = 1_795_000_000_000
    NONCE = "n-0123"

    def setUp(self) -> None:
        self.dev = Device()

    def expect(self, params: dict[str, Any], code: str, now: int | None = None) -> None:
        with self.assertRaises(GatewayError) as cm:
            proof.verify(params, self.NONCE, self.NOW if now is None else now)
        message, reason = FAILURES[code]
        self.assertEqual((cm.exception.code, cm.exception.message, cm.exception.details),
                         ("INVALID_REQUEST", message, {"code": code, "reason": reason}))
        self.assertEqual(cm.exception.close_code, 1008)

    def test_own_signature_verifies(self) -> None:
        v = proof.verify(self.dev.params(self.NONCE, self.NOW), self.NONCE, self.NOW)
        self.assertEqual((v.device_id, v.public_key, v.payload_version),
                         (self.dev.id, self.dev.public_key, "v3"))
        v2 = proof.verify(self.dev.params(self.NONCE, self.NOW, version="v2"), self.NONCE,
                          self.NOW)
        self.assertEqual(v2.payload_version, "v2")

    def test_public_key_invalid(self) -> None:
        x25519_pem = X25519PrivateKey.generate().public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        for bad in ("not base64 !!", b64url(self.dev.raw[:31]), b64url(self.dev.raw + b"\0"),
                    x25519_pem, "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----"):
            params = self.dev.params(self.NONCE, self.NOW)
            params["device"]["publicKey"] = bad
            self.expect(params, "DEVICE_AUTH_PUBLIC_KEY_INVALID")

    def test_device_id_mismatch(self) -> None:
        params = self.dev.params(self.NONCE, self.NOW)
        params["device"]["id"] = Device().id
        self.expect(params, "DEVICE_AUTH_DEVICE_ID_MISMATCH")

    def test_signature_expired_in_both_directions(self) -> None:
        for skew in (120_001, -120_001, 3_600_000, -3_600_000):
            self.expect(self.dev.params(self.NONCE, self.NOW + skew),
                        "DEVICE_AUTH_SIGNATURE_EXPIRED")
        for skew in (120_000, -120_000):  # the bound itself is still fresh
            proof.verify(self.dev.params(self.NONCE, self.NOW + skew), self.NONCE, self.NOW)

    def test_nonce_required_and_mismatch(self) -> None:
        self.expect(self.dev.params("  ", self.NOW), "DEVICE_AUTH_NONCE_REQUIRED")
        self.expect(self.dev.params("another-nonce", self.NOW), "DEVICE_AUTH_NONCE_MISMATCH")

    def test_tampered_payload_is_signature_invalid(self) -> None:
        tampers = [
            ("scopes", ["operator.read", "operator.admin"]),
            ("role", "node"),
            ("auth", {"token": "other"}),
            ("client", {"id": "cli", "version": "2026.9.6", "platform": "darwin", "mode": "cli"}),
        ]
        for key, value in tampers:
            params = self.dev.params(self.NONCE, self.NOW)
            params[key] = value
            self.expect(params, "DEVICE_AUTH_SIGNATURE_INVALID")
        params = self.dev.params(self.NONCE, self.NOW)
        params["device"]["signature"] = "%%%not-base64%%%"
        self.expect(params, "DEVICE_AUTH_SIGNATURE_INVALID")
        params["device"]["signature"] = Device().params(self.NONCE, self.NOW)["device"]["signature"]
        self.expect(params, "DEVICE_AUTH_SIGNATURE_INVALID")

    def test_platform_lowercasing_is_ascii_only(self) -> None:
        # Trimmed, A-Z lowered, anything else kept as is (no Unicode case folding).
        for platform, family in (("  Linux ", "Linux"), ("ÄNDROID", "İPhone"), ("MacOS", "Ω")):
            params = self.dev.params(self.NONCE, self.NOW, platform=platform,
                                     device_family=family)
            self.assertEqual(proof.verify(params, self.NONCE, self.NOW).payload_version, "v3")
        # A signer that Unicode-folds "Ä" produced a different payload: refused.
        folded = self.dev.params(self.NONCE, self.NOW, platform="ÄNDROID",
                                 sign_platform="ändroid", version="v3")
        self.expect(folded, "DEVICE_AUTH_SIGNATURE_INVALID")
        self.assertEqual(ascii_lower("ÄNDROID"), "Ändroid")


class OverTheWire(SynchronousTestCase):
    """Proof failures answer INVALID_REQUEST and close 1008 with the message as reason."""

    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.dev = Device()

    def refused(self, c: WSClient, res: dict[str, Any] | None, code: str) -> None:
        message, reason = FAILURES[code]
        self.assertIsNotNone(res)
        assert res is not None
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST", "message": message,
                                        "details": {"code": code, "reason": reason}})
        closed = c.closed()
        self.assertIsInstance(closed, Closed)
        assert closed is not None
        self.assertEqual((closed.code, closed.reason), (1008, message))
        self.assertNotIn(c.proto.conn_id, self.gw.conns)

    def test_each_failure_closes_1008(self) -> None:
        now = self.gw.now_ms()
        cases: list[tuple[str, dict[str, Any]]] = [
            ("DEVICE_AUTH_PUBLIC_KEY_INVALID", {"publicKey": "AAAA"}),
            ("DEVICE_AUTH_DEVICE_ID_MISMATCH", {"id": "0" * 64}),
            ("DEVICE_AUTH_SIGNATURE_EXPIRED", {"signedAt": now - 120_001}),
            ("DEVICE_AUTH_SIGNATURE_EXPIRED", {"signedAt": now + 120_001}),
            ("DEVICE_AUTH_NONCE_REQUIRED", {"nonce": " "}),
            ("DEVICE_AUTH_NONCE_MISMATCH", {"nonce": "not-the-nonce"}),
        ]
        for ip in ("127.0.0.1", "10.9.9.9"):
            for code, change in cases:
                c = WSClient(self.gw, ip=ip)
                params = self.dev.params(c.challenge()["payload"]["nonce"], now)
                params["device"].update(change)
                self.refused(c, c.response(c.request("connect", params)), code)

    def test_scopes_differ_from_signed_closes_1008(self) -> None:
        c = WSClient(self.gw, ip="10.9.9.9")
        params = self.dev.params(c.challenge()["payload"]["nonce"], self.gw.now_ms())
        params["scopes"] = ["operator.read", "operator.admin"]
        self.refused(c, c.response(c.request("connect", params)),
                     "DEVICE_AUTH_SIGNATURE_INVALID")

    def test_valid_signature_gets_hello(self) -> None:
        res = self.dev.connect(WSClient(self.gw))
        assert res is not None
        self.assertTrue(res["ok"], res)

    def replay(self, params: dict[str, Any], nonce: str, ts: int) -> dict[str, Any] | None:
        """Send a captured connect to a gateway whose clock and challenge match the capture."""
        self.clock.advance(ts / 1000 - self.clock.seconds())
        c = WSClient(self.gw)
        c.proto.nonce = nonce  # the challenge the capture answered
        return c.response(c.request("connect", copy.deepcopy(params)))

    def test_real_cli_frame_accepted(self) -> None:
        res = self.replay(CLI_V3, CLI_NONCE, CLI_TS)
        assert res is not None
        self.assertTrue(res["ok"], res)
        auth = res["payload"]["auth"]
        self.assertEqual((auth["method"], auth["role"], auth["scopes"]),
                         ("token", "operator", ["operator.read"]))
        self.assertIsInstance(auth["deviceToken"], str)
        self.assertIn(CLI_V3["device"]["id"], self.gw.devices.store.devices)  # type: ignore

    def test_v2_frame_accepted(self) -> None:
        res = self.replay(PY_V2, V2_NONCE, V2_TS)
        assert res is not None
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["payload"]["auth"]["scopes"], ["operator.read", "operator.write"])
