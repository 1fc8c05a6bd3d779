"""The twistd plugin and ``tap``: discovery, option parsing and the service tree's shape."""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, IServiceCollection, IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial import unittest
from twisted.web.server import Site

from openclaw_tw import tap
from openclaw_tw.daemon.logfile import LogFileService
from openclaw_tw.hub.gateway import Gateway
from tests.support.paths import REPO


class PluginDiscovery(unittest.SynchronousTestCase):
    def test_twistd_finds_openclaw(self) -> None:
        """``twistd openclaw``: the plugin in twisted/plugins is found and points at tap."""
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("openclaw", makers)
        maker = makers["openclaw"]
        self.assertIs(maker.options, tap.Options)
        self.assertTrue(maker.description)
        self.assertTrue(callable(maker.makeService))


class OptionsParsing(unittest.SynchronousTestCase):
    def parse(self, *argv: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def test_all_flags(self) -> None:
        options = self.parse("--port", "18801", "--bind", "lan", "--auth", "token",
                             "--token", "T0k", "--state-dir", "/tmp/oc-state")
        self.assertEqual(options["port"], "18801")
        self.assertEqual(options["bind"], "lan")
        self.assertEqual(options["auth"], "token")
        self.assertEqual(options["token"], "T0k")
        self.assertEqual(options["state-dir"], "/tmp/oc-state")

    def test_short_port_and_defaults(self) -> None:
        options = self.parse("-p", "0")
        self.assertEqual(options["port"], "0")
        for name in ("bind", "auth", "token", "password", "state-dir", "config", "host"):
            self.assertIsNone(options[name], name)

    def test_allow_unconfigured_is_accepted(self) -> None:
        """`openclaw gateway run --allow-unconfigured ...` command lines carry over."""
        self.assertTrue(self.parse("--allow-unconfigured")["allow-unconfigured"])

    def test_bogus_bind_is_rejected(self) -> None:
        with self.assertRaises(usage.UsageError) as ctx:
            self.parse("--bind", "bogus")
        self.assertIn("--bind", str(ctx.exception))

    def test_custom_bind_needs_host(self) -> None:
        self.assertRaises(usage.UsageError, self.parse, "--bind", "custom")
        self.assertEqual(self.parse("--bind", "custom", "--host", "127.0.0.5")["host"],
                         "127.0.0.5")

    def test_unknown_flag_is_rejected(self) -> None:
        self.assertRaises(usage.UsageError, self.parse, "--no-such-flag")


def dispose(root: Any) -> None:
    """Release what building (not starting) the tree may hold: the database, if any."""
    for child in [*root, *getattr(root, "tree", ())]:
        db = getattr(child, "db", None)
        if db is not None and callable(getattr(db, "close", None)):
            db.close()


class ServiceTree(unittest.SynchronousTestCase):
    def setUp(self) -> None:
        # makeService reads os.environ: keep the caller's OPENCLAW_* settings out of it.
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        self.patch(os, "environ", clean)
        self.state = os.path.abspath(self.mktemp())

    def options(self, *extra: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(["--port", "0", "--token", "T0k", "--state-dir", self.state,
                              "--config", os.path.join(self.state, "absent.json"), *extra])
        return options

    def make(self, reactor: Any = None) -> Any:
        root = tap.makeService(self.options(), reactor=reactor or MemoryReactorClock())
        self.addCleanup(dispose, root)
        return root

    def test_make_service_tree(self) -> None:
        reactor = MemoryReactorClock()
        root = self.make(reactor)
        self.assertTrue(IServiceCollection.providedBy(root))
        # The log file outlives an in-process restart; the gateway tree is replaced by one.
        self.assertEqual([IService(child).name for child in root], ["logfile", "gateway-tree"])
        names = ["logfile"] + [IService(child).name for child in root.tree]
        # Start order matters: the log file and databases, the hub and its services, the
        # listening port(s), then what needs the port up (and must stop before it goes).
        # control-ui: the Control UI build is looked for before the port opens.
        self.assertEqual(names[:11], ["logfile", "database", "sessions-database",
                                      "nodes-database", "gateway", "nodes", "exec-approvals",
                                      "agents", "channels", "control-ui", "listener"])
        after = [n for n in names[11:] if not n.startswith("listener-")]
        self.assertEqual(after, ["cron", "boot", "mdns", "config-reload", "sdnotify"])

        self.assertIsInstance(root.getServiceNamed("logfile"), LogFileService)
        gw = root.getServiceNamed("gateway")
        self.assertIsInstance(gw, Gateway)
        self.assertIs(gw.reactor, reactor)
        self.assertEqual(gw.settings.token, "T0k")
        self.assertEqual(gw.settings.port, 0)
        listener = root.getServiceNamed("listener")
        self.assertIsInstance(listener, StreamServerEndpointService)
        self.assertIsInstance(listener.factory, Site)

        # Built, not started: nothing runs and nothing listens yet.
        self.assertFalse(root.running)
        self.assertFalse(any(IService(child).running for child in [*root, *root.tree]))
        self.assertEqual(reactor.tcpServers, [])
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_building_starts_no_threads(self) -> None:
        """twistd daemonizes (forks) *after* makeService; threads do not survive a fork, so
        anything that needs a thread must start it in startService."""
        before = set(threading.enumerate())
        self.make()
        started = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        self.assertEqual(started, [])

    def test_unusable_settings_exit_with_a_message(self) -> None:
        """A config problem stops twistd with a one-line reason, not a traceback."""
        with self.assertRaises(SystemExit) as ctx:
            tap.makeService(self.options("--auth", "password"), reactor=MemoryReactorClock())
        self.assertIn("openclaw:", str(ctx.exception.code))
        self.assertIn("password", str(ctx.exception.code))


class Packaging(unittest.SynchronousTestCase):
    def test_setup_cfg_ships_every_package(self) -> None:
        """A non-editable install (``make run``) ships only the packages setup.cfg finds."""
        import configparser

        from setuptools import find_namespace_packages

        root = REPO
        cfg = configparser.ConfigParser()
        cfg.read(root / "setup.cfg")
        self.assertEqual(cfg["options"]["packages"].strip(), "find_namespace:")
        include = cfg["options.packages.find"]["include"].split()
        shipped = set(find_namespace_packages(str(root), include=include))
        found = {str(p.parent.relative_to(root)).replace("/", ".")
                 for p in (root / "openclaw_tw").rglob("__init__.py")}
        self.assertEqual(found - shipped, set())
        self.assertIn("twisted.plugins", shipped)
        self.assertIn("openclaw_tw.data", shipped)  # method_scopes.json
