"""The real CLI's gateway-backed session commands against our gateway: ``sessions compact``
(``sessions.compact``: the CLI prints the lines kept), ``sessions archive`` and ``sessions
delete`` (each lists the sessions with ``sessions.list``, then calls
``sessions.patch`` / ``sessions.delete`` with the row's session id), after ``openclaw agent``
turns on sessions named with ``--session-id``.

The real CLI reads ``archivedAt`` in the patch's entry as the gateway's confirmation: without
it the command fails ("Gateway did not confirm that the session was archived.").
"""

from __future__ import annotations

from collections import Counter

from tests.interop.test_cli_everyday import EverydayCase


class SessionsCLI(EverydayCase):
    async def turn(self, session_id: str) -> None:
        r = await self.openclaw("agent", "--session-id", session_id, "--message", "hi")
        self.assertEqual((r.code, r.out.strip()), (0, "Hello from the fake model."), r)

    async def test_session_id_is_the_rows_id(self) -> None:
        # the real gateway files the turn under the id the CLI names (not a new uuid)
        r = await self.openclaw("agent", "--session-id", "sid-one", "--message", "hi", "--json")
        self.succeeded(r)
        meta = r.json()["result"]["meta"]["agentMeta"]
        self.assertEqual((meta["sessionId"], meta["sessionFile"]),
                         ("sid-one", "agent:main:explicit:sid-one"))
        listing = await self.openclaw("gateway", "call", "sessions.list", "--json")
        self.succeeded(listing)
        self.assertEqual([(row["key"], row["sessionId"]) for row in listing.json()["sessions"]],
                         [("agent:main:explicit:sid-one", "sid-one")])

    async def test_compact(self) -> None:
        await self.turn("long")
        await self.turn("long")
        r = await self.openclaw("sessions", "compact", "agent:main:explicit:long",
                                "--max-lines", "1")
        self.succeeded(r)
        self.assertEqual(self.calls, Counter({"sessions.compact": 1}))
        self.assertEqual(r.out.strip(), "Compacted session agent:main:explicit:long (kept 1 lines).")
        again = await self.openclaw("sessions", "compact", "agent:main:explicit:long",
                                    "--max-lines", "5", "--json")
        self.succeeded(again)
        self.assertEqual(again.json(), {"ok": True, "key": "agent:main:explicit:long",
                                        "compacted": False, "kept": 2})

    async def test_archive_and_delete(self) -> None:
        await self.turn("keep")
        await self.turn("scratch")
        dry = await self.openclaw("sessions", "archive", "agent:main:explicit:keep", "--dry-run")
        self.succeeded(dry)
        self.assertEqual(dry.out.strip(), "[dry-run] archive session agent:main:explicit:keep")
        self.assertEqual(self.calls, Counter({"sessions.list": 1}))
        r = await self.openclaw("sessions", "archive", "agent:main:explicit:keep")
        self.succeeded(r)
        self.assertEqual(r.out.strip(), "Archived session agent:main:explicit:keep.")
        self.assertEqual(self.calls, Counter({"sessions.list": 1, "sessions.patch": 1}))
        again = await self.openclaw("sessions", "archive", "agent:main:explicit:keep", "--json")
        self.succeeded(again)
        self.assertEqual(again.json()["results"], [
            {"key": "agent:main:explicit:keep", "ok": True, "status": "already_archived"}])
        gone = await self.openclaw("sessions", "delete", "agent:main:explicit:scratch", "--yes")
        self.succeeded(gone)
        self.assertEqual(gone.out.splitlines()[0], "Deleted session agent:main:explicit:scratch.")
        self.assertEqual(self.calls, Counter({"sessions.list": 1, "sessions.delete": 1}))
        listing = await self.openclaw("gateway", "call", "sessions.list", "--params",
                                      '{"archived": "all"}', "--json")
        self.succeeded(listing)
        rows = {row["key"]: row for row in listing.json()["sessions"]}
        self.assertNotIn("agent:main:explicit:scratch", rows)
        kept = rows["agent:main:explicit:keep"]
        self.assertEqual((kept["archived"], kept["archiveReason"]), (True, "manual"))
        self.assertIsInstance(kept["archivedAt"], int)
