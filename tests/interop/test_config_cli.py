"""Interop (issue #20): the real ``openclaw config patch`` edits the gateway's config file in
the shared HOME (the README's set-up); our gateway's watcher picks the change up and applies
it hot -- a model provider added this way is listed by the real ``openclaw models list``
without a restart."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from openclaw_tw.app import openai_maker
from openclaw_tw.config import settings as config
from openclaw_tw.config.apply import apply_hot
from openclaw_tw.config.reload import ConfigWatcher
from tests.support.loopback import start_gateway, stop_gateway, within
from tests.support.reference_cli import TOKEN, CLIResult, reference_launcher, run_cli

PATCH = """{
  // a local model server
  models: { providers: { local: { baseUrl: "http://127.0.0.1:9/v1", apiKey: "k",
    api: "openai-completions", models: [{ id: "llama-test", name: "Llama test",
    contextWindow: 32000 }] } } },
  agents: { defaults: { model: { primary: "local/llama-test" } } },
}
"""


class _Advertiser:
    def set_mode(self, mode: str) -> None:
        pass


class RealConfigPatch(unittest.TestCase):
    timeout = 180

    def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        self.launcher = launcher
        self.home = os.path.abspath(self.mktemp())
        state = os.path.join(self.home, ".openclaw")
        self.config_path = os.path.join(state, "openclaw.json")
        start_gateway(self, TOKEN, state_dir=state, config_file=lambda: {
            "gateway": {"mode": "local", "port": 18789,
                        "auth": {"mode": "token", "token": TOKEN}}})
        options = {"port": "0", "token": TOKEN, "state-dir": state,
                   "config": self.config_path}
        env = {"HOME": self.home}
        self.watcher = ConfigWatcher(self.gw, lambda data: config.resolve_data(
            options, env, data))
        self.applied: defer.Deferred[Any] = defer.Deferred()
        make_openai = openai_maker(self.app.reactor)
        self.watcher.on_applied.append(
            lambda s, plan: apply_hot(self.app, _Advertiser(), s, env, make_openai))
        self.watcher.on_applied.append(
            lambda s, plan: self.applied.called or self.applied.callback(plan))
        self.watcher.startService()

    async def tearDown(self) -> None:
        self.watcher.stopService()
        await stop_gateway(self)

    async def openclaw(self, *args: str) -> CLIResult:
        return await run_cli(self.launcher, args, self.home,
                             {"OPENCLAW_GATEWAY_PORT": str(self.port_number)})

    async def test_a_provider_added_with_config_patch_is_in_force_at_once(self) -> None:
        patch = os.path.join(self.home, "patch.json5")
        with open(patch, "w") as f:
            f.write(PATCH)
        r = await self.openclaw("config", "patch", "--file", patch)
        self.assertEqual(r.code, 0, r)
        plan = await within(self.applied, "our gateway applying the patched file", 30)
        self.assertEqual(plan["restart"], [], plan)
        self.assertIn("models", plan["hot"])
        self.assertEqual(self.app.models.primary, "local/llama-test")
        listed = await self.openclaw("models", "list", "--json")
        self.assertEqual(listed.code, 0, listed)
        self.assertIn("local/llama-test", listed.out, listed)
        with open(self.config_path) as f:
            self.assertIn("llama-test", f.read())
