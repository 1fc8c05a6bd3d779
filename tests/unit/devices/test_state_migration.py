"""A state directory written by release db6df61 still works with the current code.

``tests/fixtures/state-db6df61`` was written by the old gateway (one positional
``PRAGMA user_version`` per file; nodes.sqlite concatenated four owners' migrations).  Each test
copies it to a fresh temp dir, builds the gateway on the copy and reads every record back
through the public method table (or, for what no method exposes, the store objects).  The ids
below are listed in the fixture's README.md.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from twisted.trial.unittest import TestCase

from tests.support.devices import Device, b64url
from tests.support.helpers import WSClient, hello, make_app, ok
from tests.support.paths import FIXTURES

FIXTURE = FIXTURES / "state-db6df61"

READ, WRITE, ADMIN, PAIRING, APPROVALS = ("operator.read", "operator.write", "operator.admin",
                                          "operator.pairing", "operator.approvals")

PAIRED_SEED = bytes(range(1, 33))
PAIRED_DEVICE = "65b60673d6ed884bf01c2c222d82ada0740f29ac3355d6a925c81f17f47a27b8"
PAIRED_TOKEN = "IHnO1_P7hbyF6Bs2RC3rdU0mPkY02d7ksZtXCqwpSDU"
PENDING_DEVICE = "c945cbf2a5602002141e2fb9d17054d6ca069951df73f49d1f8aca87f9878f60"
PENDING_REQUEST = "36f20a95-7e76-4fa6-82d0-908aa29e0933"

SESSIONS = {
    "agent:main:main": ("6303842f-09f3-400e-9d46-c5c6b9195593", [
        ("user", "count to 3"),
        ("assistant", [{"type": "text", "text": "1, 2, 3."}]),
    ]),
    "agent:main:fixture-b": ("1caa7c38-1efb-4893-9293-425ffd8881f6", [
        ("user", "count to 3"),
        ("assistant", [{"type": "text", "text": "1, 2, 3."}]),
        ("user", "and again"),
        ("assistant", [{"type": "text", "text": "[offline model] You said: and again"}]),
    ]),
}

NODE_ID = "ba8112fa4ba3d6f934b2ad2aa06966023d56e1eeb0b2d5b74b5dd6ec152ba690"
APPROVAL_ID = "fixture-approval-1"
DM_PENDING_CODE = "H6SWK8CG"
CRON_JOB = "0ebaa655-d7a6-4191-84bc-da23c87b48ca"
CRON_RUN = "82fa38f0-7c06-472e-ace7-701126e2badc"

# nodes.sqlite's owners once each keeps its own version (the old file counted them by position).
NODES_SCHEMA_VERSIONS = {"nodes": 2, "channel-pairing": 1, "channel-cursors": 1,
                         "channel-ingress": 1, "approval-history": 1, "exec-grants": 1}


class FixedDevice(Device):
    """The fixture's device: its Ed25519 key from a fixed seed, so the test can sign again."""

    def __init__(self, seed: bytes) -> None:
        self.key = Ed25519PrivateKey.from_private_bytes(seed)
        self.raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.id = hashlib.sha256(self.raw).hexdigest()
        self.public_key = b64url(self.raw)


