"""sessions.groups.* (methods/session_groups.py, sessions/groups.py): answers and messages as
the real 2026.9.6 gateway gave them for the same calls (put, a member via sessions.patch
category, put dropping it, rename, update, delete, unknown groups), plus persistence."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.methods.session_groups import NO_DEFAULTS
from tests.support.agent import MAIN, RW
from tests.support.helpers import call, hello, make_app, ok, stored_row
from tests.support.tmp import scratch_dir

DROP_ALPHA = ('sessions.groups.put cannot drop groups that still have member sessions: '
              '"Alpha" (1); include them in names or remove them via sessions.groups.delete')


class SessionGroups(SynchronousTestCase):
    def setUp(self) -> None:
        self.state = scratch_dir("groups-")
        self.start()

    def start(self) -> None:
        self.app, _ = make_app(state_dir=self.state)
        self.c = hello(self.app.hub, scopes=RW)

    def groups(self) -> Any:
        return ok(self.c, "sessions.groups.list", {})

    def create(self, key: str, category: str | None = None) -> None:
        ok(self.c, "sessions.create", {"key": key})
        if category is not None:
            ok(self.c, "sessions.patch", {"key": key, "category": category})

    def category(self, key: str) -> Any:
        return ok(self.c, "sessions.describe", {"key": key})["session"].get("category")

    def test_fresh(self) -> None:
        self.assertEqual(self.groups(), {"groups": [], "sectionOrder": []})
        self.assertEqual(ok(self.c, "sessions.groups.defaults", {}), {"defaults": []})

    def test_put_and_list(self) -> None:
        out = ok(self.c, "sessions.groups.put", {"names": ["Alpha", " Beta ", "Alpha"]})
        self.assertEqual(out, {"ok": True, "groups": [{"name": "Alpha", "position": 0},
                                                      {"name": "Beta", "position": 1}],
                               "sectionOrder": []})
        self.assertEqual(self.groups(), {k: v for k, v in out.items() if k != "ok"})
        self.assertEqual(ok(self.c, "sessions.groups.defaults", {}),
                         {"defaults": [{"name": "Alpha"}, {"name": "Beta"}]})

    def test_section_order_is_normalized(self) -> None:
        out = ok(self.c, "sessions.groups.put", {
            "names": ["Alpha"],
            "sectionOrder": ["work", "category:Alpha", "category:Nope", "catalog:claude",
                             "bogus", "work", "ungrouped"]})
        self.assertEqual(out["sectionOrder"], ["work", "category:Alpha", "catalog:claude",
                                               "ungrouped"])
        # a put without sectionOrder keeps it
        self.assertEqual(ok(self.c, "sessions.groups.put", {"names": ["Alpha", "B"]})
                         ["sectionOrder"], out["sectionOrder"])

    def test_a_member_keeps_its_group(self) -> None:
        ok(self.c, "sessions.groups.put", {"names": ["Alpha", "Beta"]})
        self.create("a", "Alpha")
        self.assertEqual(self.category("a"), "Alpha")
        res = call(self.c, "sessions.groups.put", {"names": ["Beta"]})
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST", "message": DROP_ALPHA})
        self.assertEqual([g["name"] for g in self.groups()["groups"]], ["Alpha", "Beta"])

    def test_a_patched_category_is_registered_at_the_end(self) -> None:
        ok(self.c, "sessions.groups.put", {"names": ["Beta"]})
        watcher = hello(self.app.hub, scopes=["operator.read"])
        ok(watcher, "sessions.subscribe", {})
        self.create("z", "Zeta")
        self.assertEqual(self.groups()["groups"], [{"name": "Beta", "position": 0},
                                                   {"name": "Zeta", "position": 1}])
        watcher.flush()
        self.assertIn({"reason": "groups", "ts": self.app.hub.now_ms()},
                      [e["payload"] for e in watcher.events("sessions.changed")])
        # clearing the category leaves the group
        ok(self.c, "sessions.patch", {"key": "z", "category": None})
        self.assertEqual([g["name"] for g in self.groups()["groups"]], ["Beta", "Zeta"])
        # as the real schema: string(1..512) | null (each category becomes a stored group)
        for bad in ("", "c" * 513):
            refused = call(self.c, "sessions.patch", {"key": "z", "category": bad})
            self.assertEqual(refused["error"]["code"], "INVALID_REQUEST")

    def test_rename_moves_members(self) -> None:
        ok(self.c, "sessions.groups.put", {"names": ["Alpha", "Beta"],
                                           "sectionOrder": ["category:Alpha", "groups"]})
        self.create("a", "Alpha")
        updated = stored_row(self.app, "agent:main:a").updated_at
        out = ok(self.c, "sessions.groups.rename", {"name": "Alpha", "to": "Gamma"})
        self.assertEqual(out, {"ok": True, "groups": [{"name": "Gamma", "position": 0},
                                                      {"name": "Beta", "position": 1}],
                               "sectionOrder": ["category:Gamma", "groups"],
                               "updatedSessions": 1})
        self.assertEqual(self.category("a"), "Gamma")
        self.assertEqual(stored_row(self.app, "agent:main:a").updated_at, updated)

    def test_rename_into_an_existing_group_merges(self) -> None:
        ok(self.c, "sessions.groups.put", {"names": ["Alpha", "Beta"]})
        self.create("a", "Alpha")
        out = ok(self.c, "sessions.groups.rename", {"name": "Alpha", "to": "Beta"})
        self.assertEqual(out["groups"], [{"name": "Beta", "position": 1}])
        self.assertEqual(self.category("a"), "Beta")

    def test_rename_unknown(self) -> None:
        res = call(self.c, "sessions.groups.rename", {"name": "Nope", "to": "X"})
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                        "message": "unknown session group: Nope"})

    def test_delete_clears_members(self) -> None:
        ok(self.c, "sessions.groups.put", {"names": ["Alpha", "Beta"]})
        self.create("a", "Alpha")
        out = ok(self.c, "sessions.groups.delete", {"name": "Alpha"})
        self.assertEqual(out, {"ok": True, "groups": [{"name": "Beta", "position": 1}],
                               "sectionOrder": [], "updatedSessions": 1})
        self.assertIsNone(self.category("a"))
        # deleting a group that does not exist is no error (the real answer)
        self.assertEqual(ok(self.c, "sessions.groups.delete", {"name": "Nope"}),
                         {"ok": True, "groups": [{"name": "Beta", "position": 1}],
                          "sectionOrder": [], "updatedSessions": 0})

    def test_update(self) -> None:
        ok(self.c, "sessions.groups.put", {"names": ["Alpha"]})
        cleared = {"name": "Alpha", "cwd": None, "worktree": False}
        self.assertEqual(ok(self.c, "sessions.groups.update", cleared),
                         {"ok": True, "defaults": [{"name": "Alpha"}]})
        for params, message in (
                ({**cleared, "name": "Nope"}, "unknown session group: Nope"),
                ({**cleared, "cwd": "relative"}, "session group cwd must be absolute"),
                ({**cleared, "cwd": "/tmp"}, NO_DEFAULTS),
                ({**cleared, "worktree": True}, NO_DEFAULTS)):
            res = call(self.c, "sessions.groups.update", params)
            self.assertEqual(res["error"], {"code": "INVALID_REQUEST", "message": message})
        self.assertNotIn("sessions.groups.update", self.app.table.advertised())
        res = call(self.c, "sessions.groups.update", {"name": "Alpha"})
        self.assertEqual(res["error"]["message"], "invalid sessions.groups.update params: "
                         "must have required property 'cwd'")

    def test_scopes(self) -> None:
        reader = hello(self.app.hub, scopes=["operator.read"])
        self.assertTrue(call(reader, "sessions.groups.list", {})["ok"])
        for method, params in (("sessions.groups.defaults", {}),
                               ("sessions.groups.put", {"names": []}),
                               ("sessions.groups.delete", {"name": "x"})):
            self.assertEqual(call(reader, method, params)["error"]["message"],
                             "missing scope: operator.write")

    def test_the_catalog_survives_a_restart(self) -> None:
        ok(self.c, "sessions.groups.put", {"names": ["Alpha", "Beta"],
                                           "sectionOrder": ["category:Beta"]})
        self.create("a", "Alpha")
        self.app.sessions_db.close()
        self.start()
        self.assertEqual(self.groups(), {"groups": [{"name": "Alpha", "position": 0},
                                                    {"name": "Beta", "position": 1}],
                                         "sectionOrder": ["category:Beta"]})
        self.assertEqual(self.category("a"), "Alpha")


class GroupsInRows(SynchronousTestCase):
    def test_rows_carry_their_category(self) -> None:
        app, _ = make_app()
        c = hello(app.hub, scopes=RW)
        ok(c, "sessions.create", {"key": "main"})
        ok(c, "sessions.patch", {"key": MAIN, "category": "Ops"})
        [row] = ok(c, "sessions.list", {})["sessions"]
        self.assertEqual(row["category"], "Ops")
