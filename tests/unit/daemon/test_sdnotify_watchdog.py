"""The systemd watchdog (daemon/sdnotify.py): WATCHDOG=1 pings on the reactor's clock, every
half WATCHDOG_USEC, only for this process, stopped with the service."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.daemon import sdnotify


class Watchdog(SynchronousTestCase):
    def notifier(self, env: dict[str, str]) -> tuple[sdnotify.SystemdNotifier, Clock,
                                                        list[str]]:
        sent: list[str] = []

        def send(state: str, _env: Mapping[str, str]) -> bool:
            sent.append(state)
            return True
        clock = Clock()
        return sdnotify.SystemdNotifier(env, clock=clock, send=send), clock, sent

    def test_pings_every_half_interval_until_stopped(self) -> None:
        svc, clock, sent = self.notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000"})
        svc.startService()
        self.assertTrue(sent[0].startswith("READY=1\nMAINPID="))
        self.assertEqual(sent[1:], ["WATCHDOG=1"])
        clock.advance(14.9)
        self.assertEqual(sent.count("WATCHDOG=1"), 1)
        clock.advance(0.1)
        self.assertEqual(sent.count("WATCHDOG=1"), 2)
        for _ in range(3):
            clock.advance(15)
        self.assertEqual(sent.count("WATCHDOG=1"), 5)
        clock.advance(60)  # a reactor that was late: one ping, not a burst of the missed ones
        self.assertEqual(sent.count("WATCHDOG=1"), 6)
        svc.stopService()
        self.assertEqual(sent[-1], "STOPPING=1")
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(60)
        self.assertEqual(sent.count("WATCHDOG=1"), 6)

    def test_a_wedged_reactor_sends_nothing(self) -> None:
        # pings come only from the clock's timers: no advance (a reactor that does not turn),
        # no ping after the first, so systemd's WatchdogSec= expires and it restarts us
        svc, clock, sent = self.notifier({"WATCHDOG_USEC": "2000000"})
        svc.startService()
        self.assertEqual(sent.count("WATCHDOG=1"), 1)
        self.assertEqual([c.getTime() for c in clock.getDelayedCalls()], [1.0])

    def test_off_or_for_another_process(self) -> None:
        for env in ({}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "junk"},
                    {"WATCHDOG_USEC": "-5"}, {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}):
            svc, clock, sent = self.notifier(env)
            svc.startService()
            svc.stopService()
            self.assertNotIn("WATCHDOG=1", sent, env)
            self.assertEqual(clock.getDelayedCalls(), [], env)

    def test_interval(self) -> None:
        self.assertEqual(sdnotify.watchdog_interval({"WATCHDOG_USEC": "10000000"}), 5.0)
        self.assertEqual(sdnotify.watchdog_interval(
            {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "42"}, pid=42), 5.0)
        self.assertIsNone(sdnotify.watchdog_interval(
            {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "42"}, pid=43))
