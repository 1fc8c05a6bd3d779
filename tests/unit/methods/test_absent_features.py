"""The truthful-empty reads (methods/absent_features.py) and projects.list (methods/projects.py):
the real 2026.9.6 answers on a fresh install and after a chat turn, which are true here always;
the params they accept; and that the actions of those features are not offered."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.support.agent import MAIN, RW, drain, send
from tests.support.helpers import call, hello, make_app, ok


class AbsentFeatures(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)
        send(self.c, "main", "hi", "k1")  # answers are the same with a session that has talked
        drain(self.clock)

    def test_real_answers(self) -> None:
        per_session = {"sessionKey": MAIN, "agentId": "main"}
        for method, params, answer in (
                ("board.get", per_session,
                 {"sessionKey": MAIN, "revision": 0, "tabs": [], "widgets": []}),
                ("progressCard.get", {"sessionKey": MAIN}, {"card": None}),
                ("sessions.companion.state", per_session, {"exchanges": []}),
                ("session.discussion.info", per_session, {"state": "none"}),
                ("taskSuggestions.list", {"agentId": "main"}, {"suggestions": []}),
                ("tasks.list", {**per_session, "status": ["queued", "running"], "limit": 200},
                 {"tasks": []}),
                ("tasks.list", {**per_session, "status": "completed", "sortBy": "endedAt",
                                "limit": 100}, {"tasks": []}),
                ("sessions.catalog.list", {"agentId": "main", "limitPerHost": 40,
                                           "progressId": "p-1", "allowPartialResults": True},
                 {"catalogs": []}),
                ("mentions.list", {}, {"gatewayInstanceId": self.app.hub.boot_id,
                                       "revision": 0, "items": []}),
                ("controlUi.sessionPullRequests.subscribe", {"sessionKeys": []},
                 {"subscribed": False}),
                ("controlUi.sessionPullRequests.subscribe",
                 {"sessionKeys": [MAIN, MAIN], "refreshSessionKeys": [MAIN]},
                 {"subscribed": False})):
            self.assertEqual(ok(self.c, method, params), answer, method)

    def test_board_key_is_canonical(self) -> None:
        self.assertEqual(ok(self.c, "board.get", {"sessionKey": "main"})["sessionKey"], MAIN)

    def test_closed_params(self) -> None:
        for method, params, problem in (
                ("board.get", {}, "must have required property 'sessionKey'"),
                ("progressCard.get", {"sessionKey": MAIN, "x": 1},
                 "at root: unexpected property 'x'"),
                ("tasks.list", {"status": "lost"},
                 "at /status: must match a schema in anyOf"),
                ("tasks.list", {"limit": 501}, "at /limit: must be <= 500"),
                ("taskSuggestions.list", {"agentId": "a" * 129},
                 "at /agentId: must NOT have more than 128 characters"),
                ("mentions.list", {"x": 1}, "at root: unexpected property 'x'"),
                ("sessions.catalog.list", {"limitPerHost": 0},
                 "at /limitPerHost: must be >= 1")):
            res = call(self.c, method, params)
            self.assertEqual(res["error"]["message"], f"invalid {method} params: {problem}")

    def test_pull_request_params(self) -> None:
        for params in ({}, {"sessionKeys": "x"}, {"sessionKeys": [""]},
                       {"sessionKeys": ["k"] * 201}, {"sessionKeys": ["a" * 513]},
                       {"sessionKeys": ["a"], "refreshSessionKeys": ["b"]}, None):
            res = call(self.c, "controlUi.sessionPullRequests.subscribe", params)
            self.assertEqual(res["error"]["message"],
                             "invalid controlUi.sessionPullRequests.subscribe params", params)

    def test_actions_are_not_offered(self) -> None:
        advertised = set(self.app.table.advertised())
        self.assertLessEqual({"board.get", "tasks.list", "mentions.list", "projects.list"},
                             advertised)
        for action in ("board.update", "progressCard.put", "sessions.companion.ask",
                       "tasks.cancel", "taskSuggestions.accept", "mentions.dismiss",
                       "projects.add", "sessions.catalog.continue"):
            self.assertNotIn(action, advertised)
            self.assertNotIn(action, self.app.table)


class Projects(SynchronousTestCase):
    def test_agent_workspaces(self) -> None:
        app, _ = make_app()
        c = hello(app.hub)
        workspace = app.settings.state_dir / "workspace"
        expected = {"projects": [{"id": "workspace:main", "displayName": "workspace",
                                  "repoRoot": str(workspace), "source": "workspace",
                                  "agentId": "main"}], "recents": []}
        self.assertEqual(ok(c, "projects.list", {}), expected)
        self.assertEqual(ok(c, "projects.list", {"includeObserved": True}),
                         {**expected, "observedProjects": []})
