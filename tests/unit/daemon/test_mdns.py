"""mDNS advertising (§13) with an injected fake Zeroconf: no multicast is ever sent.

Covers the TXT record, start-after-bind/withdraw-first ordering, modes, the env switch, hot
mode changes and failure isolation (an exception inside zeroconf never stops the gateway;
it is logged, recorded and retried with backoff).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.daemon import mdns
from tests.support.helpers import hello, make_gateway

FP = "ab" * 32


class FakeZeroconf:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.registered: list[Any] = []
        self.unregistered: list[Any] = []
        self.closed = False

    def register_service(self, info: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.registered.append(info)

    def unregister_service(self, info: Any) -> None:
        self.unregistered.append(info)

    def close(self) -> None:
        self.closed = True


def inline(fn: Any, *args: Any) -> Any:
    return succeed(fn(*args))


class Advertiser(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.zcs: list[FakeZeroconf] = []
        self.fail: Exception | None = None

    def make(self, mode: str = "minimal", env: dict[str, str] | None = None,
             fp: str | None = FP) -> mdns.MdnsAdvertiser:
        def factory() -> FakeZeroconf:
            zc = FakeZeroconf(self.fail)
            self.zcs.append(zc)
            return zc

        adv = mdns.MdnsAdvertiser(
            self.gw, env if env is not None else {"OPENCLAW_MDNS_HOSTNAME": "box"},
            port=lambda: 18789, tls_fingerprint=fp, zeroconf_factory=factory,
            info_factory=lambda *a: a, run_blocking=inline)
        adv.mode = mode
        return adv

    def test_txt_record_minimal_and_full(self) -> None:
        txt = mdns.txt_record("minimal", 18789, "box", "box (OpenClaw)", FP)
        self.assertEqual(txt, {"role": "gateway", "gatewayPort": "18789",
                               "lanHost": "box.local", "displayName": "box (OpenClaw)",
                               "transport": "gateway", "gatewayTls": "1",
                               "gatewayTlsSha256": FP})
        full = mdns.txt_record("full", 18789, "box", "box (OpenClaw)", None, "/usr/bin/x")
        self.assertEqual((full["sshPort"], full["cliPath"]), ("22", "/usr/bin/x"))
        self.assertNotIn("gatewayTls", full)

    def test_advertise_then_withdraw_on_stop(self) -> None:
        adv = self.make()
        adv.startService()
        self.assertTrue(adv.advertised)
        name, port, txt, server, _addresses = self.zcs[0].registered[0]
        self.assertEqual((name, port, server), ("box (OpenClaw)", 18789, "box.local."))
        self.assertEqual(txt["gatewayTlsSha256"], FP)
        self.successResultOf(adv.stopService())
        self.assertEqual(len(self.zcs[0].unregistered), 1)
        self.assertTrue(self.zcs[0].closed)

    def test_modes_and_env(self) -> None:
        self.assertEqual(mdns.mdns_mode({}, {}), "off")  # default off on Linux
        raw = {"discovery": {"mdns": {"mode": "full"}}}
        self.assertEqual(mdns.mdns_mode(raw, {}), "full")
        self.assertEqual(mdns.mdns_mode(raw, {"OPENCLAW_DISABLE_BONJOUR": "1"}), "off")
        adv = self.make(mode="off")
        adv.startService()
        self.assertEqual(self.zcs, [])
        adv.set_mode("minimal")  # hot: discovery.mdns.mode
        self.assertTrue(adv.advertised)
        adv.set_mode("off")
        self.assertFalse(adv.advertised)
        self.assertTrue(self.zcs[0].closed)

    def test_zeroconf_failure_is_contained_and_retried(self) -> None:
        client = hello(self.gw, scopes=["operator.read"])
        self.fail = OSError("no multicast interface")
        adv = self.make()
        adv.startService()  # must not raise
        self.assertFalse(adv.advertised)
        self.assertEqual(adv.failures, 1)
        self.assertIn("no multicast interface", adv.status()["lastError"])
        self.assertTrue(self.zcs[0].closed)
        # The control plane is unaffected.
        res = client.response(client.request("health", {}))
        assert res is not None
        self.assertTrue(res["ok"])
        # Retried with backoff; a later success clears the error.
        self.clock.advance(mdns.RETRY_INITIAL_S)
        self.assertEqual(adv.failures, 2)
        self.fail = None
        self.clock.advance(mdns.RETRY_INITIAL_S * 2)
        self.assertTrue(adv.advertised)
        self.assertIsNone(adv.status()["lastError"])
        self.successResultOf(adv.stopService())

    def test_factory_crash_and_stop_cancel_retry(self) -> None:
        def boom() -> Any:
            raise RuntimeError("zeroconf thread crashed")

        adv = mdns.MdnsAdvertiser(self.gw, {}, port=lambda: 1, zeroconf_factory=boom,
                                  info_factory=lambda *a: a, run_blocking=inline)
        adv.mode = "full"
        adv.startService()
        self.assertFalse(adv.advertised)
        self.successResultOf(adv.stopService())
        self.assertEqual([c for c in self.clock.getDelayedCalls()
                          if c.func == adv._retry_now], [])


class ServiceTreeWiring(SynchronousTestCase):
    def test_mdns_watcher_and_notifier_follow_the_listener(self) -> None:
        import os

        from twisted.internet.testing import MemoryReactorClock

        from openclaw_tw import tap

        clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        self.patch(os, "environ", clean)
        state = os.path.abspath(self.mktemp())
        options = tap.Options()
        options.parseOptions(["--port", "0", "--token", "T", "--state-dir", state,
                              "--config", os.path.join(state, "absent.json")])
        root = tap.makeService(options, reactor=MemoryReactorClock())
        names = [child.name for child in root.tree]
        for name in ("mdns", "config-reload", "sdnotify"):
            self.assertIn(name, names)
        self.assertGreater(names.index("mdns"), names.index("listener"))
        self.assertEqual(root.getServiceNamed("mdns").mode, "off")
        for child in root.tree:
            db = getattr(getattr(child, "db", None), "close", None)
            if callable(db):
                db()
