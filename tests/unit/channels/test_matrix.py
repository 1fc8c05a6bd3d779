"""The Matrix provider's timeline parsing on its own (the provider against a real Synapse is in
tests/interop/test_matrix.py)."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest


class MalformedEvents(unittest.SynchronousTestCase):
    """What a homeserver relays from elsewhere is not always valid: such events are skipped,
    never raised into the sync loop."""

    def test_timeline_skips_what_it_cannot_read(self) -> None:
        from openclaw_tw.channels.matrix import MatrixAccount
        from tests.support.helpers import make_app

        app, _ = make_app()
        account = MatrixAccount("default", {"homeserver": "https://hs.example"},
                                app.channels.ctx)
        account.user_id = "@claw:hs.example"
        ok_event = {"type": "m.room.message", "event_id": "$ok", "sender": "@a:hs.example",
                    "content": {"msgtype": "m.text", "body": "claw: hi",
                                "m.mentions": {"user_ids": 7}}}
        events: list[Any] = [
            {"type": "m.room.message", "event_id": "$1", "sender": "@a:hs.example",
             "content": {"msgtype": "m.text", "body": 123}},
            {"type": "m.room.message", "event_id": "$2", "sender": "@a:hs.example",
             "content": "not an object"},
            {"type": "m.room.message", "event_id": "$3", "sender": "@a:hs.example",
             "content": {"msgtype": "m.text", "body": "y", "m.relates_to": {
                 "m.in_reply_to": "not an object"}}},
            {"type": "m.room.message"},
            ok_event, ok_event,  # the same event twice (a retried sync): once
        ]
        msgs = account._timeline("!room:hs.example", events, first=False)
        self.assertEqual([(m.message_id, m.text, m.mentioned) for m in msgs],
                         [("$3", "y", False), ("$ok", "hi", True)])
