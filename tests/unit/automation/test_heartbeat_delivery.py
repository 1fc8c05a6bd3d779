"""A heartbeat alert delivered to a chat channel (``heartbeat.target: "<channel>"`` + ``to``).

The rules follow the real 2026.9.6 runner (``prepareHeartbeatDispatchReply`` and
``resolveHeartbeatDeliveryTarget``): an alert goes out through the channel and the event is
``sent`` with ``to``/``channel``/``preview``/``indicatorType: alert``; a send that fails is
``failed`` with the error as its reason; the same text again within 24 h is ``duplicate``; an
acknowledgment is not sent but names the channel; a channel without an account for it, or an
``accountId`` it does not have, goes nowhere (``no-target`` / ``unknown-account``).

Confirmed live against the real 2026.9.6 gateway with its Telegram plugin, a fake Bot API and a
fake model (``target: telegram``, ``to: "42"``, ``openclaw system event --mode now``): the
``sent``, ``duplicate`` and ``failed`` payloads have exactly these keys, in this order; the real
``reason`` of a failed send is the plugin's error text, and its ``to`` is the plugin's normalized
target (``telegram:42``), which we do not reproduce (we report ``to`` as configured).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import fail, succeed

from openclaw_tw.automation.delivery import Announcer
from openclaw_tw.automation.heartbeat import delivery_target
from tests.support.agent import install_fake
from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.helpers import hello

ALERT = "Disk is full on /var"


class FakeAccount:
    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[str, str]] = []
        self.error: Exception | None = None

    def deliver(self, to: str, text: str, reply_to: Any = None, thread: Any = None) -> Any:
        if self.error is not None:
            return fail(self.error)
        self.sent.append((to, text))
        return succeed({"ok": True})


class FakeChannels:
    def __init__(self, *keys: tuple[str, str]) -> None:
        self.accounts = {key: FakeAccount() for key in keys}

    def account(self, channel: str, account_id: str) -> FakeAccount | None:
        return self.accounts.get((channel, account_id))


def beat_config(**heartbeat: Any) -> dict[str, Any]:
    return {"agents": {"defaults": {"heartbeat": {"every": "5m", **heartbeat}}}}


IRC = {"irc": {"default": {}, "Work": {}}}


class Target(Base):
    def test_a_channel_target_resolves_through_its_accounts(self) -> None:
        cases = [
            ({"target": "irc", "to": " #ops "}, {"channel": "irc", "to": "#ops"}),
            ({"target": "internet-relay-chat", "to": "#ops"}, {"channel": "irc", "to": "#ops"}),
            ({"target": "irc"}, {"reason": "no-target"}),
            ({"target": "irc", "to": "  "}, {"reason": "no-target"}),
            ({"target": "telegram", "to": "42"}, {"reason": "no-target"}),  # no account
            ({"target": "irc", "to": "#ops", "accountId": "work"},
             {"channel": "irc", "to": "#ops", "accountId": "work", "account": "Work"}),
            ({"target": "irc", "to": "#ops", "accountId": "Home"},
             {"reason": "unknown-account", "accountId": "home"}),
            ({"target": "last", "to": "#ops"}, {"reason": "no-route"}),
            ({"target": "nowhere", "to": "#ops"}, {"reason": "target-none"}),
        ]
        for cfg, want in cases:
            self.assertEqual(delivery_target(cfg, IRC), want, cfg)


class Delivery(Base):
    def beat(self, reply: str, account: tuple[str, str] = ("irc", "default"),
             **heartbeat: Any) -> dict[str, Any]:
        """One interval beat at 5 min to ``irc`` ``#ops``; the fake model answers ``reply``."""
        if not hasattr(self, "app"):
            self.start(config=beat_config(**{"target": "irc", "to": "#ops", **heartbeat}))
            self.channels = FakeChannels(account)
            self.irc = self.channels.accounts[account]
            self.app.heartbeat.announcer = Announcer(
                self.channels, lambda: {"irc": {account[1]: {}}}, self.clock)
            self.fake = install_fake(self.app)
            self.beats: list[dict[str, Any]] = []
            broadcast = self.gw.broadcast

            def spy(event: str, payload: Any, **kw: Any) -> Any:
                if event == "heartbeat":
                    self.beats.append(payload)
                return broadcast(event, payload, **kw)

            self.gw.broadcast = spy
        self.beats.clear()
        self.clock.advance(300)
        self.spin(1)
        self.fake.calls[-1].finish(reply)
        self.spin(25)
        self.assertEqual(len(self.beats), 1, self.beats)
        # a fresh client: an idle in-memory one does not answer the hub's keepalive pings
        self.assertEqual(self.ok(hello(self.gw, scopes=ADMIN), "last-heartbeat", {}),
                         self.beats[0])
        return self.beats[0]

    def test_an_alert_is_sent_to_the_channel(self) -> None:
        beat = self.beat(f"  {ALERT}\n")
        self.assertEqual(self.irc.sent, [("#ops", ALERT)])
        self.assertEqual(beat, {"ts": beat["ts"], "status": "sent", "preview": ALERT,
                                "channel": "irc", "indicatorType": "alert", "to": "#ops",
                                "hasMedia": False, "durationMs": beat["durationMs"]})

    def test_an_explicit_account_is_used_and_reported(self) -> None:
        beat = self.beat(ALERT, account=("irc", "Work"), accountId="work")
        self.assertEqual(self.irc.sent, [("#ops", ALERT)])
        self.assertEqual((beat["status"], beat["accountId"]), ("sent", "work"))

    def test_an_unknown_account_sends_nothing(self) -> None:
        beat = self.beat(ALERT, accountId="home")
        self.assertEqual(self.irc.sent, [])
        self.assertEqual(beat, {"ts": beat["ts"], "status": "skipped", "preview": ALERT,
                                "reason": "unknown-account", "hasMedia": False,
                                "durationMs": beat["durationMs"], "accountId": "home"})

    def test_an_acknowledgment_is_not_sent(self) -> None:
        beat = self.beat("HEARTBEAT_OK")  # nothing but the token: no reply at all
        self.assertEqual(self.irc.sent, [])
        self.assertEqual(beat, {"ts": beat["ts"], "status": "ok-empty", "reason": "interval",
                                "channel": "irc", "indicatorType": "ok", "silent": True,
                                "durationMs": beat["durationMs"]})

    def test_a_failed_send_is_a_failed_heartbeat(self) -> None:
        self.beat("warming up")  # creates the app; the first alert goes out
        self.irc.error = ConnectionError("reset by peer")
        beat = self.beat(ALERT)
        self.assertEqual(self.irc.sent, [("#ops", "warming up")])
        self.assertEqual(beat, {"ts": beat["ts"], "status": "failed", "preview": ALERT,
                                "channel": "irc", "indicatorType": "error",
                                "reason": "reset by peer", "to": "#ops", "hasMedia": False,
                                "durationMs": beat["durationMs"]})

    def test_a_disconnected_channel_is_retried_then_failed(self) -> None:
        self.beat("warming up")
        self.irc.connected = False
        beat = self.beat(ALERT)
        self.assertEqual((beat["status"], beat["reason"], beat["indicatorType"]),
                         ("failed", "irc:default is not connected", "error"))
        self.assertEqual(len(self.irc.sent), 1)

    def test_the_same_alert_within_a_day_is_a_duplicate(self) -> None:
        self.beat(ALERT)
        beat = self.beat(ALERT)
        self.assertEqual(self.irc.sent, [("#ops", ALERT)])
        self.assertEqual(beat, {"ts": beat["ts"], "status": "skipped", "reason": "duplicate",
                                "preview": ALERT, "hasMedia": False, "channel": "irc",
                                "durationMs": beat["durationMs"]})
        self.assertEqual(self.beat("Something else")["status"], "sent")
        session_id, text, at = self.app.heartbeat.last_sent["agent:main:main"]
        self.app.heartbeat.last_sent["agent:main:main"] = (session_id, text, at - 86_400_000)
        self.assertEqual(self.beat("Something else")["status"], "sent")  # a day later

    def test_a_failed_send_is_not_a_duplicate(self) -> None:
        self.beat("warming up")
        self.irc.error = ConnectionError("reset by peer")
        self.assertEqual(self.beat(ALERT)["status"], "failed")
        self.irc.error = None
        self.assertEqual(self.beat(ALERT)["status"], "sent")
