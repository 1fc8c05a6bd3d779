"""A heartbeat reply read as the real heartbeat runner (2026.9.6) reads it; every case here was
run on the real gateway with a fake model replying that text (``openclaw system event --mode
now``, then ``openclaw system heartbeat last``)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.automation.heartbeat_ack import classify

OBSERVED = {
    # nothing left to send: ok-empty
    "": "ok-empty",
    "HEARTBEAT_OK": "ok-empty",
    "  HEARTBEAT_OK  ": "ok-empty",
    "HEARTBEAT_OK HEARTBEAT_OK": "ok-empty",
    "NO_REPLY": "ok-empty",
    "no_reply.": "ok-empty",
    # the token at an edge, little else: acknowledged
    "HEARTBEAT_OK.": "ok-token",
    "**HEARTBEAT_OK**": "ok-token",
    "HEARTBEAT_OK all quiet": "ok-token",
    "All quiet. HEARTBEAT_OK": "ok-token",
    # alerts
    "Disk is full on /var": "sent",
    "heartbeat_ok": "sent",
    "Heartbeat_OK": "sent",
    "HEARTBEAT_": "sent",
    "NO_REPLY all quiet": "sent",
}


class Classify(SynchronousTestCase):
    def test_what_the_real_runner_reported(self) -> None:
        got = {text: classify(text)[0] for text in OBSERVED}
        self.assertEqual(got, OBSERVED)

    def test_an_alert_keeps_its_preview(self) -> None:
        self.assertEqual(classify("  Disk is full on /var\n"), ("sent", "Disk is full on /var"))
        self.assertEqual(classify("x" * 300), ("sent", "x" * 200))

    def test_the_acknowledgment_bound(self) -> None:
        self.assertEqual(classify("HEARTBEAT_OK " + "y" * 300)[0], "ok-token")
        self.assertEqual(classify("HEARTBEAT_OK " + "y" * 301)[0], "sent")
        self.assertEqual(classify("<b>HEARTBEAT_OK</b>&nbsp;")[0], "ok-token")

    def test_silent_envelopes(self) -> None:
        self.assertEqual(classify('"NO_REPLY"')[0], "ok-empty")
        self.assertEqual(classify('{"action": "NO_REPLY"}')[0], "ok-empty")
        self.assertEqual(classify('{"action": "NO_REPLY", "why": 1}')[0], "sent")
        self.assertEqual(classify('{"NO_REPLY"')[0], "ok-empty")  # edge punctuation
        self.assertEqual(classify('{"action": NO_REPLY}')[0], "sent")
