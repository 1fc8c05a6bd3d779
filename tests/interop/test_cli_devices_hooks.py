"""The real CLI's `openclaw hooks list|check` and `openclaw devices rotate|revoke` against our
gateway, where a side-by-side sweep with the real gateway (2026.9.6) found them different.

* `hooks list` asks the gateway for ``hooks.status`` and reads its own package only when the
  method is unknown: the real gateway reports its bundled hooks; we run none, so the report
  is the real shape with no hooks ("No hooks found."), about this gateway, not the CLI.
* `devices remove` answers `{deviceId}` and, for a device not paired, "unknown deviceId".
* `devices rotate|revoke` for an unknown device, a role the device lacks or scopes beyond its
  approved ones fail with the real gateway's words, "device token rotation denied" /
  "device token revocation denied" (exit 1), and revoking a role that holds no token is
  refused rather than answered with a made-up success.
* a revoked token is kept: `devices list` shows "operator (revoked)" and revoking it again
  succeeds.

The CLI runs as a local client of our gateway (``~/.openclaw/openclaw.json`` names our port
and token), with no device identity of its own: the device it manages is seeded in our store.
"""

from __future__ import annotations

import json
import os
from typing import Any

from openclaw_tw.devices.store import PairedDevice
from tests.support.reference_cli import TOKEN, CLIResult, RealCLICase

DEVICE_ID = "ab" * 32
READ, WRITE = "operator.read", "operator.write"


class DevicesAndHooks(RealCLICase):
    timeout = 120

    def setUp(self) -> None:
        super().setUp()
        self.home = self.fresh_home()
        os.makedirs(os.path.join(self.home, ".openclaw"))
        with open(os.path.join(self.home, ".openclaw", "openclaw.json"), "w") as f:
            json.dump({"gateway": {"mode": "local", "port": self.port_number,
                                   "auth": {"mode": "token", "token": TOKEN}}}, f)
        self.calls: list[str] = []
        invoke = self.app.table.invoke

        def recording(ctx: Any, params: Any) -> Any:
            self.calls.append(ctx.method)
            return invoke(ctx, params)

        self.patch(self.app.table, "invoke", recording)

    async def cli(self, *args: str) -> CLIResult:
        self.calls.clear()
        return await self.openclaw(*args, home=self.home,
                                   env={"OPENCLAW_GATEWAY_PORT": str(self.port_number)})

    async def seed_device(self) -> None:
        store = self.app.device_store
        now = self.gw.now_ms()
        dev = PairedDevice(DEVICE_ID, "pk", "linux", "Linux", "cli", "cli", ["operator"],
                           [READ, WRITE], "owner", now, now, remote_ip="10.9.8.7")
        token, _ = store.key.issue(DEVICE_ID, "operator", [READ, WRITE], now)
        await store.save_device(dev, token)

    async def test_hooks_list_and_check_ask_the_gateway(self) -> None:
        listed = await self.cli("hooks", "list", "--json")
        self.assertEqual(listed.code, 0, listed)
        self.assertEqual(self.calls, ["hooks.status"])
        state = self.gw.display_path(self.app.settings.state_dir)
        self.assertEqual(listed.json(), {"workspaceDir": f"{state}/workspace",
                                         "managedHooksDir": f"{state}/hooks", "hooks": []})
        text = await self.cli("hooks", "list")
        self.assertEqual(text.code, 0, text)
        self.assertIn("No hooks found.", text.out)
        check = await self.cli("hooks", "check")
        self.assertEqual((check.code, self.calls), (0, ["hooks.status"]), check)
        self.assertIn("Total hooks: 0", check.out)

    async def test_rotate_and_revoke_refusals_in_the_real_words(self) -> None:
        await self.seed_device()
        for args, words in (
                (("rotate", "--device", "nope", "--role", "operator"),
                 "device token rotation denied"),
                (("rotate", "--device", DEVICE_ID, "--role", "node"),
                 "device token rotation denied"),
                (("revoke", "--device", DEVICE_ID, "--role", "node"),
                 "device token revocation denied"),
                (("revoke", "--device", "nope", "--role", "operator"),
                 "device token revocation denied")):
            r = await self.cli("devices", *args)
            self.assertEqual(r.code, 1, r)
            self.assertIn(f"Reason: {words}", r.err, r)
        ok = await self.cli("devices", "revoke", "--device", DEVICE_ID, "--role", "operator")
        self.assertEqual(ok.code, 0, ok)
        self.assertEqual(ok.json()["deviceId"], DEVICE_ID)
        self.assertIsInstance(ok.json()["revokedAtMs"], int)

    async def test_a_revoked_token_is_listed_and_revoked_again(self) -> None:
        """As the real gateway keeps it: `devices list` shows "operator (revoked)" and a
        second revoke succeeds with a later time (ours deleted it: "none", then refused)."""
        await self.seed_device()
        first = await self.cli("devices", "revoke", "--device", DEVICE_ID, "--role", "operator")
        self.assertEqual(first.code, 0, first)
        listed = await self.cli("devices", "list")
        self.assertEqual(listed.code, 0, listed)
        self.assertIn("operator (revoked)", listed.out, listed)
        again = await self.cli("devices", "revoke", "--device", DEVICE_ID, "--role", "operator")
        self.assertEqual(again.code, 0, again)
        self.assertGreaterEqual(again.json()["revokedAtMs"], first.json()["revokedAtMs"])
        as_json = await self.cli("devices", "list", "--json")
        [paired] = as_json.json()["paired"]
        [token] = paired["tokens"]
        self.assertEqual((token["role"], token["revokedAtMs"]),
                         ("operator", again.json()["revokedAtMs"]))

    async def test_remove_twice(self) -> None:
        await self.seed_device()
        removed = await self.cli("devices", "remove", DEVICE_ID, "--json")
        self.assertEqual((removed.code, removed.json()), (0, {"deviceId": DEVICE_ID}), removed)
        again = await self.cli("devices", "remove", DEVICE_ID)
        self.assertEqual(again.code, 1, again)
        self.assertIn("Reason: unknown deviceId\n", again.err, again)