class OldStateDirectory(TestCase):
    def setUp(self) -> None:
        self.state = Path(self.mktemp())
        shutil.copytree(FIXTURE, self.state, ignore=shutil.ignore_patterns("README.md"))
        self.app, self.clock = make_app(state_dir=self.state)
        self.gw = self.app.hub
        self.addCleanup(self.close)
        self.admin = hello(self.gw, scopes=[ADMIN, READ, WRITE, PAIRING, APPROVALS])

    def close(self) -> None:
        self.app.runtime.stopService()
        for db in (self.app.cron_db, self.app.nodes_db, self.app.sessions_db, self.app.devices_db):
            db.close()

    def rows(self, relpath: str, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(str(self.state / relpath))
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def test_our_files_leave_the_real_gateways_paths(self) -> None:
        """db6df61 kept devices and sessions at the real OpenClaw gateway's own paths, where
        the real CLI opens them and refuses our schema; they move to our own names."""
        for old, new in (("state/openclaw.sqlite", "state/openclaw_tw-devices.sqlite"),
                         ("agents/main/agent/openclaw-agent.sqlite",
                          "agents/main/agent/openclaw_tw-sessions.sqlite")):
            self.assertFalse((self.state / old).exists(), old)
            self.assertTrue((self.state / new).exists(), new)

    # -- agents/main/agent/openclaw_tw-sessions.sqlite (was openclaw-agent.sqlite) --------------

    def test_sessions_and_transcripts(self) -> None:
        listed = ok(self.admin, "sessions.list", {})
        by_key = {s["key"]: s for s in listed["sessions"]}
        self.assertEqual(set(SESSIONS) - set(by_key), set(), listed)
        for key, (session_id, entries) in SESSIONS.items():
            self.assertEqual(by_key[key]["sessionId"], session_id, by_key[key])
            history = ok(self.admin, "chat.history", {"sessionKey": key})
            self.assertEqual(history["sessionId"], session_id)
            self.assertEqual([(m["role"], m["content"]) for m in history["messages"]], entries)

    def test_session_rows_from_before_last_run_usage(self) -> None:
        # the old rows held every run's counts added up (here the offline model's word counts,
        # 11 and 9 for fixture-b): not the last run's usage, so they are not shown
        for key in SESSIONS:
            row = ok(self.admin, "sessions.describe", {"key": key})["session"]
            self.assertEqual((row["sessionId"], row["status"], row["createdVia"]),
                             (SESSIONS[key][0], "done", "operator"))
            self.assertEqual({k: row[k] for k in ("inputTokens", "outputTokens", "totalTokens",
                                                  "estimatedCostUsd", "totalTokensFresh")
                              if k in row}, {"totalTokensFresh": False})
        self.assertEqual(self.rows("agents/main/agent/openclaw_tw-sessions.sqlite",
                                   "SELECT version FROM schema_versions WHERE owner='sessions'"),
                         [(7,)])  # 4: the group catalog; 5: list indexes, counts, open runs;
        # 6: the search index; 7: the list indexes under the agent id
        self.assertEqual(self.rows("agents/main/agent/openclaw_tw-sessions.sqlite",
                                   "SELECT SUM(n) FROM session_counts"), [(len(SESSIONS),)])
        send = {"sessionKey": "agent:main:fixture-b", "message": "after the upgrade",
                "idempotencyKey": "after-upgrade"}
        self.assertTrue(ok(self.admin, "chat.send", send)["runId"])
        for _ in range(80):
            self.clock.advance(0.005)
        history = ok(self.admin, "chat.history", {"sessionKey": "agent:main:fixture-b"})
        self.assertEqual([m["role"] for m in history["messages"]][-2:], ["user", "assistant"])
        self.assertEqual(history["sessionInfo"]["status"], "done")

    # -- state/openclaw.sqlite ---------------------------------------------------------------

    def test_paired_device_and_pending_request(self) -> None:
        listing = ok(self.admin, "device.pair.list", {})
        paired = {d["deviceId"]: d for d in listing["paired"]}
        self.assertIn(PAIRED_DEVICE, paired, listing)
        dev = paired[PAIRED_DEVICE]
        self.assertEqual((dev["approvedVia"], dev["roles"], dev["scopes"]),
                         ("silent", ["operator"], [READ]))
        self.assertEqual([(t["role"], t["scopes"]) for t in dev["tokens"]], [("operator", [READ])])
        self.assertEqual([(p["requestId"], p["deviceId"]) for p in listing["pending"]],
                         [(PENDING_REQUEST, PENDING_DEVICE)])

    def test_device_token_still_authenticates(self) -> None:
        device = FixedDevice(PAIRED_SEED)
        self.assertEqual(device.id, PAIRED_DEVICE)
        client = WSClient(self.gw)
        rid = device.send_connect(client, token=None, device_token=PAIRED_TOKEN, scopes=[READ])
        res = client.response(rid)
        for _ in range(40):  # any auth-limiter delay
            if res is not None:
                break
            self.clock.advance(0.25)
            res = client.response(rid)
        assert res is not None, "no answer to connect"
        self.assertTrue(res["ok"], res)
        auth = res["payload"]["auth"]
        self.assertEqual((auth["method"], auth["deviceToken"], auth["scopes"]),
                         ("device-token", PAIRED_TOKEN, [READ]))

    # -- state/cron.sqlite -------------------------------------------------------------------

    def test_cron_job_and_run(self) -> None:
        jobs = {j["id"]: j for j in ok(self.admin, "cron.list", {})["jobs"]}
        self.assertIn(CRON_JOB, jobs, jobs)
        job = jobs[CRON_JOB]
        self.assertEqual((job["name"], job["schedule"]["everyMs"], job["payload"]),
                         ("fixture reminder", 3_600_000,
                          {"kind": "systemEvent", "text": "fixture ping"}))
        runs = ok(self.admin, "cron.runs", {"id": CRON_JOB})["entries"]
        self.assertEqual([(r["runId"], r["action"], r["status"]) for r in runs],
                         [(CRON_RUN, "finished", "ok")])

    # -- state/nodes.sqlite ------------------------------------------------------------------

    def test_approved_node_surface(self) -> None:
        listing = ok(self.admin, "node.pair.list", {})
        paired = {n["nodeId"]: n for n in listing["paired"]}
        self.assertIn(NODE_ID, paired, listing)
        node = paired[NODE_ID]
        self.assertEqual((node["clientId"], node["caps"], node["commands"]),
                         ("node-host", ["system"], ["system.notify", "system.run",
                                                    "system.run.prepare", "system.which"]))

    def test_pending_exec_approval(self) -> None:
        listed = ok(self.admin, "exec.approval.list")
        self.assertEqual([a["id"] for a in listed], [APPROVAL_ID], listed)
        self.assertEqual((listed[0]["request"]["command"], listed[0]["expiresAtMs"]),
                         ("echo fixture", 1795086403000))

    def test_dm_pairing_request_and_allowed_sender(self) -> None:
        listed = ok(self.admin, "channels.pairing.list", {})
        self.assertEqual([(r["requestId"], r["channel"], r["accountId"], r["senderId"])
                          for r in listed["requests"]],
                         [(DM_PENDING_CODE, "telegram", "default", "1001")])
        self.assertTrue(self.app.dm_pairing.is_allowed("telegram", "default", "1002"))
        self.assertFalse(self.app.dm_pairing.is_allowed("telegram", "default", "1001"))

    def test_provider_cursor(self) -> None:
        self.assertEqual(self.app.cursors.get("telegram", "default"), "424242")

    def test_channel_ingress_row(self) -> None:
        [(row_id, msg)] = self.app.ingress.unfinished[("telegram", "default")]
        self.assertEqual((row_id, msg.chat_type, msg.sender_id, msg.sender_label, msg.text,
                          msg.message_id),
                         (1, "dm", "1002", "Bob", "hello from before the upgrade", "tg-77"))

    def test_nodes_file_records_per_owner_versions(self) -> None:
        try:
            versions = dict(self.rows("state/nodes.sqlite",
                                      "SELECT owner, version FROM schema_versions"))
        except sqlite3.OperationalError as e:
            self.fail(f"nodes.sqlite has no schema_versions table: {e}")
        self.assertEqual(versions, NODES_SCHEMA_VERSIONS)
