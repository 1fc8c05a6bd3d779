"""A heartbeat with nowhere to deliver: the real gateway's ``heartbeat.target`` rules.

Confirmed against the real 2026.9.6 gateway (a fake model, ``every: 1m``, ``openclaw system event
--mode now``): with no route an interval beat is skipped before the model is called; a wake runs
the turn and reports its alert ``skipped`` with the reason; ``target: none`` and a chat channel
without ``to`` run the turn and say ``target-none`` / ``no-target``.
"""

from __future__ import annotations

from typing import Any

from openclaw_tw.automation.heartbeat import ROUTE_MESSAGES, delivery_target, waiting_for_route
from tests.support.agent import install_fake, transcript
from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.helpers import hello

NO_ROUTE = ("Heartbeat has no delivery route yet. Message your bot once, or set "
            "agents.defaults.heartbeat.target.")
TARGET_NONE = "Heartbeat delivery is disabled by configuration (target: none)."


def beat_config(**heartbeat: Any) -> dict[str, Any]:
    return {"agents": {"defaults": {"heartbeat": {"every": "5m", **heartbeat}}}}


class Rules(Base):
    def test_the_reason_for_each_target(self) -> None:
        self.assertEqual(ROUTE_MESSAGES, {"no-route": NO_ROUTE, "target-none": TARGET_NONE})
        cases = {None: "no-route", "owner": "no-route", "last": "no-route",
                 "none": "target-none", "telegram": "no-target", "Telegram": "no-target",
                 "teams": "no-target", "nowhere": "target-none"}
        for target, reason in cases.items():
            self.assertEqual(delivery_target({"target": target}, {}), {"reason": reason},
                             target)
        self.assertEqual([waiting_for_route({"target": t}) for t in (None, "owner", "last",
                                                                      "none", "telegram")],
                         [True, True, True, False, False])


class NoRoute(Base):
    def beat(self, config: dict[str, Any], reply: str | None) -> tuple[Any, dict[str, Any]]:
        """One interval beat at 5 min; the fake model answers ``reply`` if it is called."""
        app = self.start(config=config)
        fake = install_fake(app)
        c = hello(app.hub, scopes=ADMIN)
        self.clock.advance(300)
        self.spin(1)
        if reply is not None:
            fake.calls[-1].finish(reply)
            self.spin(5)
        beats = [e["payload"] for e in c.pop() if e.get("event") == "heartbeat"]
        self.assertEqual(len(beats), 1, beats)
        self.assertEqual(self.ok(c, "last-heartbeat", {}), beats[0])
        return app, beats[0]

    def test_an_interval_beat_without_a_route_never_calls_the_model(self) -> None:
        for target in ({}, {"target": "last"}, {"target": "owner"}):
            app, beat = self.beat(beat_config(**target), None)
            self.assertEqual(app.runtime.registry.providers["fake"].calls, [])
            self.assertEqual(beat, {"ts": beat["ts"], "status": "skipped", "reason": "no-route",
                                    "durationMs": 0, "message": NO_ROUTE})
            self.assertEqual(transcript(app), [])  # no turn, no session row
            self.assertIsNone(self.successResultOf(app.sessions.get("agent:main:main")))

    def test_a_queued_event_runs_the_turn_and_the_alert_goes_nowhere(self) -> None:
        app = self.start(config=beat_config())
        fake = install_fake(app)
        c = hello(app.hub, scopes=ADMIN)
        self.ok(c, "wake", {"mode": "next-heartbeat", "text": "Disk check"})
        self.clock.advance(300)
        self.spin(1)
        self.assertIn("System: Disk check", str(fake.calls[-1].request.messages))
        fake.calls[-1].finish("Disk is full on /var")
        self.spin(5)
        beat = self.ok(c, "last-heartbeat", {})
        self.assertEqual(beat, {"ts": beat["ts"], "status": "skipped",
                                "preview": "Disk is full on /var", "reason": "no-route",
                                "hasMedia": False, "durationMs": beat["durationMs"],
                                "message": NO_ROUTE})
        self.assertEqual([role for role, _ in transcript(app)], ["user", "assistant"])

    def test_target_none_runs_the_turn(self) -> None:
        app, beat = self.beat(beat_config(target="none"), "Disk is full on /var")
        self.assertEqual((beat["status"], beat["reason"], beat["preview"], beat["message"]),
                         ("skipped", "target-none", "Disk is full on /var", TARGET_NONE))
        self.assertEqual([role for role, _ in transcript(app)], ["user", "assistant"])

    def test_a_channel_without_to_is_no_target(self) -> None:
        _, beat = self.beat(beat_config(target="telegram"), "Disk is full on /var")
        self.assertEqual(beat, {"ts": beat["ts"], "status": "skipped",
                                "preview": "Disk is full on /var", "reason": "no-target",
                                "hasMedia": False, "durationMs": beat["durationMs"]})

    def test_an_acknowledgment_is_still_ok(self) -> None:
        _, beat = self.beat(beat_config(target="none"), "HEARTBEAT_OK all quiet")
        self.assertEqual(beat, {"ts": beat["ts"], "status": "ok-token", "reason": "interval",
                                "indicatorType": "ok", "silent": True,
                                "durationMs": beat["durationMs"]})

    def test_status_says_waiting_for_a_route(self) -> None:
        for config, waiting in ((beat_config(), True), (beat_config(target="none"), False),
                                (beat_config(target="telegram"), False)):
            app = self.start(config=config)
            c = hello(app.hub, scopes=ADMIN)
            self.assertEqual(self.ok(c, "status", {})["heartbeat"]["agents"],
                             [{"agentId": "main", "enabled": True, "every": "5m",
                               "everyMs": 300_000, "waitingForRoute": waiting}])

    def test_status_shows_every_as_configured(self) -> None:
        """The real summary keeps the configured text ("1h", not "60m"); "0m" is off."""
        for every, shown in (("1h", ("1h", 3_600_000, True)), ("0m", ("disabled", None, False))):
            app = self.start(config=beat_config(every=every, target="none"))
            c = hello(app.hub, scopes=ADMIN)
            [agent] = self.ok(c, "status", {})["heartbeat"]["agents"]
            self.assertEqual((agent["every"], agent["everyMs"], agent["enabled"]), shown)
