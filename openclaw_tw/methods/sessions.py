"""sessions.*: list, subscribe, preview, resolve, describe, get, patch, reset, delete, compact,
create, send, abort (§6.3).  Rows come from the store (its cache, or the database thread:
``sessions.list`` pages there), presented by ``session_rows``; transcript reads and archive
files go through the database thread too."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from openclaw_tw import _json
from openclaw_tw.agent.runtime import AgentRuntime, AlreadyRecorded, Run
from openclaw_tw.errors import invalid_request
from openclaw_tw.methods.chat import history_message
from openclaw_tw.methods.reused_keys import answer_reused
from openclaw_tw.methods.session_params import (
    ABORT,
    COMPACT,
    CREATE,
    DEFAULT_LIMIT,
    DELETE,
    DESCRIBE,
    GET,
    GET_DEFAULT_LIMIT,
    LIST,
    MAX_CANDIDATES,
    PATCH,
    PREVIEW,
    RESET,
    RESOLVE,
    SEND,
    SUBSCRIBE,
)
from openclaw_tw.methods.session_rows import (
    LAST_WITHIN,
    SAID,
    RowPresenter,
    archive,
    body_text,
    enrich,
    said,
)
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.sessions.keys import normalize_agent_id, resolve_key
from openclaw_tw.sessions.labels import claim_label
from openclaw_tw.sessions.listing import SQL_INT, ListQuery
from openclaw_tw.sessions.store import OVERRIDE_FIELDS, Entry, SessionRow, SessionStore

if TYPE_CHECKING:
    from openclaw_tw.config.settings import GatewaySettings
    from openclaw_tw.interfaces import IConnection

RunBlocking = Callable[..., Deferred[Any]]



def entry_text(entry: Entry) -> str:
    return body_text(entry.body)


class SessionsMethods:
    """sessions.* (§6.3), and the ``sessions.changed`` event for subscribed operators."""

    def __init__(self, runtime: AgentRuntime, store: SessionStore,
                 broadcast: Callable[..., int], now_ms: Callable[[], int],
                 settings: Callable[[], GatewaySettings], run_blocking: RunBlocking,
                 display_path: Callable[[Path], str], db_path: Path) -> None:
        self.runtime = runtime
        self.store = store
        self.broadcast = broadcast
        self.now_ms = now_ms
        self.settings = settings
        self.run_blocking = run_blocking
        self.display_path = display_path
        self.path = display_path(db_path)
        self.rows = RowPresenter(runtime)
        # key -> the sessions.delete in progress for it: an identical delete arriving before
        # it finishes waits for it and answers deleted: false (issue #21 finding 5).
        self._deleting: dict[str, Deferred[Any]] = {}

    @property
    def primary(self) -> str:
        return self.runtime.registry.primary

    def public(self, row: SessionRow) -> dict[str, Any]:
        return self.rows.row(row)

    def session_changed(self, row: SessionRow, reason: str) -> None:
        """Broadcast ``sessions.changed`` to the operators subscribed to it."""
        self.broadcast("sessions.changed", {"sessionKey": row.key, "agentId": row.agent_id,
                                            "reason": reason, "session": self.public(row)},
                       scope=S.READ, drop_if_slow=True, predicate=_subscribed)

    def _existing(self, params: dict[str, Any]) -> Deferred[SessionRow]:
        return self.store.get(_key_of(params)).addCallback(_checked, params)

    # -- reading -----------------------------------------------------------------------------

    @rpc("sessions.list", LIST)
    def sessions_list(self, ctx: CallContext, params: dict[str, Any]
                      ) -> Deferred[dict[str, Any]]:
        archived = params.get("archived", False)
        active = params.get("activeMinutes")
        query = ListQuery(
            archived=None if archived == "all" else bool(archived),
            agent_id=normalize_agent_id(params["agentId"]) if params.get("agentId") else None,
            label=params.get("label"), pinned=params.get("pinned"),
            search=params["search"].lower() if params.get("search") else None,
            updated_since=self.now_ms() - active * 60_000 if active else None,
            include_global=bool(params.get("includeGlobal")),
            include_unknown=bool(params.get("includeUnknown")),
            by_interaction=params.get("sortBy") == "lastInteractionAt",
            # clamped to what SQLite (and the JSON encoder) hold: limitApplied says so
            offset=min(params.get("offset", 0), SQL_INT),
            limit=min(params.get("limit", DEFAULT_LIMIT), SQL_INT),
            # sub-sessions of a session: none here (no session spawns another)
            nothing=bool(params.get("spawnedBy")))
        return self.store.page(query).addCallback(self._listed, query, params)

    def _listed(self, found: tuple[list[SessionRow], int], query: ListQuery,
                params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        page, total = found
        offset, limit = query.offset, query.limit
        more = offset + limit < total
        result: dict[str, Any] = {
            "ts": self.now_ms(), "path": self.path, "count": len(page), "totalCount": total,
            "limitApplied": limit, "nextOffset": offset + limit if more else None,
            "hasMore": more, "owners": [], "defaults": self.rows.defaults(),
            "sessions": self.rows.rows(page)}
        return self._enriched([r.key for r in page], result, params)

    @rpc("sessions.subscribe", SUBSCRIBE)
    def subscribe(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        ctx.conn.subscriptions.add("sessions")
        if not params:
            return {"subscribed": True}
        return self.sessions_list(ctx, params).addCallback(_subscribed_with)

    @rpc("sessions.unsubscribe")
    def unsubscribe(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        ctx.conn.subscriptions.discard("sessions")
        return {"subscribed": False}

    @rpc("sessions.preview", PREVIEW)
    def preview(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        keys = [resolve_key(k) for k in params["keys"]][:50]
        limit, max_chars = params.get("limit", 5), params.get("maxChars", 200)
        return self.store.get_many(keys).addCallback(self._preview, keys, limit, max_chars)

    def _preview(self, rows: dict[str, SessionRow], keys: list[str], limit: int,
                 max_chars: int) -> Deferred[dict[str, Any]]:
        return self.store.last_entries([k for k in keys if k in rows], limit).addCallback(
            self._previews, keys, set(rows), max_chars)

    def _previews(self, last: dict[str, list[Entry]], keys: list[str], existing: set[str],
                  max_chars: int) -> dict[str, Any]:
        previews = []
        for key in keys:
            if key not in existing:
                previews.append({"key": key, "status": "missing", "items": []})
                continue
            items = [{"role": e.role, "text": entry_text(e)[:max_chars]}
                     for e in last.get(key, []) if e.role in ("user", "assistant")]
            previews.append({"key": key, "status": "ok", "items": items})
        return {"ts": self.now_ms(), "previews": previews}

    @rpc("sessions.resolve", RESOLVE)
    def resolve(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        if not params.get("key"):
            return self._resolve_by(None, params)
        return self.store.get(_key_of(params)).addCallback(self._resolve_by, params)

    def _resolve_by(self, row: SessionRow | None, params: dict[str, Any]
                    ) -> Deferred[dict[str, Any]]:
        if params.get("key"):
            key = _key_of(params)
            if row is not None or params.get("allowMissing") or key.endswith(":main"):
                return succeed({"ok": True, "key": key, "agentId": key.split(":")[1]
                                if key.startswith("agent:") else "main"})
        if params.get("sessionId"):
            d = self.store.find(session_id=params["sessionId"], limit=MAX_CANDIDATES)
        elif params.get("label"):
            d = self.store.find(label=params["label"], limit=MAX_CANDIDATES)
        else:
            d = succeed([])
        return d.addCallback(self._resolved)

    def _resolved(self, candidates: list[SessionRow]) -> dict[str, Any]:
        if len(candidates) == 1:
            return {"ok": True, "key": candidates[0].key, "agentId": candidates[0].agent_id,
                    "displayName": candidates[0].label}
        return {"ok": False, "candidates": [self.public(r) for r in candidates]}

    @rpc("sessions.describe", DESCRIBE)
    def describe(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        """``{"session": row}``, or ``{"session": null}`` for a key without a row (the real
        gateway's answer; the TUI reads ``result.session``)."""
        return self.store.get(_key_of(params)).addCallback(self._describe, params)

    def _describe(self, row: SessionRow | None, params: dict[str, Any]
                  ) -> Deferred[dict[str, Any]]:
        if row is None:
            return succeed({"session": None})
        out = {"sessions": [self.rows.row(row, active_runs=False)]}
        return self._enriched([row.key], out, params).addCallback(_described)

    def _enriched(self, keys: list[str], out: dict[str, Any], params: dict[str, Any]
                  ) -> Deferred[dict[str, Any]]:
        if not params.get("includeLastMessage") or not keys:
            return succeed(enrich({}, out, params))
        return self.store.newest(keys, LAST_WITHIN, SAID, said).addCallback(enrich, out, params)

    @rpc("sessions.get", GET)
    def get(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        """The newest ``limit`` transcript messages, ``{"messages": [...]}`` (none for a key
        without a row)."""
        key = (params.get("key") or params.get("sessionKey") or "").strip()
        if not key:
            raise invalid_request("key required")
        limit = params.get("limit", GET_DEFAULT_LIMIT)
        return self.store.get(resolve_key(key, agent_id=params.get("agentId"))).addCallback(
            self._transcript, limit)

    def _transcript(self, row: SessionRow | None, limit: int) -> Deferred[dict[str, Any]]:
        if row is None:
            return succeed({"messages": []})
        return self.store.history(row.key, limit, None, row.session_id).addCallback(_messages)

    # -- changing ----------------------------------------------------------------------------

    @rpc("sessions.patch", PATCH)
    def patch(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self._existing(params).addCallback(self._patch, params)

    def _patch(self, row: SessionRow, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        raw = params.get("label")
        d = succeed(None) if raw is None else claim_label(self.store, row.key, raw)
        return d.addCallback(self._patch_fields, row, params)

    def _patch_fields(self, label: str | None, row: SessionRow, params: dict[str, Any]
                      ) -> Deferred[dict[str, Any]]:
        if "label" in params:
            row.label = label  # null removes it
        now = self.now_ms()
        if "archived" in params:
            archive(row, bool(params["archived"]), now)
        for field in ("pinned", "unread"):
            if field in params:
                setattr(row, field, bool(params[field]))
        for field in OVERRIDE_FIELDS:
            if field in params:
                if params[field] is None:
                    row.overrides.pop(field, None)
                else:
                    row.overrides[field] = params[field]
        row.updated_at = now
        return self.store.save(row).addCallback(self._patched, row)

    def _patched(self, _: Any, row: SessionRow) -> dict[str, Any]:
        self.session_changed(row, "patch")
        model = row.overrides.get("model") or self.primary
        return {"ok": True, "path": self.path, "key": row.key, "entry": entry_of(row),
                "resolved": {"modelProvider": model.split("/")[0],
                             "model": model.split("/", 1)[-1]}}

    @rpc("sessions.reset", RESET)
    def reset(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self._existing(params).addCallback(self._reset)

    def _reset(self, row: SessionRow) -> Deferred[dict[str, Any]]:
        self.runtime.abort(row.key, None, "rpc")
        row.renew(self.now_ms())
        return self.store.save(row).addCallback(self._was_reset, row)

    def _was_reset(self, _: Any, row: SessionRow) -> dict[str, Any]:
        self.session_changed(row, "reset")
        return {"ok": True, "key": row.key,
                "entry": {**entry_of(row), "lifecycleRevision": row.session_id},
                "resolved": {"modelProvider": self.primary.split("/")[0],
                             "model": self.primary.split("/", 1)[-1]}}

    @rpc("sessions.delete", DELETE)
    def delete(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        key = _key_of(params)
        pending = self._deleting.get(key)
        if pending is not None:
            return _after(pending, {"ok": True, "key": key, "deleted": False, "archived": []})
        d = self.store.get(key).addCallback(self._delete, key, params)
        self._deleting[key] = d
        return d.addBoth(self._deleted, key)

    def _delete(self, row: SessionRow | None, key: str, params: dict[str, Any]
                ) -> Deferred[dict[str, Any]]:
        if row is None:
            return succeed({"ok": True, "key": key, "deleted": False, "archived": []})
        if params.get("archivedOnly") and not row.archived:
            raise invalid_request("session is not archived (archivedOnly)")
        self.runtime.abort(key, None, "rpc")
        archive = not params.get("deleteTranscript", False)
        target = self.settings().state_dir / "agents" / row.agent_id / "sessions"
        stamp = f"{self.now_ms()}.{uuid.uuid4().hex[:12]}"
        d = self.store.history(key, 1_000_000) if archive else succeed([])
        return d.addCallback(self._write_archive, target, row.session_id, stamp).addCallback(
            self._drop, key, row)

    def _deleted(self, result: Any, key: str) -> Any:
        self._deleting.pop(key, None)
        return result

    def _write_archive(self, entries: list[Entry], target: Path, session_id: str,
                       stamp: str) -> Deferred[list[str]]:
        if not entries:
            return succeed([])
        return self.run_blocking(_archive, target, session_id, stamp, entries)

    def _drop(self, archived: list[str], key: str, row: SessionRow
              ) -> Deferred[dict[str, Any]]:
        return self.store.delete(key).addCallback(self._dropped, key, row, archived)

    def _dropped(self, deleted: bool, key: str, row: SessionRow, archived: list[str]
                 ) -> dict[str, Any]:
        self.session_changed(row, "delete")
        return {"ok": True, "key": key, "deleted": deleted,
                "archived": [self.display_path(Path(p)) for p in archived]}

    @rpc("sessions.compact", COMPACT)
    def compact(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self._existing(params).addCallback(self._compact, params.get("maxLines", 20))

    def _compact(self, row: SessionRow, keep: int) -> Deferred[dict[str, Any]]:
        summary = {"role": "custom", "customType": "compaction", "display": True,
                   "content": "Earlier messages were compacted.", "timestamp": self.now_ms()}
        return self.store.compact(row, keep, summary).addCallback(_compacted, row.key)

    @rpc("sessions.create", CREATE)
    def create(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        agent_id = normalize_agent_id(params.get("agentId"))
        raw = params.get("key") or f"session-{uuid.uuid4().hex[:8]}"
        key = resolve_key(raw, agent_id=agent_id)
        raw = (params.get("label") or "").strip()  # blank: no label, as the reference
        d = succeed(None) if not raw else claim_label(self.store, key, raw)
        return d.addCallback(lambda label: self.store.ensure(key, "create").addCallback(
            self._create, ctx, params, key, label))

    def _create(self, row: SessionRow, ctx: CallContext, params: dict[str, Any], key: str,
                label: str | None) -> Deferred[Any]:
        if label is not None:
            row.label = label
        if params.get("model"):
            row.overrides["model"] = params["model"]
        return self.store.save(row).addCallback(self._created, ctx, params, key, row)

    def _created(self, _: Any, ctx: CallContext, params: dict[str, Any], key: str,
                 row: SessionRow) -> Any:
        self.session_changed(row, "create")
        out: dict[str, Any] = {"ok": True, "key": key, "sessionId": row.session_id,
                               "agentId": row.agent_id}
        if not params.get("message"):
            return out
        run_id = params.get("idempotencyKey") or str(uuid.uuid4())
        return self.runtime.accept(row, params["message"], run_id, "chat", ctx.conn
                                   ).addCallbacks(_run_started, self._reused,
                                                  callbackArgs=(out,),
                                                  errbackArgs=(run_id, row.key, params["message"],
                                                               out))

    @rpc("sessions.send", SEND)
    def send(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        if not params["message"].strip():
            raise invalid_request("invalid sessions.send params: message must not be empty")
        return self.store.ensure(_key_of(params), "send").addCallback(self._send, ctx, params)

    def _send(self, row: SessionRow, ctx: CallContext, params: dict[str, Any]
              ) -> Deferred[dict[str, Any]]:
        run_id = params.get("idempotencyKey") or str(uuid.uuid4())
        timeout = params.get("timeoutMs")
        return self.runtime.accept(row, params["message"], run_id, "chat", ctx.conn,
                                   timeout / 1000 if timeout else None).addCallbacks(
            _send_started, self._reused, callbackArgs=(row.key,),
            errbackArgs=(run_id, row.key, params["message"], None))

    def _reused(self, f: Failure, run_id: str, key: str, message: str,
                created: dict[str, Any] | None) -> Any:
        """The key is already used (by chat.send, another send, a recorded turn)."""
        f.trap(AlreadyRecorded)
        d = answer_reused(self.runtime, run_id, key, message)
        if created is None:
            return d
        return d.addCallback(lambda turn: {**created, "runStarted": False, **turn})

    @rpc("sessions.abort", ABORT)
    def abort(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        key = _key_of(params) if params.get("key") else None
        if key is None and not params.get("runId"):
            raise invalid_request("invalid sessions.abort params: key or runId required")
        ids = self.runtime.abort(key, params.get("runId"), "rpc")
        return {"ok": True, "aborted": bool(ids), "runIds": ids}


def _after(pending: Deferred[Any], answer: dict[str, Any]) -> Deferred[dict[str, Any]]:
    """``answer`` once ``pending`` settles, whichever way (its own caller sees its outcome)."""
    done: Deferred[dict[str, Any]] = Deferred()
    pending.addBoth(lambda result: (done.callback(answer), result)[1])
    return done


def _checked(row: SessionRow | None, params: dict[str, Any]) -> SessionRow:
    if row is None:
        raise invalid_request(f"unknown session key: {params.get('key')}")
    expected = params.get("expectedSessionId")
    if expected and expected != row.session_id:
        raise invalid_request("session changed since it was read; reload and retry",
                              {"reason": "session-changed"})
    return row


def _key_of(params: dict[str, Any]) -> str:
    return resolve_key(params.get("key"), agent_id=params.get("agentId"))


def _subscribed(conn: IConnection) -> bool:
    return "sessions" in conn.subscriptions


def _described(out: dict[str, Any]) -> dict[str, Any]:
    return {"session": out["sessions"][0]}


def _messages(entries: list[Entry]) -> dict[str, Any]:
    return {"messages": [history_message(e, None) for e in entries]}


def _subscribed_with(listing: dict[str, Any]) -> dict[str, Any]:
    return {"subscribed": True, "list": listing}


def entry_of(row: SessionRow) -> dict[str, Any]:
    out = {"sessionId": row.session_id, "updatedAt": row.updated_at,
           "sessionStartedAt": row.created_at, "lastInteractionAt": row.last_interaction_at,
           "createdVia": row.created_via, "createdAt": row.created_at, "label": row.label,
           "archived": row.archived, "pinned": row.pinned, **row.overrides}
    return {k: v for k, v in out.items() if v is not None}


def _compacted(counts: tuple[int, int], key: str) -> dict[str, Any]:
    """The real answer of a line-count compaction: the lines kept (those there were, when
    there were no more than asked), or "no transcript" for a session that has none."""
    removed, kept = counts
    return {"ok": True, "key": key, "compacted": removed > 0,
            **({"kept": kept} if kept else {"reason": "no transcript"})}


def _run_started(run: Run, out: dict[str, Any]) -> dict[str, Any]:
    return {**out, "runStarted": True, "runId": run.run_id}


def _send_started(run: Run, key: str) -> dict[str, Any]:
    return {"runId": run.run_id, "status": "started", "key": key}


def _archive(directory: Path, session_id: str, stamp: str, entries: list[Entry]) -> list[str]:
    """Write the transcript as JSON lines next to the reference's archive location."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{session_id}.jsonl.deleted.{stamp}"
    # Its own temporary name: ``with_suffix`` would drop the random part of the stamp, and two
    # deletes in one millisecond would write and rename one shared file (issue #21 finding 5).
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for e in entries:
            f.write(_json.dumps({"id": e.entry_id, "role": e.role, "ts": e.ts,
                                 "runId": e.run_id, "message": e.body}) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return [str(path)]
