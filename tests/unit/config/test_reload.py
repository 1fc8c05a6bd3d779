"""Config RPCs (§6.6), the reload planner and hot reload (§14).

Shapes follow traces/misc-methods-2.jsonl.  The watcher runs on the MemoryReactorClock: a file
change is acted on once it has been stable for one poll, so tests advance two seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.config import document as configfile
from openclaw_tw.config import settings as config
from tests.support.helpers import TOKEN, Closed, call, hello, ok
from tests.support.tmp import fresh_dir

ADMIN = ["operator.admin"]
READ = ["operator.read"]

BASE = {
    "gateway": {"trustedProxies": ["127.0.0.1"],
                "http": {"endpoints": {"chatCompletions": {"enabled": True}}}},
    "hooks": {"enabled": True, "token": "hook-secret-1", "path": "/hooks"},
}




class Harness(SynchronousTestCase):
    """A gateway whose settings come from a config file, with the watcher wired."""

    file_token = False

    def setUp(self) -> None:
        self.state = fresh_dir(self)
        self.path = self.state / "openclaw.json"
        cfg = json.loads(json.dumps(BASE))
        if self.file_token:
            cfg["gateway"]["auth"] = {"mode": "token", "token": TOKEN}
        self.path.write_text("// my comment\n" + json.dumps(cfg, indent=2))
        self.options: dict[str, Any] = {"state-dir": str(self.state), "port": "0",
                                        "config": str(self.path)}
        if not self.file_token:
            self.options["token"] = TOKEN  # a flag: must win over the file on every reload
        self.env = {"HOME": str(self.state)}
        self.clock = MemoryReactorClock()
        self.clock.advance(1_795_000_000)
        self.app = composition.build(
            config.resolve(self.options, self.env), self.clock,
            config_resolver=lambda data: config.resolve_data(self.options, self.env, data),
            env=self.env)
        self.gw = self.app.hub
        self.gw.startService()
        self.app.runtime.startService()
        self.watcher = self.app.config_watcher
        assert self.watcher is not None
        self.watcher.startService()
        self.addCleanup(self.watcher.stopService)

    def write(self, data: Any, text: str | None = None) -> None:
        self.path.write_text(text if text is not None else json.dumps(data))
        # A distinct mtime even on coarse filesystems.
        st = os.stat(self.path)
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    def settle(self) -> None:
        for _ in range(3):
            self.clock.advance(1)


class ConfigGet(Harness):
    def test_shape_hash_and_redaction(self) -> None:
        client = hello(self.gw, scopes=READ)
        got = ok(client, "config.get", {})
        for key in ("path", "exists", "raw", "parsed", "resolved", "valid", "issues", "hash",
                    "config", "runtimeConfig", "sourceConfig", "warnings", "legacyIssues"):
            self.assertIn(key, got)
        self.assertTrue(got["exists"])
        self.assertTrue(got["valid"])
        self.assertEqual(got["issues"], [])
        self.assertTrue(got["hash"].startswith("hmac-sha256:v1:"))
        self.assertEqual(got["hash"], ok(client, "config.get", {})["hash"])  # stable
        self.assertNotIn("hook-secret-1", json.dumps(got))
        self.assertEqual(got["parsed"]["hooks"]["token"], configfile.REDACTED)
        self.assertIn("// my comment", got["raw"])
        self.assertIn(configfile.REDACTED, got["raw"])

    def test_corrupt_file_is_reported_not_fatal(self) -> None:
        self.write(None, '{ gateway: { port: "x", bogus: 1 }, nonsense: true }')
        got = ok(hello(self.gw, scopes=READ), "config.get", {})
        self.assertFalse(got["valid"])
        paths = {i["path"] for i in got["issues"]}
        self.assertEqual(paths, {"gateway.port", "gateway.bogus", "nonsense"})


    def test_integers_past_64_bits_are_doubles(self) -> None:
        # Node reads every number as a double; orjson could not encode such an int back.
        self.write(None, '{ gateway: { mode: "local" }, ui: { seamColor: "#fff" }, '
                         'meta: { big: 100000000000000000000, neg: -9223372036854775809, '
                         'edge: 18446744073709551615, list: [1, 36893488147419103232] } }')
        got = ok(hello(self.gw, scopes=READ), "config.get", {})
        meta = got["parsed"]["meta"]
        self.assertEqual(meta, {"big": 1e20, "neg": -9.223372036854776e18,
                                "edge": 18446744073709551615,
                                "list": [1, 3.6893488147419103e19]})
        self.assertIs(type(meta["edge"]), int)


class ConfigWrites(Harness):
    def setUp(self) -> None:
        super().setUp()
        self.admin = hello(self.gw, scopes=ADMIN)
        self.base = ok(self.admin, "config.get", {})["hash"]

    def test_stale_base_hash(self) -> None:
        res = call(self.admin, "config.patch", {
            "raw": "{ gateway: { http: { endpoints: { responses: { enabled: true } } } } }",
            "baseHash": "hmac-sha256:v1:stale"})
        self.assertFalse(res["ok"])
        self.assertEqual(res["error"], {
            "code": "INVALID_REQUEST",
            "message": "config changed since last load; re-run config.get and retry"})

    def test_missing_base_hash_when_the_file_exists(self) -> None:
        res = call(self.admin, "config.set", {"raw": "{}"})
        self.assertFalse(res["ok"])
        self.assertIn("re-run config.get", res["error"]["message"])

    def test_patch_writes_atomically_broadcasts_and_hot_applies(self) -> None:
        before = self.path.read_text()
        res = ok(self.admin, "config.patch", {
            "raw": "{ gateway: { http: { endpoints: { responses: { enabled: true } } } } }",
            "baseHash": self.base})
        self.assertTrue(res["ok"])
        self.assertEqual(res["changedPaths"], ["gateway.http.endpoints.responses"])
        self.assertFalse(res["sentinel"]["payload"]["stats"]["requiresRestart"])
        self.assertEqual(res["config"]["hooks"]["token"], configfile.REDACTED)
        self.assertEqual(Path(str(self.path) + ".last-good").read_text(), before)
        on_disk = configfile.parse(self.path.read_text())
        self.assertTrue(self.path.read_text().startswith("// my comment\n"))  # kept (#20)
        self.assertTrue(on_disk["gateway"]["http"]["endpoints"]["responses"]["enabled"])
        self.assertEqual(on_disk["hooks"]["token"], "hook-secret-1")
        self.assertEqual(res["hash"], configfile.hash_text(self.path.read_text()))
        changed = self.admin.events("config.changed")
        self.assertEqual(len(changed), 1)
        self.assertEqual(set(changed[0]["payload"]), {"path", "hash", "ts"})
        self.assertEqual(changed[0]["payload"]["hash"], res["hash"])
        # Applied at once: the HTTP surface reads gw.settings per request.
        self.assertTrue(self.gw.settings.responses_enabled)
        self.assertEqual(self.gw.settings.token, TOKEN)
        self.assertEqual(res["reload"]["hot"], ["gateway.http.endpoints.responses"])

    def test_replace_paths_and_null_removes(self) -> None:
        res = ok(self.admin, "config.patch", {
            "raw": '{ gateway: { http: { endpoints: { responses: { enabled: true } } } },'
                   ' hooks: { path: null } }',
            "replacePaths": ["gateway.http.endpoints"], "baseHash": self.base})
        on_disk = json.loads(self.path.read_text())
        self.assertEqual(on_disk["gateway"]["http"]["endpoints"],
                         {"responses": {"enabled": True}})
        self.assertNotIn("path", on_disk["hooks"])
        self.assertEqual(sorted(res["changedPaths"]), [
            "gateway.http.endpoints.chatCompletions", "gateway.http.endpoints.responses",
            "hooks.path"])

    def test_invalid_config_reports_every_problem_and_writes_nothing(self) -> None:
        before = self.path.read_text()
        res = call(self.admin, "config.patch", {
            "raw": '{ bogus: 1, gateway: { port: "x", bind: "moon" } }', "baseHash": self.base})
        self.assertFalse(res["ok"])
        paths = {i["path"] for i in res["error"]["details"]["issues"]}
        self.assertEqual(paths, {"bogus", "gateway.port", "gateway.bind"})
        self.assertEqual(self.path.read_text(), before)
        self.assertFalse(Path(str(self.path) + ".last-good").exists())

    def test_set_keeps_the_raw_text_and_restores_redacted_secrets(self) -> None:
        text = '// kept\n{ hooks: { enabled: true, token: "__OPENCLAW_REDACTED__" } }\n'
        ok(self.admin, "config.set", {"raw": text, "baseHash": self.base})
        self.assertEqual(json.loads(self.path.read_text())["hooks"]["token"], "hook-secret-1")
        text = '// kept\n{ hooks: { enabled: false } }\n'
        ok(self.admin, "config.apply", {
            "raw": text, "baseHash": ok(self.admin, "config.get", {})["hash"]})
        self.assertEqual(self.path.read_text(), text)

    def test_writes_need_admin(self) -> None:
        reader = hello(self.gw, scopes=READ)
        res = call(reader, "config.patch", {"raw": "{}", "baseHash": self.base})
        self.assertEqual(res["error"]["code"], "FORBIDDEN")

    def test_restart_path_is_flagged(self) -> None:
        res = ok(self.admin, "config.patch", {"raw": "{ gateway: { port: 19999 } }",
                                              "baseHash": self.base})
        self.assertTrue(res["sentinel"]["payload"]["stats"]["requiresRestart"])
        self.assertEqual(res["restart"]["paths"], ["gateway.port"])


class SchemaLookup(Harness):
    def test_lookup_shapes(self) -> None:
        client = hello(self.gw, scopes=READ)
        port = ok(client, "config.schema.lookup", {"path": "gateway.port"})
        self.assertEqual(port["reloadKind"], "restart")
        self.assertEqual(port["schema"]["type"], "integer")
        self.assertEqual(port["children"], [])
        endpoints = ok(client, "config.schema.lookup", {"path": "gateway.http.endpoints"})
        self.assertEqual(endpoints["reloadKind"], "hot")
        self.assertEqual([c["key"] for c in endpoints["children"]],
                         ["chatCompletions", "responses"])
        self.assertEqual(endpoints["children"][0]["path"],
                         "gateway.http.endpoints.chatCompletions")
        self.assertEqual(endpoints["children"][0]["reloadKind"], "hot")
        res = call(client, "config.schema.lookup", {"path": "nope.nothing"})
        self.assertFalse(res["ok"])
        schema = ok(client, "config.schema", {})["schema"]
        self.assertFalse(schema["additionalProperties"])
        self.assertIn("gateway", schema["properties"])


class ReloadPlanner(SynchronousTestCase):
    TABLE = [
        ("gateway.port", "restart"), ("gateway.bind", "restart"),
        ("gateway.customBindHost", "restart"), ("gateway.auth.mode", "restart"),
        ("gateway.tls", "restart"), ("gateway.tls.certPath", "restart"),
        ("gateway.auth.token", "hot"), ("bindings", "hot"), ("gateway.auth.password", "hot"),
        ("gateway.http.endpoints", "hot"), ("gateway.http.endpoints.responses.enabled", "hot"),
        ("gateway.tools.allow", "hot"), ("gateway.trustedProxies", "hot"),
        ("gateway.nodes.commands.allow", "hot"), ("gateway.reload.mode", "hot"),
        ("gateway.controlUi.allowedOrigins", "hot"), ("gateway.controlUi.basePath", "restart"),
        ("hooks", "hot"), ("hooks.token", "hot"), ("models.providers.x", "hot"),
        ("agents.defaults.model", "hot"), ("session.dmScope", "hot"), ("tools.exec", "hot"),
        ("cron.enabled", "hot"), ("logging.level", "hot"), ("channels.x.enabled", "hot"),
        ("discovery.mdns.mode", "hot"), ("discovery.wideArea.domain", "restart"),
        ("meta.lastTouchedVersion", "none"), ("$schema", "none"),
        ("gateway.somethingNew", "restart"), ("unknownTop", "restart"),
    ]

    def test_table(self) -> None:
        for path, kind in self.TABLE:
            self.assertEqual(configfile.reload_kind(path), kind, path)

    def test_merge_patch(self) -> None:
        self.assertEqual(configfile.merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}),
                         {"a": {"c": 2}})
        self.assertEqual(configfile.merge_patch({"a": {"b": 1}}, {"a": {"d": 2}}, ["a"]),
                         {"a": {"d": 2}})


class HotReload(Harness):
    def test_hot_edit_applies_and_keeps_flag_precedence(self) -> None:
        cfg = json.loads(json.dumps(BASE))
        cfg["gateway"]["http"]["endpoints"]["responses"] = {"enabled": True}
        cfg["gateway"]["tools"] = {"deny": ["exec"]}
        cfg["gateway"]["auth"] = {"token": "file-token"}  # the --token flag still wins
        self.write(cfg)
        self.settle()
        self.assertTrue(self.gw.settings.responses_enabled)
        self.assertEqual(self.gw.settings.tools_deny, ("exec",))
        self.assertEqual(self.gw.settings.token, TOKEN)
        self.assertEqual(self.gw.auth_policy.secret, TOKEN)
        plan = self.watcher.last_plan
        assert plan is not None
        self.assertTrue(plan["applied"])
        self.assertIn("gateway.http.endpoints.responses", plan["hot"])
        self.assertIn("gateway.auth", plan["restart"] + plan["hot"])

    def test_restart_paths_keep_running_values(self) -> None:
        cfg = json.loads(json.dumps(BASE))
        cfg["gateway"]["port"] = 19999
        cfg["gateway"]["bind"] = "lan"
        self.write(cfg)
        self.settle()
        self.assertEqual(self.gw.settings.port, 0)
        self.assertEqual(self.gw.settings.bind, "loopback")
        plan = self.watcher.last_plan
        assert plan is not None
        self.assertEqual(sorted(plan["restart"]), ["gateway.bind", "gateway.port"])
        self.assertTrue(plan["requiresRestart"])

    def test_corrupt_edit_is_skipped_and_the_gateway_keeps_serving(self) -> None:
        client = hello(self.gw, scopes=READ)
        settings = self.gw.settings
        for text in ('{ gateway: { http: ', '{ gateway: { port: "nope" }, extra: 1 }', ''):
            self.write(None, text)
            self.settle()
            self.assertIs(self.gw.settings, settings)
            self.assertIsNotNone(self.watcher.last_error)
        self.assertEqual(len(self.watcher.last_error["issues"]), 1)  # '' is invalid JSON5
        self.assertTrue(ok(client, "health", {})["ok"])
        self.assertNotEqual(self.path.read_text(), "x")  # never rewritten by the watcher
        self.assertEqual(self.path.read_text(), "")
        # A later good edit is applied.
        cfg = json.loads(json.dumps(BASE))
        cfg["hooks"]["path"] = "/in"
        self.write(cfg)
        self.settle()
        self.assertIsNone(self.watcher.last_error)
        self.assertEqual(self.gw.settings.hooks_path, "/in")

    def test_no_change_no_reload(self) -> None:
        self.settle()
        self.assertIsNone(self.watcher.last_plan)
        self.assertEqual(self.watcher.reloads, 0)

    def test_reload_off_mode_waits(self) -> None:
        cfg = json.loads(json.dumps(BASE))
        cfg["gateway"]["reload"] = {"mode": "off"}
        cfg["gateway"]["http"]["endpoints"]["responses"] = {"enabled": True}
        self.write(cfg)
        self.settle()
        self.assertFalse(self.gw.settings.responses_enabled)
        self.assertFalse(self.watcher.last_plan["applied"])

    def test_sighup_reload_is_scheduled_not_run_in_the_handler(self) -> None:
        calls: list[Any] = []
        self.gw.reactor = type("R", (), {"callFromThread": lambda _, f: calls.append(f)})()
        self.watcher._on_sighup(1, None)
        self.watcher._on_sighup(1, None)
        self.assertEqual(len(calls), 1)  # coalesced
        cfg = json.loads(json.dumps(BASE))
        cfg["hooks"]["path"] = "/hup"
        self.path.write_text(json.dumps(cfg))
        calls[0]()
        self.assertEqual(self.gw.settings.hooks_path, "/hup")


class TokenRotation(Harness):
    file_token = True

    def test_rotation_closes_shared_token_sockets(self) -> None:
        client = hello(self.gw, scopes=READ)
        cfg = json.loads(json.dumps(BASE))
        cfg["gateway"]["auth"] = {"mode": "token", "token": "rotated-token"}
        self.write(cfg)
        self.settle()
        self.assertEqual(self.gw.auth_policy.secret, "rotated-token")
        closed = client.closed()
        self.assertIsInstance(closed, Closed)
        assert closed is not None
        self.assertEqual((closed.code, closed.reason), (4001, "gateway auth changed"))
        hello(self.gw, scopes=READ, token="rotated-token")

    def test_auth_mode_change_needs_a_restart(self) -> None:
        cfg = json.loads(json.dumps(BASE))
        cfg["gateway"]["auth"] = {"mode": "password", "password": "pw"}
        self.write(cfg)
        self.settle()
        self.assertEqual(self.gw.settings.auth_mode, "token")
        self.assertEqual(self.gw.auth_policy.secret, TOKEN)
        self.assertIn("gateway.auth.mode", self.watcher.last_plan["restart"])


class Startup(SynchronousTestCase):
    def test_unknown_keys_refuse_startup_with_every_problem(self) -> None:
        state = fresh_dir(self)
        path = state / "openclaw.json"
        path.write_text('{ gateway: { bogus: 1 }, whatever: {} }')
        from twisted.python import usage

        options = tap.Options()
        options.parseOptions(["--port", "0", "--token", "T", "--state-dir", str(state),
                              "--config", str(path)])
        self.assertIsInstance(options, usage.Options)
        with self.assertRaises(SystemExit) as ctx:
            tap.makeService(options, reactor=MemoryReactorClock())
        message = str(ctx.exception.code)
        self.assertIn("gateway.bogus: unknown key", message)
        self.assertIn("whatever: unknown key", message)
