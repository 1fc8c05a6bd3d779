"""The cron scheduler on a MemoryReactorClock: a case that starts an app (optionally with a
config file), its scheduler, and a few call helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.trial import unittest

from tests.support.helpers import make_app
from tests.support.tmp import fresh_dir

ADMIN = ["operator.admin", "operator.read", "operator.write"]


class CronCase(unittest.TestCase):
    def start(self, state: Path | None = None, config: dict[str, Any] | None = None,
              advance: float = 0) -> Any:
        self.state = state or fresh_dir(self)
        opts: dict[str, Any] = {"state_dir": self.state}
        if config is not None:
            path = self.state / "openclaw.json"
            path.write_text(json.dumps(config))
            opts["config"] = str(path)
        app, clock = make_app(**opts)
        clock.advance(advance)
        app.cron.startService()
        self.addCleanup(self.stop, app)
        self.app, self.gw, self.clock = app, app.hub, clock
        return app

    def stop(self, app: Any) -> None:
        if app.cron.running:
            app.cron.stopService()
        app.cron_db.close()

    def call(self, client: Any, method: str, params: Any = None) -> dict[str, Any]:
        rid = client.request(method, params)
        res = client.response(rid)
        assert res is not None, method
        return res

    def ok(self, client: Any, method: str, params: Any = None) -> Any:
        res = self.call(client, method, params)
        self.assertTrue(res["ok"], res)
        return res["payload"]

    def spin(self, seconds: float, step: float = 0.05) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
