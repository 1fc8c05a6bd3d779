"""Presence is bounded by construction (issue #21 finding 6): system-event entries and their
texts have caps in count and bytes, so hello-ok stays small whatever clients send."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw import _json
from openclaw_tw.hub.presence import PresenceRegistry
from openclaw_tw.protocol.limits import (
    MAX_PRESENCE_EVENT_BYTES,
    MAX_PRESENCE_EVENT_ENTRIES,
    MAX_PRESENCE_FIELD_CHARS,
    MAX_PRESENCE_LIST_ITEMS,
    MAX_PRESENCE_TEXT_CHARS,
    MAX_PRESENCE_TEXT_ENTRIES,
)
from tests.support.helpers import WSClient, call, hello, make_gateway, ok

ADMIN = ["operator.admin"]
SELF = {"instanceId": "gw", "text": "Gateway"}


def registry() -> PresenceRegistry:
    return PresenceRegistry(lambda: 1_795_000_000_000, dict(SELF))


class SystemEventBounds(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.admin = hello(self.gw, scopes=ADMIN)

    def test_megabyte_text_refused_without_echo(self) -> None:
        text = "A" * (1024 * 1024)
        res = call(self.admin, "system-event", {"text": text, "instanceId": "big"})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        self.assertEqual(
            res["error"]["message"],
            "invalid system-event params: at /text: must NOT have more than "
            f"{MAX_PRESENCE_TEXT_CHARS} characters")
        self.assertNotIn("big", [e.get("instanceId")
                                 for e in ok(self.admin, "system-presence", {})])

    def test_oversized_fields_and_lists_refused(self) -> None:
        long_field = "h" * (MAX_PRESENCE_FIELD_CHARS + 1)
        res = call(self.admin, "system-event", {"text": "x", "host": long_field})
        self.assertEqual(res["error"]["message"],
                         "invalid system-event params: at /host: must NOT have more than "
                         f"{MAX_PRESENCE_FIELD_CHARS} characters")
        res = call(self.admin, "system-event",
                   {"text": "x", "tags": ["t"] * (MAX_PRESENCE_LIST_ITEMS + 1)})
        self.assertEqual(res["error"]["message"],
                         "invalid system-event params: at /tags: must NOT have more than "
                         f"{MAX_PRESENCE_LIST_ITEMS} items")

    def test_many_large_events_do_not_inflate_hello_ok(self) -> None:
        # Finding 6: five 1 MB events made every hello-ok 5 MB; fuzzing made it 48 MB.
        text = "é" * MAX_PRESENCE_TEXT_CHARS
        for i in range(3 * MAX_PRESENCE_EVENT_ENTRIES):
            ok(self.admin, "system-event", {"text": text, "instanceId": f"node-{i}",
                                            "tags": ["t" * MAX_PRESENCE_FIELD_CHARS] * 4})
        count, size = self.gw.presence.event_usage()
        self.assertLessEqual(size, MAX_PRESENCE_EVENT_BYTES)
        self.assertLessEqual(count, MAX_PRESENCE_EVENT_ENTRIES)
        client = WSClient(self.gw)
        res = client.connect()
        assert res is not None and res["ok"], res
        hello_bytes = len(_json.dumps(res))
        self.assertLess(hello_bytes, MAX_PRESENCE_EVENT_BYTES + 64 * 1024)
        presence = res["payload"]["snapshot"]["presence"]
        # the newest events are the ones kept
        ids = [e.get("instanceId") for e in presence]
        self.assertIn(f"node-{3 * MAX_PRESENCE_EVENT_ENTRIES - 1}", ids)
        self.assertNotIn("node-0", ids)

    def test_resent_instance_replaces_its_entry(self) -> None:
        for n in range(5):
            ok(self.admin, "system-event", {"text": f"beacon {n}", "instanceId": "mac-1"})
        entries = [e for e in ok(self.admin, "system-presence", {})
                   if e.get("instanceId") == "mac-1"]
        self.assertEqual([e["text"] for e in entries], ["beacon 4"])
        self.assertEqual(self.gw.presence.event_usage()[0], 1)


class RegistryBounds(SynchronousTestCase):
    def test_text_only_entries_capped(self) -> None:
        reg = registry()
        for n in range(MAX_PRESENCE_TEXT_ENTRIES + 20):
            reg.add_event({"text": f"t{n}"})
        texts = [e["text"] for e in reg.snapshot()[1:]]
        self.assertEqual(len(texts), MAX_PRESENCE_TEXT_ENTRIES)
        self.assertEqual(texts[-1], f"t{MAX_PRESENCE_TEXT_ENTRIES + 19}")

    def test_text_entries_do_not_evict_instances_first(self) -> None:
        reg = registry()
        reg.add_event({"text": "node", "instanceId": "n1"})
        for n in range(MAX_PRESENCE_TEXT_ENTRIES + 5):
            reg.add_event({"text": f"t{n}"})
        self.assertIn("n1", [e.get("instanceId") for e in reg.snapshot()])

    def test_unbounded_strings_clipped_for_any_caller(self) -> None:
        reg = registry()
        reg.add_event({"text": "x" * 1_000_000, "host": "h" * 10_000,
                       "tags": ["t" * 10_000] * 1000, "instanceId": "n"})
        entry = reg.snapshot()[1]
        self.assertEqual(len(entry["text"]), MAX_PRESENCE_TEXT_CHARS)
        self.assertEqual(len(entry["host"]), MAX_PRESENCE_FIELD_CHARS)
        self.assertEqual(len(entry["tags"]), MAX_PRESENCE_LIST_ITEMS)
        self.assertEqual({len(t) for t in entry["tags"]}, {MAX_PRESENCE_FIELD_CHARS})

    def test_byte_budget_drops_oldest(self) -> None:
        reg = registry()
        for n in range(MAX_PRESENCE_EVENT_ENTRIES):
            reg.add_event({"text": "y" * MAX_PRESENCE_TEXT_CHARS, "instanceId": f"i{n}"})
        count, size = reg.event_usage()
        self.assertLessEqual(size, MAX_PRESENCE_EVENT_BYTES)
        encoded = sum(len(_json.dumps(e)) for e in reg.snapshot()[1:])
        self.assertEqual(encoded, size)  # the accounting matches what is held
        self.assertEqual(reg.snapshot()[-1]["instanceId"], f"i{MAX_PRESENCE_EVENT_ENTRIES - 1}")
        self.assertLess(count, MAX_PRESENCE_EVENT_ENTRIES)

    def test_remove_releases_accounting(self) -> None:
        reg = registry()
        reg.add_event({"text": "a", "instanceId": "n"})
        self.assertTrue(reg.remove("n"))
        self.assertEqual(reg.event_usage(), (0, 0))

    def test_client_entries_untouched_by_event_eviction(self) -> None:
        reg = registry()
        client: dict[str, Any] = {"instanceId": "conn", "reason": "connect"}
        reg.upsert("conn-1", client)
        for n in range(MAX_PRESENCE_EVENT_ENTRIES + 10):
            reg.add_event({"text": "z", "instanceId": f"i{n}"})
        self.assertIn(client, reg.snapshot())
