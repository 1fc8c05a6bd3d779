"""``RestartableGateway`` on a Clock: coalescing, the bounded drain, the config re-read."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.config.settings import ConfigError
from openclaw_tw.daemon.restart import RestartableGateway


class Tree(MultiService):
    stops = 0

    def stopService(self) -> Any:
        Tree.stops += 1
        return super().stopService()


class Restarts(SynchronousTestCase):
    def setUp(self) -> None:
        Tree.stops = 0
        self.clock = Clock()
        self.builds: list[Any] = []
        self.resolved = 0
        self.runtime = SimpleNamespace(active={}, queues={})
        self.hub = SimpleNamespace(restart_expected_ms=None)

        def build(settings: Any, restarter: Any) -> tuple[Tree, Any]:
            self.builds.append(settings)
            tree = Tree()
            tree.setName("gateway-tree")
            return tree, SimpleNamespace(runtime=self.runtime, hub=self.hub)

        def resolve() -> Any:
            self.resolved += 1
            return f"settings-{self.resolved}"

        self.resolve = resolve
        self.root = RestartableGateway(build, "settings-0", lambda: self.resolve(), self.clock,
                                       drain_s=5.0)
        self.root.startService()

    def test_requests_before_the_config_is_read_share_one_restart(self) -> None:
        done = [self.root.request(f"r{i}") for i in range(3)]
        self.clock.advance(0)
        self.assertEqual(self.builds, ["settings-0", "settings-1"])
        self.assertTrue(all(d.called for d in done))
        self.assertEqual(Tree.stops, 1)
        self.assertEqual(self.hub.restart_expected_ms, 2_000)
        self.assertEqual(self.root.restarts, 1)

    def test_the_drain_waits_for_turns_then_gives_up_after_its_budget(self) -> None:
        self.runtime.active["k"] = object()
        d = self.root.request("busy")
        self.clock.advance(0)
        joined = self.root.request("joins during the drain")
        self.clock.advance(1.0)
        self.assertEqual(len(self.builds), 1, "restarted while a turn ran")
        del self.runtime.active["k"]
        self.runtime.queues["k"] = deque([object()])
        self.clock.advance(1.0)
        self.assertEqual(len(self.builds), 1, "restarted with a queued turn")
        self.clock.advance(3.1)  # the 5 s budget is spent: restart anyway
        self.assertEqual(len(self.builds), 2)
        self.assertTrue(d.called and joined.called)

    def test_a_request_after_the_config_was_read_gets_its_own_restart(self) -> None:
        def resolve_and_ask() -> Any:
            self.resolved += 1
            if self.resolved == 1:
                self.later = self.root.request("config changed again")
            return f"settings-{self.resolved}"

        self.resolve = resolve_and_ask
        self.root.request("first")
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(self.builds, ["settings-0", "settings-1", "settings-2"])
        self.assertTrue(self.later.called)

    def test_a_config_that_no_longer_resolves_keeps_the_settings_in_force(self) -> None:
        def broken() -> Any:
            raise ConfigError("bad")

        self.resolve = broken
        self.root.request("x")
        self.clock.advance(0)
        self.assertEqual(self.builds, ["settings-0", "settings-0"])
        self.flushLoggedErrors()

    def test_the_tree_services_are_found_by_name(self) -> None:
        self.assertIs(self.root.getServiceNamed("gateway-tree"), self.root.tree)
