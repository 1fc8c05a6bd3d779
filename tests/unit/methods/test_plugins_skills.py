"""Plugins, skills and environments (methods/plugins.py, skills.py, environments.py).

The real answers (openclaw 2026.9.6, fresh install, captured with tools/ws-capture.py under
the Control UI) are trimmed to the fields compared: where the real gateway lists its bundled
plugins, skills and itself, we list what we have.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import attrs
from twisted.trial.unittest import SynchronousTestCase

from tests.support.helpers import call, hello, make_app, ok
from tests.support.nodes import Node, approve_node

READ = ["operator.read"]

REAL_CONTROL_UI_LIST = {
    "revision": "135d4539612c195c5d51f2f3f944f6bc4d9a7645fb37f24d37c9c9d0eb039f4d",
    "plugins": [], "diagnostics": []}
REAL_SURFACE_REFRESH = {"surface": "canvas", "pluginSurfaceUrls": {
    "canvas": "http://127.0.0.1:28711/__openclaw__/cap/vZVQVxfV-a_EXCEkZoo2S_T8"},
    "expiresAtMs": 1796613186138}
REAL_PLUGINS_LIST_KEYS = {"plugins", "diagnostics", "mutationAllowed", "generation"}
REAL_LIBRARY_LIST = {"entries": [], "profileId": "gateway-owner", "multipleProfiles": False,
                     "defaultTarget": "workspace", "canManageWorkspace": True,
                     "defaultSelectionLimit": 64}
REAL_SKILLS_STATUS_KEYS = {"workspaceDir", "managedSkillsDir", "agentId", "skills"}
REAL_HOOKS_STATUS_KEYS = {"workspaceDir", "managedHooksDir", "hooks"}
REAL_GATEWAY_ENV = {"id": "gateway", "type": "local", "label": "Gateway local",
                    "status": "available", "platform": "linux", "sessionHost": True,
                    "trust": "persistent",
                    "capabilities": ["agent.run", "sessions", "tools", "workspace"]}


class Case(SynchronousTestCase):
    options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.app, self.clock = make_app(**self.options)
        self.read = hello(self.app.hub, scopes=READ)


class Plugins(Case):
    def test_plugins_list_empty_and_immutable(self) -> None:
        got = ok(self.read, "plugins.list", {})
        self.assertEqual(got, {"plugins": [], "diagnostics": [], "mutationAllowed": False})
        self.assertLessEqual(set(got), REAL_PLUGINS_LIST_KEYS)
        for method in ("plugins.install", "plugins.setEnabled", "plugins.uninstall"):
            self.assertNotIn(method, self.app.hub.methods.advertised())

    def test_control_ui_list_has_the_real_empty_revision(self) -> None:
        self.assertEqual(ok(self.read, "plugins.controlUi.list", {}), REAL_CONTROL_UI_LIST)
        body = b'{"plugins":[],"diagnostics":[]}'
        self.assertEqual(REAL_CONTROL_UI_LIST["revision"], hashlib.sha256(body).hexdigest())

    def test_catalog_browse(self) -> None:
        self.assertEqual(ok(self.read, "plugins.catalog.browse", {}), {"items": []})
        got = ok(self.read, "plugins.catalog.browse",
                 {"intent": "featured", "pageSize": 8, "searchSource": "openclaw-control-ui"})
        self.assertEqual(got, {"items": []})
        res = call(self.read, "plugins.catalog.browse", {"query": "x", "cursor": "c"})
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                        "message": "Plugin search does not accept a browse "
                                                   "cursor."})
        res = call(self.read, "plugins.catalog.browse", {"category": "Bad"})
        self.assertIn("must match pattern", res["error"]["message"])
        res = call(self.read, "plugins.catalog.browse", {"pageSize": 101})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")

    def test_surface_refresh_for_a_surface_we_do_not_host(self) -> None:
        res = call(self.read, "plugin.surface.refresh",
                   {"surface": "canvas", "observedUrl": "http://127.0.0.1:1/__openclaw__/cap/x"})
        self.assertFalse(res["ok"])
        self.assertEqual(res["error"], {"code": "UNAVAILABLE",
                                        "message": "canvas plugin surface unavailable"})
        self.assertEqual(call(self.read, "plugin.surface.refresh", {"surface": " "})["error"],
                         {"code": "INVALID_REQUEST", "message": "surface required"})
        self.assertEqual(set(REAL_SURFACE_REFRESH), {"surface", "pluginSurfaceUrls",
                                                     "expiresAtMs"})


class Skills(Case):
    def test_status(self) -> None:
        got = ok(self.read, "skills.status", {"agentId": "main"})
        self.assertEqual(set(got), REAL_SKILLS_STATUS_KEYS)
        self.assertEqual(got["agentId"], "main")
        self.assertEqual(got["skills"], [])
        state = self.app.hub.display_path(self.app.settings.state_dir)
        self.assertEqual(got["workspaceDir"], f"{state}/workspace")
        self.assertEqual(got["managedSkillsDir"], f"{state}/skills")
        self.assertEqual(ok(self.read, "skills.status", {}), got)
        res = call(self.read, "skills.status", {"agentId": "nobody"})
        self.assertEqual(res["error"]["message"], 'unknown agent id "nobody"')

    def test_hooks_status(self) -> None:
        """`openclaw hooks list` asks the gateway; we run no hooks, so the real report is
        empty (the real one lists its five bundled hooks)."""
        got = ok(self.read, "hooks.status", {"agentId": "main"})
        self.assertEqual(set(got), REAL_HOOKS_STATUS_KEYS)
        state = self.app.hub.display_path(self.app.settings.state_dir)
        self.assertEqual(got, {"workspaceDir": f"{state}/workspace",
                               "managedHooksDir": f"{state}/hooks", "hooks": []})
        self.assertEqual(ok(self.read, "hooks.status", {}), got)
        self.assertEqual(ok(self.read, "hooks.status", {"agentId": " "}), got)  # blank: default
        self.assertIn("hooks.status", self.app.hub.methods.advertised())
        # the real refusals, word for word
        self.assertEqual(call(self.read, "hooks.status", {"agentId": "nope"})["error"],
                         {"code": "INVALID_REQUEST", "message": 'unknown agent id "nope"'})
        res = call(self.read, "hooks.status", {"bogus": 1})
        self.assertEqual(res["error"]["message"],
                         "invalid hooks.status params: at root: unexpected property 'bogus'")
        nobody = hello(self.app.hub, scopes=[])
        self.assertEqual(call(nobody, "hooks.status", {})["error"]["message"],
                         "missing scope: operator.read")

    def test_library_list(self) -> None:
        got = ok(self.read, "skills.library.list", {"scope": "all"})
        self.assertEqual(set(got), set(REAL_LIBRARY_LIST))
        self.assertEqual(got, {**REAL_LIBRARY_LIST, "profileId": None,
                               "defaultTarget": "unavailable", "canManageWorkspace": False})
        with_session = ok(self.read, "skills.library.list", {"sessionKey": "main"})
        self.assertEqual(with_session["session"], {"sessionKey": "agent:main:main",
                                                   "selections": [], "attachable": []})
        res = call(self.read, "skills.library.list", {"scope": "everyone"})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")


class Environments(Case):
    def test_the_gateway_itself(self) -> None:
        got = ok(self.read, "environments.list", {})
        self.assertEqual(got, {"environments": [{
            **REAL_GATEWAY_ENV, "platform": sys.platform,
            "capabilities": ["agent.run", "sessions"]}]})
        self.assertEqual(ok(self.read, "environments.list", {"projection": "profiles"}),
                         {"environments": []})

    def test_runtime_id_needs_write(self) -> None:
        res = call(self.read, "environments.list", {"runtimeId": "codex"})
        self.assertEqual(res["error"]["message"], "missing scope: operator.write")
        writer = hello(self.app.hub, scopes=["operator.write"])
        self.assertEqual(len(ok(writer, "environments.list", {"runtimeId": "codex"})
                             ["environments"]), 1)

    def test_a_paired_node(self) -> None:
        node = Node(self.app.hub)
        # pending: not an environment yet
        self.assertEqual(len(ok(self.read, "environments.list", {})["environments"]), 1)
        approve_node(self.app, node)
        envs = ok(self.read, "environments.list", {})["environments"]
        self.assertEqual([e["id"] for e in envs], ["gateway", f"node:{node.id}"])
        env = envs[1]
        self.assertEqual(env["type"], "node")
        self.assertEqual(env["status"], "available")
        self.assertEqual(env["trust"], "persistent")
        self.assertIs(env["sessionHost"], False)
        self.assertEqual(env["platform"], "linux")
        self.assertIn("system", env["capabilities"])
        self.assertIn("system.run", env["invocableCommands"])


class ExecTools(Case):
    def setUp(self) -> None:
        super().setUp()
        self.app.hub.settings = attrs.evolve(self.app.hub.settings,
                                             raw={"tools": {"exec": {"enabled": True}}})

    def test_tools_capability_with_the_exec_tool(self) -> None:
        [gateway] = ok(self.read, "environments.list", {})["environments"]
        self.assertEqual(gateway["capabilities"], ["agent.run", "sessions", "tools"])
