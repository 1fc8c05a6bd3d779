"""Standing grants: what "Always allow" on an automation's exec approval mints.

As the real gateway (docs ``tools/exec-approvals`` "Standing grants for automations"): when an
exec approval raised by a cron job's run is resolved ``allow-always``, a grant is minted,
bound to that exact agent, job, job definition (a digest of its substantive fields) and
operation (command text and working directory).  Later runs of the same job execute that
exact operation without prompting while the grant holds.  A grant stops matching when the
job's definition changes or the job is gone, when the operation differs by a byte, when it
is revoked or expired.  Its lifetime is ``grantExpiresInDays`` from the resolve, else
``tools.exec.grantExpiryDays``, else until revoked.

Grants live in nodes.sqlite (owner ``exec-grants``) and are listed newest first by
``exec.approval.grants.list`` in the real shape; ``exec.approval.grants.revoke`` answers
``revoked``, ``already-revoked`` or ``not-found``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from openclaw_tw import _json
from openclaw_tw.db import Database

_log = Logger(namespace="approvals")

MIGRATION = [
    """CREATE TABLE exec_grants (
        grant_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        record TEXT NOT NULL
    )""",
]
DAY_MS = 86_400_000
MAX_GRANTS = 10_000  # oldest revoked/expired ones go first beyond this
DEFAULT_LIMIT = 200
# A job's substantive definition: what it runs and as whom (not its name, state, switch).
SUBSTANTIVE = ("agentId", "schedule", "sessionTarget", "sessionKey", "payload")


def job_digest(job: dict[str, Any]) -> str:
    return hashlib.sha256(_json.dumps({k: job.get(k) for k in SUBSTANTIVE})).hexdigest()


class StandingGrants:
    def __init__(self, db: Database, now_ms: Callable[[], int]) -> None:
        self.db = db
        self.now_ms = now_ms
        self.grants: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute("SELECT record FROM exec_grants ORDER BY created_at").fetchall()

        for (record,) in self.db.run_now(read):
            grant = _json.loads(record)
            self.grants[grant["grantId"]] = grant

    def _save(self, grant: dict[str, Any]) -> None:
        data = _json.dumps(grant).decode()
        self.db.run(lambda c: c.execute(
            "INSERT OR REPLACE INTO exec_grants VALUES (?, ?, ?)",
            (grant["grantId"], grant["createdAtMs"], data))).addErrback(
            lambda f: _log.failure("saving a standing grant failed", f))

    # -- minting and matching ----------------------------------------------------------------

    def mint(self, approval_id: str, agent_id: str, job: dict[str, Any], command: str,
             cwd: str | None, expires_in_days: float | None) -> dict[str, Any]:
        now = self.now_ms()
        grant = {"grantId": str(uuid.uuid4()), "mintedByApprovalId": approval_id,
                 "agentId": agent_id, "cronJobId": job["id"],
                 "cronJobName": job.get("name"), "jobDigest": job_digest(job),
                 "command": command, "cwd": cwd, "createdAtMs": now,
                 "expiresAtMs": now + int(expires_in_days) * DAY_MS if expires_in_days
                 else None, "revokedAtMs": None, "revokedBy": None, "lastUsedAtMs": None,
                 "useCount": 0}
        self.grants[grant["grantId"]] = grant
        self._trim()
        self._save(grant)
        _log.info("standing grant {id} minted for cron job {job}: {command}",
                  id=grant["grantId"], job=job["id"], command=command[:120])
        return grant

    def match(self, agent_id: str, job: dict[str, Any], command: str,
              cwd: str | None) -> dict[str, Any] | None:
        """A valid grant for exactly this operation of this job as it is now."""
        now, digest = self.now_ms(), job_digest(job)
        for grant in reversed(list(self.grants.values())):
            if grant["revokedAtMs"] is not None or \
                    (grant["expiresAtMs"] is not None and grant["expiresAtMs"] <= now):
                continue
            if (grant["agentId"], grant["cronJobId"], grant["jobDigest"], grant["command"],
                    grant["cwd"]) == (agent_id, job["id"], digest, command, cwd):
                return grant
        return None

    def used(self, grant: dict[str, Any]) -> None:
        grant["useCount"] += 1
        grant["lastUsedAtMs"] = self.now_ms()
        self._save(grant)

    # -- the methods -----------------------------------------------------------------------

    def listing(self, limit: int | None) -> list[dict[str, Any]]:
        newest = sorted(self.grants.values(), key=lambda g: g["createdAtMs"], reverse=True)
        return [{k: (v[:512] if k in ("command", "cwd") and isinstance(v, str) else v)
                 for k, v in g.items() if k != "jobDigest"}
                for g in newest[: limit or DEFAULT_LIMIT]]

    def revoke(self, grant_id: str, by: str) -> str:
        grant = self.grants.get(grant_id)
        if grant is None:
            return "not-found"
        if grant["revokedAtMs"] is not None:
            return "already-revoked"
        grant["revokedAtMs"], grant["revokedBy"] = self.now_ms(), by
        self._save(grant)
        return "revoked"

    def _trim(self) -> None:
        if len(self.grants) <= MAX_GRANTS:
            return
        now = self.now_ms()
        dead = [g for g in self.grants.values() if g["revokedAtMs"] is not None or
                (g["expiresAtMs"] is not None and g["expiresAtMs"] <= now)]
        for grant in sorted(dead, key=lambda g: g["createdAtMs"])[
                : len(self.grants) - MAX_GRANTS]:
            del self.grants[grant["grantId"]]
            self.db.run(lambda c, gid=grant["grantId"]: c.execute(
                "DELETE FROM exec_grants WHERE grant_id = ?", (gid,)))
