"""A job's definition checked and completed as the real gateway (2026.9.6, captured) does:
an agent turn cannot target the main session, the main session takes no channel delivery,
and an isolated agent turn without a delivery announces to the last route."""

from __future__ import annotations

from typing import Any

from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.helpers import hello

HOURLY = {"kind": "every", "everyMs": 3_600_000}
TURN = {"kind": "agentTurn", "message": "Say hi"}
EVENT = {"kind": "systemEvent", "text": "Tea"}


class JobRules(Base):
    def setUp(self) -> None:
        self.start()
        self.client = hello(self.gw, scopes=ADMIN)

    def add(self, **job: Any) -> dict[str, Any]:
        return self.call(self.client, "cron.add", {"name": "j", "schedule": HOURLY,
                                                    "wakeMode": "now", **job})

    def test_an_agent_turn_cannot_target_the_main_session(self) -> None:
        res = self.add(sessionTarget="main", payload=TURN)
        self.assertEqual((res["ok"], res["error"]["code"], res["error"]["message"]),
                         (False, "INVALID_REQUEST", 'invalid cron.add params: main cron jobs '
                                                    'require payload.kind="systemEvent" or '
                                                    '"script"'))
        job = self.add(sessionTarget="isolated", payload=TURN)["payload"]
        res = self.call(self.client, "cron.update", {"id": job["id"],
                                                     "patch": {"sessionTarget": "main"}})
        self.assertEqual(res["error"]["message"],
                         'invalid cron.update params: main cron jobs require '
                         'payload.kind="systemEvent" or "script"')

    def test_a_system_event_needs_the_main_session(self) -> None:
        for target in ("isolated", "current", "session:standup"):
            res = self.add(sessionTarget=target, payload=EVENT)
            self.assertEqual(res["error"]["code"], "UNAVAILABLE", (target, res))
            self.assertIn("isolated cron jobs require", res["error"]["message"])

    def test_the_main_session_takes_no_channel_delivery(self) -> None:
        res = self.add(sessionTarget="main", payload=EVENT,
                       delivery={"mode": "announce", "channel": "telegram", "to": "1"})
        self.assertEqual(res["error"]["message"],
                         "invalid cron.add params: cron channel delivery config is only "
                         'supported for sessionTarget="isolated"')
        self.assertTrue(self.add(sessionTarget="main", payload=EVENT,
                                 delivery={"mode": "none"})["ok"])

    def test_an_isolated_turn_announces_by_default(self) -> None:
        for target in ("isolated", "session:standup"):
            job = self.add(sessionTarget=target, payload=TURN)["payload"]
            self.assertEqual(job["delivery"], {"mode": "announce"}, target)
        kept = self.add(sessionTarget="isolated", payload=TURN,
                        delivery={"mode": "none"})["payload"]
        self.assertEqual(kept["delivery"], {"mode": "none"})
        self.assertNotIn("delivery", self.add(sessionTarget="main", payload=EVENT)["payload"])
