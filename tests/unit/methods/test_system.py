"""System methods (reference §6.1): health, status, presence, system events, heartbeats and
the gateway identity.  Shapes follow traces/health.jsonl, status.jsonl, system-presence.jsonl
and misc-methods.jsonl."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from types import SimpleNamespace
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.hub import health as health_module
from openclaw_tw.hub.health import LoopLagProbe
from openclaw_tw.methods.agents import cli_projection
from tests.support.helpers import WSClient, call, hello, make_gateway, ok
from tests.support.tmp import fresh_dir

READ = ["operator.read"]
ADMIN = ["operator.admin"]
SESSIONS_SUFFIX = "agents/main/agent/openclaw_tw-sessions.sqlite"

HEALTH_KEYS = {"ok", "ts", "durationMs", "plugins", "configReload", "channels", "channelOrder",
               "channelLabels", "heartbeatSeconds", "defaultAgentId", "agents", "sessions",
               "modelRuntime", "eventLoop"}
EVENT_LOOP_KEYS = {"degraded", "degradedSinceMs", "reasons", "intervalMs", "delayP99Ms",
                   "delayMaxMs", "utilization", "cpuCoreRatio", "cpuBreakdown"}
STATUS_KEYS = {"runtimeVersion", "hostDesktop", "heartbeat", "channelSummary",
               "queuedSystemEvents", "degradedSecretOwners", "degradedPlugins", "tasks",
               "taskAudit", "sessions", "modelRuntime", "eventLoop", "processMemory",
               "workerPools", "pid", "shutdownBudget"}
TASK_STATUSES = {"queued", "running", "succeeded", "failed", "timed_out", "cancelled", "lost"}
SELF_KEYS = {"host", "ip", "version", "platform", "deviceFamily", "mode", "reason",
             "instanceId", "text", "ts"}




def step(clock: Any, seconds: int) -> None:
    for _ in range(seconds):
        clock.advance(1)


class Health(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.client = hello(self.gw, scopes=READ)

    def test_shape(self) -> None:
        h = ok(self.client, "health", {})
        self.assertLessEqual(HEALTH_KEYS - {"configReload"}, set(h))
        self.assertEqual(h["ok"], True)
        self.assertIsInstance(h["ts"], int)
        self.assertIsInstance(h["durationMs"], int)
        self.assertEqual(h["plugins"], {"loaded": [], "errors": [], "unavailable": []})
        self.assertEqual((h["channels"], h["channelOrder"], h["channelLabels"]), ({}, [], {}))
        self.assertEqual(h["heartbeatSeconds"], 1800)
        self.assertEqual(h["defaultAgentId"], "main")
        agent = h["agents"][0]
        self.assertEqual((agent["agentId"], agent["isDefault"]), ("main", True))
        hb = agent["heartbeat"]
        self.assertEqual((hb["enabled"], hb["every"], hb["everyMs"], hb["target"],
                          hb["ackMaxChars"]), (True, "30m", 1_800_000, "owner", 300))
        self.assertIsInstance(hb["prompt"], str)
        for sessions in (agent["sessions"], h["sessions"]):
            self.assertEqual(set(sessions), {"path", "count", "recent"})
            self.assertTrue(sessions["path"].endswith(SESSIONS_SUFFIX), sessions["path"])
            self.assertEqual((sessions["count"], sessions["recent"]), (0, []))
        self.assertEqual(h["modelRuntime"], {"degraded": False, "pendingAgents": []})
        loop = h["eventLoop"]
        self.assertLessEqual(EVENT_LOOP_KEYS, set(loop))
        self.assertEqual((loop["degraded"], loop["degradedSinceMs"], loop["reasons"]),
                         (False, None, []))
        self.assertIsInstance(loop["cpuBreakdown"], dict)
        for key in ("intervalMs", "delayP99Ms", "delayMaxMs", "utilization", "cpuCoreRatio"):
            self.assertIsInstance(loop[key], int | float, key)

    def test_heartbeat_as_configured(self) -> None:
        """The default agent's heartbeat from the config (the real summary projection), in
        hello-ok's snapshot too: it showed 30m/owner and an old prompt whatever was set."""
        from openclaw_tw.automation.heartbeat import DEFAULT_PROMPT

        self.assertEqual(ok(self.client, "health", {})["agents"][0]["heartbeat"]["prompt"],
                         DEFAULT_PROMPT)
        state = fresh_dir(self)
        (state / "openclaw.json").write_text(json.dumps({"agents": {"defaults": {"heartbeat": {
            "every": "1h", "target": "none", "prompt": "Check the build."}}}}))
        gw, _ = make_gateway(state_dir=state, config=str(state / "openclaw.json"))
        client = WSClient(gw)
        first = client.connect(scopes=READ)
        assert first is not None
        for h in (first["payload"]["snapshot"]["health"], ok(client, "health", {})):
            hb = h["agents"][0]["heartbeat"]
            self.assertEqual((h["heartbeatSeconds"], hb["every"], hb["everyMs"], hb["target"],
                              hb["prompt"], hb["enabled"]),
                             (3600, "1h", 3_600_000, "none", "Check the build.", True))
        (state / "openclaw.json").write_text(json.dumps({"agents": {"defaults": {"heartbeat": {
            "every": "0m"}}}}))
        gw, _ = make_gateway(state_dir=state, config=str(state / "openclaw.json"))
        hb = ok(hello(gw, scopes=READ), "health", {})["agents"][0]["heartbeat"]
        self.assertEqual((hb["enabled"], hb["every"], hb["everyMs"]), (False, "disabled", None))

    def test_config_reload_status_follows_the_watcher(self) -> None:
        # §6.1 configReload: "active" while the config watcher runs; omitted without one (the
        # in-memory gateway has none), since "disabled" makes `openclaw health` report a
        # failed watcher.
        h = ok(self.client, "health", {"probe": True})
        self.assertNotIn("configReload", h)
        self.gw.health.config_reload = "active"
        h = ok(self.client, "health", {"probe": True})
        self.assertEqual(h["configReload"], {"hotReloadStatus": "active"})

    def fake_clocks(self) -> tuple[list[float], list[float]]:
        """Drive the lag probe's CPU and elapsed-time sources by hand: [cpu], [monotonic]."""
        cpu = [LoopLagProbe._cpu() + 10.0]
        mono = [time.monotonic() + 1000.0]
        self.gw.health.lag._cpu = lambda: cpu[0]  # type: ignore[method-assign]
        self.patch(health_module, "time", SimpleNamespace(monotonic=lambda: mono[0]))
        ok(self.client, "health", {"probe": True})  # closes the window opened at start
        return cpu, mono

    def assert_ratios(self, loop: dict[str, Any]) -> None:
        cpus = loop["cpuBreakdown"]["hostCpuCount"]
        self.assertTrue(0 <= loop["utilization"] <= 1, loop)
        self.assertTrue(0 <= loop["cpuCoreRatio"] <= cpus, loop)

    def test_event_loop_ratios_over_a_window(self) -> None:
        cpu, mono = self.fake_clocks()
        mono[0] += 10
        cpu[0] += 0.5
        loop = ok(self.client, "health", {"probe": True})["eventLoop"]
        self.assert_ratios(loop)
        self.assertAlmostEqual(loop["cpuCoreRatio"], 0.05, places=3)

    def test_event_loop_ratios_for_back_to_back_snapshots(self) -> None:
        # Two snapshots 1 ms apart with one 4 ms scheduler tick of CPU between them
        # (getrusage is tick-granular on many kernels): still a ratio, not 4 cores.
        cpu, mono = self.fake_clocks()
        mono[0] += 10
        cpu[0] += 0.5
        ok(self.client, "health", {"probe": True})
        mono[0] += 0.001
        cpu[0] += 0.004
        loop = ok(self.client, "health", {"probe": True})["eventLoop"]
        self.assert_ratios(loop)
        self.assertAlmostEqual(loop["cpuCoreRatio"], 0.05, places=3)  # the last real window

    def test_initial_snapshot_is_sane(self) -> None:
        # the snapshot cached at construction (served by the first health calls, hello-ok)
        self.assert_ratios(ok(self.client, "health", {})["eventLoop"])

    def test_served_from_cache(self) -> None:
        first = ok(self.client, "health", {})
        step(self.clock, 10)
        second = ok(self.client, "health")  # no params at all is fine too
        self.assertEqual(first["ts"], second["ts"])
        self.assertEqual(self.client.events("health"), [])

    def test_probe_refreshes_and_broadcasts(self) -> None:
        cached = ok(self.client, "health", {})
        version = self.gw.health.version
        step(self.clock, 10)
        self.client.pop()
        rid = self.client.request("health", {"probe": True})
        frames = self.client.pop()
        self.assertEqual([f.get("event", f.get("type")) for f in frames], ["health", "res"])
        event, res = frames
        self.assertEqual(res["id"], rid)
        self.assertEqual(res["payload"]["ts"], self.gw.now_ms())
        self.assertNotEqual(res["payload"]["ts"], cached["ts"])
        self.assertEqual(event["payload"], res["payload"])
        self.assertEqual(event["stateVersion"]["health"], version + 1)
        again = ok(self.client, "health", {})
        self.assertEqual(again["ts"], res["payload"]["ts"])

    def test_health_allowed_without_scopes(self) -> None:
        probe = hello(self.gw, scopes=[])
        self.assertTrue(ok(probe, "health", {})["ok"])

    def test_unknown_param_rejected(self) -> None:
        res = call(self.client, "health", {"x": 1})
        self.assertEqual(res["error"], {
            "code": "INVALID_REQUEST",
            "message": "invalid health params: at root: unexpected property 'x'"})
        res = call(self.client, "health", {"probe": "yes"})
        self.assertEqual(res["error"]["message"], "invalid health params: at /probe: must be boolean")


