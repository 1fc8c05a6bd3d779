"""The Control UI shell's methods (methods/shell.py): system.info, update.status,
users.prefs.get, themes.list, talk.catalog, question.list, secrets.store.list.

The real answers were captured from openclaw 2026.9.6 on a fresh install through
tools/ws-capture.py (the Control UI loading every route of control-ui-calls.md); trimmed here
to what the assertions compare.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import attrs
from twisted.trial.unittest import SynchronousTestCase

from tests.support.helpers import call, hello, make_app, ok

READ = ["operator.read"]
ADMIN = ["operator.admin"]

# system.info on the real gateway (trimmed: the values are the host's).
REAL_SYSTEM_INFO = {
    "machineName": "vm", "hostname": "vm", "platform": "linux", "release": "6.18.44-fc-v1272",
    "arch": "x64", "osLabel": "Linux 6.18.44-fc-v1272", "port": 28711,
    "nodeVersion": "v24.21.0", "pid": 14461,
    "processInstanceId": "ebcbb744-6028-4781-a849-1a8ae47aee9a", "uptimeMs": 102919,
    "cpuCount": 2, "cpuModel": "AMD EPYC", "loadAverage": [10.33, 4.15, 2.71],
    "memoryTotalBytes": 25276194816, "memoryFreeBytes": 20454359040,
    "eventLoop": {"degraded": False, "degradedSinceMs": None, "reasons": [],
                  "intervalMs": 1514.45, "delayP99Ms": 643.8, "delayMaxMs": 643.8,
                  "utilization": 0.821, "cpuCoreRatio": 0.091,
                  "cpuBreakdown": {"mainThreadCoreRatio": 0.078, "hostCpuCount": 2}},
    "processMemory": {"rssBytes": 857485312, "heapUsedBytes": 234261488,
                      "heapTotalBytes": 290430976},
    "disks": [{"path": "/", "totalBytes": 270553174016, "availableBytes": 79626072064}],
    "diskTotalBytes": 270553174016, "diskAvailableBytes": 79628361728,
    "diskPath": "/tmp/h2b/realhome/.openclaw",
    "defaultAgentUtilityModel": {"status": "auto", "model": "openai/gpt-5.6-luna"},
}
# SystemInfoResultSchema's required fields.
SYSTEM_INFO_REQUIRED = {"machineName", "hostname", "platform", "release", "arch", "osLabel",
                        "nodeVersion", "pid", "uptimeMs", "cpuCount", "memoryTotalBytes",
                        "memoryFreeBytes"}
REAL_UPDATE_STATUS = {"sentinel": None, "updateAvailable": None, "effectiveChannel": "stable",
                      "schedule": {"channel": "stable", "autoEnabled": False,
                                   "install": {"kind": "package"}}}
REAL_THEMES_CURRENT = {"id": "claw", "mode": "system", "scope": "profile", "overrides": {}}
REAL_CLAW = {"id": "claw", "name": "Claw",
             "description": "Signature coral red and teal on charcoal or pale surfaces, with "
                            "Instrument Sans throughout. A balanced everyday workspace.",
             "source": "builtin", "modes": ["light", "dark"]}


class Case(SynchronousTestCase):
    options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.app, self.clock = make_app(**self.options)
        self.read = hello(self.app.hub, scopes=READ)
        self.admin = hello(self.app.hub, scopes=ADMIN)


class SystemInfo(Case):
    def test_the_real_shape_with_our_own_values(self) -> None:
        info = ok(self.read, "system.info", {})
        self.assertLessEqual(SYSTEM_INFO_REQUIRED, set(info))
        self.assertLessEqual(set(info), set(REAL_SYSTEM_INFO))
        self.assertEqual(info["platform"], sys.platform)
        self.assertEqual(info["pid"], os.getpid())
        self.assertEqual(info["processInstanceId"], self.app.hub.boot_id)
        self.assertTrue(info["nodeVersion"].startswith("CPython "), info["nodeVersion"])
        self.assertEqual(info["cpuCount"], os.cpu_count())
        self.assertIsInstance(info["uptimeMs"], int)
        self.assertGreater(info["memoryTotalBytes"], 0)
        self.assertLessEqual(info["memoryFreeBytes"], info["memoryTotalBytes"])
        self.assertEqual(set(info["eventLoop"]), set(REAL_SYSTEM_INFO["eventLoop"]))
        [disk] = info["disks"]
        self.assertEqual(set(disk), {"path", "totalBytes", "availableBytes"})
        self.assertEqual(info["diskPath"], str(self.app.settings.state_dir))
        self.assertEqual(info["diskTotalBytes"], disk["totalBytes"])
        # we resolve no utility model; we have no V8 heap to report
        self.assertEqual(info["defaultAgentUtilityModel"], {"status": "unavailable"})
        self.assertNotIn("processMemory", info)

    def test_uptime_follows_the_clock(self) -> None:
        before = ok(self.read, "system.info", {})["uptimeMs"]
        self.clock.advance(5)
        self.assertEqual(ok(self.read, "system.info", {})["uptimeMs"], before + 5000)

    def test_params_closed(self) -> None:
        res = call(self.read, "system.info", {"x": 1})
        self.assertFalse(res["ok"])
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")


class UpdateStatus(Case):
    def test_an_install_that_cannot_update_itself(self) -> None:
        got = ok(self.admin, "update.status", {})
        self.assertEqual(set(got), set(REAL_UPDATE_STATUS))
        self.assertEqual(got, {**REAL_UPDATE_STATUS, "schedule": {
            **REAL_UPDATE_STATUS["schedule"], "install": {"kind": "unknown"}}})
        self.assertEqual(ok(self.admin, "update.status", {"refreshCheckout": True}), got)

    def test_admin_only(self) -> None:
        res = call(self.read, "update.status", {})
        self.assertEqual(res["error"]["message"], "missing scope: operator.admin")

    def test_not_advertised_run(self) -> None:
        res = call(self.admin, "update.run", {})
        self.assertEqual(res["error"]["message"], "unknown method: update.run")


class UpdateChannel(Case):
    def test_the_configured_channel(self) -> None:
        # as a hot reload does: the hub's settings are replaced
        raw = {"update": {"channel": "beta", "auto": {"enabled": True}}}
        self.app.hub.settings = attrs.evolve(self.app.hub.settings, raw=raw)
        got = ok(self.admin, "update.status", {})
        self.assertEqual(got["effectiveChannel"], "beta")
        # auto updates are never scheduled here, whatever the config asks
        self.assertEqual(got["schedule"], {"channel": "beta", "autoEnabled": False,
                                           "install": {"kind": "unknown"}})


class Prefs(Case):
    def test_users_list_is_the_empty_roster(self) -> None:
        self.assertEqual(ok(self.read, "users.list", {}), {"profiles": []})
        self.assertEqual(call(self.read, "users.list", {"x": 1})["error"]["code"],
                         "INVALID_REQUEST")

    def test_no_durable_identity(self) -> None:
        self.assertEqual(ok(self.read, "users.prefs.get",
                            {"keys": ["ui.theme", "ui.themeMode", "ui.accent"]}),
                         {"status": "no_durable_identity"})
        self.assertEqual(ok(self.read, "users.prefs.get", {}),
                         {"status": "no_durable_identity"})

    def test_prefs_set_is_not_served(self) -> None:
        res = call(self.admin, "users.prefs.set", {"entries": {"ui.theme": "knot"}})
        self.assertEqual(res["error"]["message"], "unknown method: users.prefs.set")
        self.assertNotIn("users.prefs.set", self.app.hub.methods.advertised())
        self.assertIn("users.prefs.get", self.app.hub.methods.advertised())

    def test_key_bounds(self) -> None:
        res = call(self.read, "users.prefs.get", {"keys": [""]})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")


class Themes(Case):
    def test_default_theme_and_no_catalog(self) -> None:
        got = ok(self.read, "themes.list", {})
        self.assertEqual(set(got), {"current", "theme", "themes"})
        self.assertEqual(got["theme"], REAL_CLAW)
        self.assertEqual(got["themes"], [])
        # a caller without a profile: the real gateway's scope "gateway"
        self.assertEqual(got["current"], {**REAL_THEMES_CURRENT, "scope": "gateway"})

    def test_config_prefs(self) -> None:
        self.app.hub.settings = attrs.evolve(
            self.app.hub.settings, raw={"ui": {"prefs": {"theme": "knot", "themeMode": "dark"}}})
        current = ok(self.read, "themes.list", {})["current"]
        self.assertEqual(current, {"id": "claw", "mode": "dark", "effectiveMode": "dark",
                                   "scope": "gateway", "overrides": {}, "requestedId": "knot"})


class Absent(Case):
    def test_talk_catalog(self) -> None:
        got = ok(self.read, "talk.catalog", {})
        self.assertEqual(got, {"modes": [], "transports": [], "brains": [],
                               "speech": {"ready": False, "providers": []},
                               "transcription": {"ready": False, "providers": []},
                               "realtime": {"ready": False, "providers": []}})
        self.assertEqual(ok(self.read, "talk.catalog", {"provider": "openai"}), got)

    def test_question_list(self) -> None:
        q = hello(self.app.hub, scopes=["operator.questions"])
        self.assertEqual(ok(q, "question.list", {}), {"questions": []})
        self.assertEqual(call(self.read, "question.list", {})["error"]["message"],
                         "missing scope: operator.questions")

    def test_secrets_store(self) -> None:
        self.assertEqual(ok(self.admin, "secrets.store.list", {}), {"entries": []})
        for method in ("secrets.store.set", "secrets.store.delete"):
            self.assertNotIn(method, self.app.hub.methods.advertised())
