"""What the device connect path caches (decoded public keys, derived token values) never
lets a rotated, revoked or removed credential through, and never outgrows its bound."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.devices import proof
from openclaw_tw.devices.store import TokenKey
from openclaw_tw.errors import GatewayError
from openclaw_tw.protocol.scopes import READ
from tests.support.devices import DEVICE_TOKEN_MISMATCH, Device, DeviceCase

NOW = 1_795_000_000_000


class KeyCache(SynchronousTestCase):
    def test_a_key_is_decoded_once_and_still_checks_every_signature(self) -> None:
        dev = Device()
        proof._cached_key.cache_clear()
        params = dev.params("n-1", NOW)
        self.assertEqual(proof.verify(params, "n-1", NOW).device_id, dev.id)
        self.assertEqual(proof.verify(dev.params("n-2", NOW), "n-2", NOW).device_id, dev.id)
        info = proof._cached_key.cache_info()
        self.assertEqual((info.misses, info.hits), (1, 1))
        forged = dev.params("n-3", NOW)
        forged["device"]["signature"] = params["device"]["signature"]  # signed another nonce
        with self.assertRaises(GatewayError) as caught:
            proof.verify(forged, "n-3", NOW)
        self.assertEqual(caught.exception.details["code"], "DEVICE_AUTH_SIGNATURE_INVALID")
        other = Device()  # another key under this device's id
        stolen = other.params("n-4", NOW)
        stolen["device"]["id"] = dev.id
        with self.assertRaises(GatewayError) as caught:
            proof.verify(stolen, "n-4", NOW)
        self.assertEqual(caught.exception.details["code"], "DEVICE_AUTH_DEVICE_ID_MISMATCH")

    def test_invalid_and_padded_keys_are_not_cached(self) -> None:
        proof._cached_key.cache_clear()
        dev = Device()
        for text in ("not a key", "AAAA", " " * 300 + dev.public_key):
            params = dev.params("n", NOW)
            params["device"]["publicKey"] = text
            try:
                proof.verify(params, "n", NOW)
            except GatewayError:
                pass
        self.assertEqual(proof._cached_key.cache_info().currsize, 0)


class TokenValues(SynchronousTestCase):
    def test_values_are_cached_per_salt_forgotten_per_device_and_bounded(self) -> None:
        key = TokenKey(b"k" * 32)
        first = key.value("dev-a", "operator", "salt-1")
        self.assertEqual(key.value("dev-a", "operator", "salt-1"), first)
        self.assertNotEqual(key.value("dev-a", "operator", "salt-2"), first)
        key.value("dev-b", "operator", "salt-1")
        key.forget("dev-a")
        self.assertEqual(list(key._values), [("dev-b", "operator", "salt-1")])
        self.assertEqual(key.value("dev-a", "operator", "salt-1"), first)  # same derivation
        for i in range(TokenKey.CACHE_MAX + 10):
            key.value("dev-c", "operator", str(i))
        self.assertLessEqual(len(key._values), TokenKey.CACHE_MAX)


class OldTokensStayRefused(DeviceCase):
    """Connect twice (the caches warm), then change the credential: the old one is refused."""

    def warm(self) -> str:
        token = self.pair_locally()
        for _ in range(2):
            _, hello_ok = self.ok(token=None, device_token=token, scopes=[READ])
            self.assertEqual(hello_ok["auth"]["deviceToken"], token)
        return token

    def test_rotate(self) -> None:
        old = self.warm()
        res = self.call(self.admin, "device.token.rotate", {"deviceId": self.dev.id,
                                                            "role": "operator"})
        self.assertTrue(res["ok"], res)
        self.assertEqual(self.refused(token=None, device_token=old), DEVICE_TOKEN_MISMATCH)
        _, again = self.ok(scopes=[READ])  # the shared secret: hello-ok carries the new token
        self.assertNotEqual(again["auth"]["deviceToken"], old)

    def test_revoke(self) -> None:
        old = self.warm()
        res = self.call(self.admin, "device.token.revoke", {"deviceId": self.dev.id,
                                                            "role": "operator"})
        self.assertTrue(res["ok"], res)
        self.assertEqual(self.refused(token=None, device_token=old), DEVICE_TOKEN_MISMATCH)
        _, again = self.ok(scopes=[READ])  # the shared secret: a fresh token, not the old one
        self.assertNotEqual(again["auth"]["deviceToken"], old)
        self.assertEqual(self.refused(token=None, device_token=old), DEVICE_TOKEN_MISMATCH)

    def test_remove(self) -> None:
        old = self.warm()
        res = self.call(self.pairer, "device.pair.remove", {"deviceId": self.dev.id})
        self.assertTrue(res["ok"], res)
        self.assertEqual(self.refused(token=None, device_token=old), DEVICE_TOKEN_MISMATCH)
        key = self.gw.devices.store.key  # type: ignore[union-attr]
        self.assertFalse([k for k in key._values if k[0] == self.dev.id])