class Status(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def test_shape_for_reader(self) -> None:
        s = ok(hello(self.gw, scopes=READ), "status", {})
        self.assertEqual(set(s), STATUS_KEYS)
        self.assertEqual(s["runtimeVersion"], "2026.9.6")
        self.assertEqual(s["hostDesktop"], {"enabled": False, "state": "disabled", "port": 5900})
        self.assertEqual(s["heartbeat"]["defaultAgentId"], "main")
        agent = s["heartbeat"]["agents"][0]
        self.assertEqual((agent["agentId"], agent["enabled"], agent["every"], agent["everyMs"]),
                         ("main", True, "30m", 1_800_000))
        self.assertEqual(set(s["tasks"]["byStatus"]), TASK_STATUSES)
        self.assertEqual(set(s["tasks"]["byRuntime"]), {"subagent", "acp", "cli", "cron"})
        self.assertEqual(s["tasks"]["total"], 0)
        # every audit code counted, as in the real answer (2026.9.6)
        self.assertEqual(s["taskAudit"], {"total": 0, "warnings": 0, "errors": 0, "byCode": {
            "stale_queued": 0, "stale_running": 0, "lost": 0, "delivery_failed": 0,
            "missing_cleanup": 0, "inconsistent_timestamps": 0}})
        sessions = s["sessions"]
        self.assertEqual(sessions["paths"], [])
        self.assertEqual(sessions["defaults"], {"model": None, "contextTokens": None})
        self.assertEqual(sessions["byAgent"],
                         [{"agentId": "main", "path": "[redacted]", "count": 0, "recent": []}])
        self.assertLessEqual(EVENT_LOOP_KEYS, set(s["eventLoop"]))
        self.assertIsInstance(s["processMemory"]["rssBytes"], int)
        self.assertGreater(s["processMemory"]["rssBytes"], 0)
        self.assertIsInstance(s["pid"], int)
        self.assertEqual(s["shutdownBudget"]["activeWork"]["rootRequests"], 0)

    def test_admin_sees_paths(self) -> None:
        s = ok(hello(self.gw, scopes=ADMIN), "status", {})
        path = s["sessions"]["byAgent"][0]["path"]
        self.assertTrue(path.endswith(SESSIONS_SUFFIX), path)
        self.assertEqual(s["sessions"]["paths"], [path])

    def test_counts_the_stored_sessions(self) -> None:
        """`openclaw status` shows how many sessions the gateway holds (it said 0 always).
        Which they are only an admin learns: the real status gives a caller without
        operator.admin (the CLI's status) the count and no recent rows (2026.9.6)."""
        client = hello(self.gw, scopes=["operator.write", "operator.read"])
        for key in ("main", "other"):
            ok(client, "chat.send", {"sessionKey": key, "message": "hi", "idempotencyKey": key})
        sessions = ok(client, "status", {})["sessions"]
        self.assertEqual(sessions["count"], 2)
        self.assertEqual(sessions["byAgent"][0]["count"], 2)
        self.assertEqual((sessions["recent"], sessions["byAgent"][0]["recent"]), ([], []))
        sessions = ok(hello(self.gw, scopes=ADMIN), "status", {})["sessions"]
        self.assertEqual({r["key"] for r in sessions["recent"]},
                         {"agent:main:main", "agent:main:other"})
        self.assertEqual(sessions["byAgent"][0]["recent"], sessions["recent"])

    def test_requires_read(self) -> None:
        res = call(hello(self.gw, scopes=[]), "status", {})
        self.assertEqual(res["error"]["code"], "FORBIDDEN")
        self.assertEqual(res["error"]["message"], "missing scope: operator.read")

    def test_cli_projection_only_when_asked(self) -> None:
        """The CLI's `status` asks for includeCliProjection; without the projection in the
        answer its `status --json` reports agents.defaultId, ownership and selectionRequired as
        null and "This Gateway does not expose the CLI configuration projection."."""
        client = hello(self.gw, scopes=READ)
        self.assertNotIn("cliProjection", ok(client, "status", {}))
        asked = ok(client, "status", {"includeChannelSummary": False,
                                      "includeCliProjection": True})
        self.assertEqual(asked["cliProjection"], {
            "agents": {"defaultId": "main", "ownership": "sole", "selectionRequired": False,
                       "rows": [{"id": "main"}]},
            "updateChannel": None,
            "memoryPlugin": {"enabled": False, "slot": None, "reason": "no memory plugin"}})

    def test_cli_projection_of_a_config(self) -> None:
        raw = {"agents": {"list": [{"id": "Ops", "name": "Operations"}, {"id": "beta"},
                                   {"id": "main", "name": ""}]},
               "update": {"channel": "beta"}}
        projection = cli_projection(raw)
        self.assertEqual(projection["agents"]["rows"],
                         [{"id": "main"}, {"id": "beta"}, {"id": "ops", "name": "Operations"}])
        self.assertEqual(projection["updateChannel"], "beta")

    def test_accepts_known_flags_only(self) -> None:
        client = hello(self.gw, scopes=READ)
        ok(client, "status", {"includeChannelSummary": True, "includeCliProjection": False})
        res = call(client, "status", {"deep": True})
        self.assertEqual(res["error"]["message"],
                         "invalid status params: at root: unexpected property 'deep'")


class Presence(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def test_self_entry(self) -> None:
        entries = ok(hello(self.gw, scopes=READ), "system-presence", {})
        self.assertIsInstance(entries, list)
        me = entries[0]
        self.assertEqual(set(me), SELF_KEYS)
        self.assertEqual((me["mode"], me["reason"], me["version"]),
                         ("gateway", "self", "2026.9.6"))
        self.assertEqual(me["instanceId"], self.gw.instance_id)
        self.assertEqual(me["ts"], self.gw.now_ms())
        self.assertEqual(
            me["text"],
            f"Gateway: {me['host']} ({me['ip']}) · app 2026.9.6 · mode gateway · reason self")

    def test_system_event_requires_admin(self) -> None:
        res = call(hello(self.gw, scopes=READ), "system-event", {"text": "hi"})
        self.assertEqual(res["error"]["code"], "FORBIDDEN")
        self.assertEqual(res["error"]["message"], "missing scope: operator.admin")

    def test_system_event_validates_text(self) -> None:
        admin = hello(self.gw, scopes=ADMIN)
        self.assertEqual(call(admin, "system-event", {})["error"]["message"],
                         "invalid system-event params: must have required property 'text'")
        self.assertEqual(
            call(admin, "system-event", {"text": ""})["error"]["message"],
            "invalid system-event params: at /text: must NOT have fewer than 1 characters")
        self.assertEqual(
            call(admin, "system-event", {"text": "x", "bogus": 1})["error"]["message"],
            "invalid system-event params: at root: unexpected property 'bogus'")

    def test_system_event_appears_in_presence(self) -> None:
        admin = hello(self.gw, scopes=ADMIN)
        self.assertEqual(ok(admin, "system-event", {"text": "hello system event"}),
                         {"ok": True})
        entries = ok(admin, "system-presence", {})
        self.assertEqual(len(entries), 2)
        self.assertEqual(entries[1], {"text": "hello system event", "ts": self.gw.now_ms()})


class Heartbeats(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def test_last_heartbeat_null(self) -> None:
        res = call(hello(self.gw, scopes=READ), "last-heartbeat", {})
        self.assertEqual((res["ok"], res["payload"]), (True, None))

    def test_set_heartbeats(self) -> None:
        admin = hello(self.gw, scopes=ADMIN)
        self.assertEqual(ok(admin, "set-heartbeats", {"enabled": False}),
                         {"ok": True, "enabled": False})
        self.assertFalse(ok(admin, "status", {})["heartbeat"]["agents"][0]["enabled"])
        self.assertEqual(ok(admin, "set-heartbeats", {"enabled": True}),
                         {"ok": True, "enabled": True})
        self.assertEqual(call(admin, "set-heartbeats", {})["error"]["message"],
                         "invalid set-heartbeats params: must have required property 'enabled'")

    def test_set_heartbeats_requires_admin(self) -> None:
        res = call(hello(self.gw, scopes=READ), "set-heartbeats", {"enabled": False})
        self.assertEqual(res["error"]["message"], "missing scope: operator.admin")
        self.assertTrue(self.gw.heartbeats_enabled)


class Identity(SynchronousTestCase):
    def test_device_id_is_sha256_of_raw_key(self) -> None:
        gw, _ = make_gateway()
        ident = ok(hello(gw, scopes=READ), "gateway.identity.get", {})
        self.assertEqual(set(ident), {"deviceId", "publicKey"})
        key = ident["publicKey"]
        self.assertEqual(len(key), 43)
        self.assertNotIn("=", key)
        raw = base64.urlsafe_b64decode(key + "=")
        self.assertEqual(len(raw), 32)
        self.assertEqual(ident["deviceId"], hashlib.sha256(raw).hexdigest())
        self.assertRegex(ident["deviceId"], r"^[0-9a-f]{64}$")

    def test_identity_survives_restart(self) -> None:
        state = fresh_dir(self)
        gw1, _ = make_gateway(state_dir=state)
        first = ok(hello(gw1, scopes=READ), "gateway.identity.get", {})
        gw2, _ = make_gateway(state_dir=state)
        second = ok(hello(gw2, scopes=READ), "gateway.identity.get", {})
        self.assertEqual(first, second)
        gw3, _ = make_gateway()  # another state dir, another identity
        third = ok(hello(gw3, scopes=READ), "gateway.identity.get", {})
        self.assertNotEqual(third["deviceId"], first["deviceId"])

    def test_requires_read(self) -> None:
        gw, _ = make_gateway()
        res = call(hello(gw, scopes=[]), "gateway.identity.get", {})
        self.assertEqual(res["error"]["message"], "missing scope: operator.read")


class Dispatch(SynchronousTestCase):
    def test_unknown_method(self) -> None:
        gw, _ = make_gateway()
        admin = hello(gw, scopes=ADMIN)
        self.assertEqual(call(admin, "no.such.method", {})["error"],
                         {"code": "INVALID_REQUEST", "message": "unknown method: no.such.method"})
        reader = hello(gw, scopes=READ)
        self.assertEqual(call(reader, "no.such.method", {})["error"]["message"],
                         "missing scope: operator.admin")
