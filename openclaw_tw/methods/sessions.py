"""sessions.*: list, subscribe, preview, resolve, describe/get, patch, reset, delete, compact,
create, send, abort (§6.3).  Rows come from the store's memory mirror; transcript reads and
archive files go through the database thread."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed

from openclaw_tw import _json
from openclaw_tw.agent.runtime import AgentRuntime
from openclaw_tw.errors import invalid_request
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, MethodTable
from openclaw_tw.protocol.schema import AnyValue, Arr, Bool, Int, Nullable, OneOf, Str, closed
from openclaw_tw.sessions.keys import kind_of, normalize_agent_id, resolve_key
from openclaw_tw.sessions.store import OVERRIDE_FIELDS, Entry, SessionRow, SessionStore

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_S1 = Str(min_len=1)
DEFAULT_LIMIT = 100
LIST = closed(optional={
    "limit": Int(minimum=1, maximum=1000), "offset": Int(minimum=0),
    "activeMinutes": Int(minimum=1), "label": Str(), "agentId": Str(), "search": Str(),
    "archived": OneOf(Bool(), Str(enum=["all"])), "includeGlobal": Bool(),
    "includeUnknown": Bool(), "includeLastMessage": Bool(), "includeDerivedTitles": Bool(),
    "sortBy": Str(enum=["updatedAt", "lastInteractionAt", "activity"]), "pinned": Bool()},
    accepted="activeOnly requireLastInteraction excludeSubagents excludeCron excludeSystem "
             "configuredAgentsOnly includeActivitySummary projectId workspaceDir group "
             "boardFace hasBoard creatorId ownerId ownerFirst involvingMe profileRelation "
             "involvingProfileId includePeople spawnedBy")
KEY = closed({"key": _S1}, {"agentId": Str()}, "includeDerivedTitles includeLastMessage")
PREVIEW = closed({"keys": Arr(Str())}, {"limit": Int(minimum=1, maximum=50),
                                        "maxChars": Int(minimum=20)})
RESOLVE = closed(optional={"key": Str(), "sessionId": Str(), "label": Str(),
                           "agentId": Str(), "allowMissing": Bool()},
                 accepted="reference shortId slugHint spawnedBy includeGlobal includeUnknown")
_NS = Nullable(Str())
PATCH = closed({"key": _S1}, {
    "agentId": Str(), "label": _NS, "archived": Nullable(Bool()), "pinned": Nullable(Bool()),
    "unread": Nullable(Bool()), "model": _NS, "thinkingLevel": _NS,
    "fastMode": Nullable(AnyValue()), "category": _NS, "expectedSessionId": Str()},
    accepted="expectedLifecycleRevision expectedPermissionMode expectedSandboxMode "
             "expectedNativeRuntimeConsent expectedToolOverrides expectedMarkedUnreadAt "
             "autoLabel icon color boardFace boardPresentation statusNote attention ttlMinutes "
             "contextWindow toolOverrides verboseLevel traceLevel reasoningLevel responseUsage "
             "elevatedLevel execHost execSecurity execAsk execNode permissionMode sandboxMode "
             "nativeRuntimeConsent agentRuntime completionOwnerSessionKey "
             "inheritedToolPolicyVersion inheritedToolAllow inheritedToolDeny sendPolicy "
             "groupActivation")
RESET = closed({"key": _S1}, {"agentId": Str(), "reason": Str(enum=["new", "reset"]),
                              "expectedSessionId": Str()})
DELETE = closed({"key": _S1}, {"agentId": Str(), "deleteTranscript": Bool(),
                               "expectedSessionId": Str(), "archivedOnly": Bool()},
                "expectedLifecycleRevision expectedSessionUpdatedAt emitLifecycleHooks")
COMPACT = closed({"key": _S1}, {"agentId": Str(), "maxLines": Int(minimum=1)})
CREATE = closed(optional={"key": Str(), "agentId": Str(), "label": Str(), "model": Str(),
                          "message": Str(), "idempotencyKey": Str()},
                accepted="displayName titleSource category agentRuntime contextWindow "
                         "thinkingLevel fastMode permissionMode toolOverrides incognito "
                         "visibility catalogId parentSessionKey spawnDepth fork forkFrom "
                         "emitCommandHooks succeedsParent timeoutMs task mentions attachments "
                         "projectId projectGitUrl repository worktree worktreeSource "
                         "worktreeBaseRef worktreeName execNode cwd")
SEND = closed({"key": _S1, "message": Str()}, {"agentId": Str(), "idempotencyKey": Str(),
                                               "timeoutMs": Int(minimum=0)},
              "mentions thinking attachments")
ABORT = closed(optional={"key": Str(), "runId": Str(), "agentId": Str(),
                         "clearQueued": Bool()})


def row_public(row: SessionRow, runtime: AgentRuntime, registry_primary: str) -> dict[str, Any]:
    model_ref = row.overrides.get("model") or registry_primary
    provider, _, model = model_ref.partition("/")
    active = runtime.active.get(row.key)
    runtime_ms = (row.ended_at - row.started_at) if row.ended_at and row.started_at else None
    out: dict[str, Any] = {
        "key": row.key, "visibility": "shared", "kind": kind_of(row.key),
        "chatType": kind_of(row.key), "agentId": row.agent_id,
        "isMain": row.key == f"agent:{row.agent_id}:main", "isBackground": False,
        "sessionId": row.session_id, "createdAt": row.created_at, "updatedAt": row.updated_at,
        "lastInteractionAt": row.last_interaction_at, "createdVia": row.created_via,
        "label": row.label, "displayName": row.label, "archived": row.archived,
        "pinned": row.pinned, "unread": row.unread, "status": row.status,
        "startedAt": row.started_at, "endedAt": row.ended_at, "runtimeMs": runtime_ms,
        "lastRunId": row.last_run_id, "lastRunError": row.last_run_error,
        "abortedLastRun": row.status in ("aborted", "interrupted"),
        "inputTokens": row.input_tokens, "outputTokens": row.output_tokens,
        "totalTokens": row.input_tokens + row.output_tokens,
        "modelProvider": provider, "model": model,
        "thinkingLevel": row.overrides.get("thinkingLevel"),
        "hasActiveRun": active is not None,
        "activeRunIds": [active.run_id] if active is not None else [],
    }
    return {k: v for k, v in out.items() if v is not None}


def entry_text(entry: Entry) -> str:
    content = entry.body.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def register(table: MethodTable, gw: Gateway, runtime: AgentRuntime,
             store: SessionStore) -> None:
    primary = runtime.registry.primary
    path = gw.display_path(gw.sessions_path())

    def public(row: SessionRow) -> dict[str, Any]:
        return row_public(row, runtime, primary)

    def changed(row: SessionRow, reason: str) -> None:
        gw.broadcast("sessions.changed", {"sessionKey": row.key, "agentId": row.agent_id,
                                          "reason": reason, "session": public(row)},
                     scope=S.READ, drop_if_slow=True,
                     predicate=lambda conn: "sessions" in conn.subscriptions)

    runtime.on_session_changed = changed

    def key_of(params: dict[str, Any]) -> str:
        return resolve_key(params.get("key"), agent_id=params.get("agentId"))

    def existing(params: dict[str, Any]) -> SessionRow:
        row = store.get(key_of(params))
        if row is None:
            raise invalid_request(f"unknown session key: {params.get('key')}")
        expected = params.get("expectedSessionId")
        if expected and expected != row.session_id:
            raise invalid_request("session changed since it was read; reload and retry",
                                  {"reason": "session-changed"})
        return row

    def sessions_list(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        rows = list(store.rows.values())
        archived = params.get("archived", False)
        if archived != "all":
            rows = [r for r in rows if r.archived == bool(archived)]
        if params.get("agentId"):
            rows = [r for r in rows if r.agent_id == normalize_agent_id(params["agentId"])]
        if params.get("label") is not None:
            rows = [r for r in rows if r.label == params["label"]]
        if params.get("pinned") is not None:
            rows = [r for r in rows if r.pinned == params["pinned"]]
        if params.get("search"):
            needle = params["search"].lower()
            rows = [r for r in rows if needle in r.key.lower() or
                    needle in (r.label or "").lower()]
        if params.get("activeMinutes"):
            cutoff = gw.now_ms() - params["activeMinutes"] * 60_000
            rows = [r for r in rows if r.updated_at >= cutoff]
        if not params.get("includeGlobal"):
            rows = [r for r in rows if r.key != "global"]
        if not params.get("includeUnknown"):
            rows = [r for r in rows if r.key != "unknown"]
        sort = params.get("sortBy", "updatedAt")
        rows.sort(key=lambda r: ((r.last_interaction_at or 0) if sort == "lastInteractionAt"
                                 else r.updated_at), reverse=True)
        rows.sort(key=lambda r: not r.pinned)
        total, offset = len(rows), params.get("offset", 0)
        limit = params.get("limit", DEFAULT_LIMIT)
        page = rows[offset: offset + limit]
        more = offset + limit < total
        result: dict[str, Any] = {
            "ts": gw.now_ms(), "path": path, "count": len(page), "totalCount": total,
            "limitApplied": limit, "nextOffset": offset + limit if more else None,
            "hasMore": more, "owners": [],
            "defaults": {"modelProvider": primary.split("/")[0],
                         "model": primary.split("/", 1)[1], "contextTokens": None,
                         "thinkingLevels": [{"id": "off", "label": "off"}],
                         "thinkingOptions": ["off"], "thinkingDefault": "off",
                         "modelSelectionTarget": "session"},
            "sessions": [public(r) for r in page]}
        if not (params.get("includeLastMessage") or params.get("includeDerivedTitles")) \
                or not page:
            return succeed(result)

        def enrich(last: dict[str, list[Entry]]) -> dict[str, Any]:
            for out in result["sessions"]:
                entries = last.get(out["key"]) or []
                if params.get("includeLastMessage") and entries:
                    out["lastMessage"] = {"role": entries[-1].role,
                                          "text": entry_text(entries[-1])[:500],
                                          "timestamp": entries[-1].ts}
                if params.get("includeDerivedTitles"):
                    first = next((e for e in entries if e.role == "user"), None)
                    if first is not None:
                        out["derivedTitle"] = entry_text(first)[:80]
            return result

        return store.last_entries([r.key for r in page], 20).addCallback(enrich)

    def subscribe(ctx: CallContext, params: dict[str, Any]) -> Any:
        ctx.conn.subscriptions.add("sessions")
        if not params:
            return {"subscribed": True}
        return sessions_list(ctx, params).addCallback(
            lambda listing: {"subscribed": True, "list": listing})

    def unsubscribe(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        ctx.conn.subscriptions.discard("sessions")
        return {"subscribed": False}

    def preview(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        keys = [resolve_key(k) for k in params["keys"]][:50]
        limit, max_chars = params.get("limit", 5), params.get("maxChars", 200)

        def shape(last: dict[str, list[Entry]]) -> dict[str, Any]:
            previews = []
            for key in keys:
                if key not in store.rows:
                    previews.append({"key": key, "status": "missing", "items": []})
                    continue
                items = [{"role": e.role, "text": entry_text(e)[:max_chars]}
                         for e in last.get(key, []) if e.role in ("user", "assistant")]
                previews.append({"key": key, "status": "ok", "items": items})
            return {"ts": gw.now_ms(), "previews": previews}

        return store.last_entries([k for k in keys if k in store.rows], limit).addCallback(shape)

    def resolve(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        candidates: list[SessionRow] = []
        if params.get("key"):
            key = key_of(params)
            if key in store.rows or params.get("allowMissing") or key.endswith(":main"):
                return {"ok": True, "key": key, "agentId": key.split(":")[1]
                        if key.startswith("agent:") else "main"}
        if params.get("sessionId"):
            candidates = [r for r in store.rows.values()
                          if r.session_id == params["sessionId"]]
        elif params.get("label"):
            candidates = [r for r in store.rows.values() if r.label == params["label"]]
        if len(candidates) == 1:
            return {"ok": True, "key": candidates[0].key, "agentId": candidates[0].agent_id,
                    "displayName": candidates[0].label}
        return {"ok": False, "candidates": [public(r) for r in candidates]}

    def describe(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return public(existing(params))

    def patch(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        row = existing(params)
        for field in ("label", "archived", "pinned", "unread"):
            if field in params:
                value = params[field]
                setattr(row, field, value if field == "label" else bool(value))
        for field in OVERRIDE_FIELDS:
            if field in params:
                if params[field] is None:
                    row.overrides.pop(field, None)
                else:
                    row.overrides[field] = params[field]
        row.updated_at = gw.now_ms()

        def done(_: Any) -> dict[str, Any]:
            changed(row, "patch")
            model = row.overrides.get("model") or primary
            return {"ok": True, "path": path, "key": row.key, "entry": entry_of(row),
                    "resolved": {"modelProvider": model.split("/")[0],
                                 "model": model.split("/", 1)[-1]}}

        return store.save(row).addCallback(done)

    def entry_of(row: SessionRow) -> dict[str, Any]:
        out = {"sessionId": row.session_id, "updatedAt": row.updated_at,
               "sessionStartedAt": row.created_at, "lastInteractionAt": row.last_interaction_at,
               "createdVia": row.created_via, "createdAt": row.created_at, "label": row.label,
               "archived": row.archived, "pinned": row.pinned, **row.overrides}
        return {k: v for k, v in out.items() if v is not None}

    def reset(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        row = existing(params)
        runtime.abort(row.key, None, "rpc")
        now = gw.now_ms()
        row.session_id, row.created_at, row.updated_at = str(uuid.uuid4()), now, now
        row.status = row.last_run_id = row.last_run_error = None
        row.started_at = row.ended_at = None
        row.input_tokens = row.output_tokens = 0

        def done(_: Any) -> dict[str, Any]:
            changed(row, "reset")
            return {"ok": True, "key": row.key,
                    "entry": {**entry_of(row), "lifecycleRevision": row.session_id},
                    "resolved": {"modelProvider": primary.split("/")[0],
                                 "model": primary.split("/", 1)[-1]}}

        return store.save(row).addCallback(done)

    def delete(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        key = key_of(params)
        row = store.get(key)
        if row is None:
            return succeed({"ok": True, "key": key, "deleted": False, "archived": []})
        if params.get("archivedOnly") and not row.archived:
            raise invalid_request("session is not archived (archivedOnly)")
        runtime.abort(key, None, "rpc")
        archive = not params.get("deleteTranscript", False)
        target = gw.settings.state_dir / "agents" / row.agent_id / "sessions"
        stamp = f"{gw.now_ms()}.{uuid.uuid4().hex[:12]}"
        d = store.history(key, 1_000_000) if archive else succeed([])

        def write_archive(entries: list[Entry]) -> Deferred[list[str]]:
            if not entries:
                return succeed([])
            return gw.run_blocking(_archive, target, row.session_id, stamp, entries)

        def drop(archived: list[str]) -> Deferred[dict[str, Any]]:
            return store.delete(key).addCallback(lambda deleted: (
                changed(row, "delete"),
                {"ok": True, "key": key, "deleted": deleted,
                 "archived": [gw.display_path(Path(p)) for p in archived]})[1])

        return d.addCallback(write_archive).addCallback(drop)

    def compact(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        row = existing(params)
        keep = params.get("maxLines", 20)
        summary = {"role": "custom", "customType": "compaction", "display": True,
                   "content": "Earlier messages were compacted.", "timestamp": gw.now_ms()}
        return store.compact(row.key, keep, summary).addCallback(
            lambda removed: {"ok": True, "key": row.key, "compacted": removed > 0,
                             "removed": removed,
                             **({} if removed else {"reason": "nothing to compact"})})

    def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        agent_id = normalize_agent_id(params.get("agentId"))
        raw = params.get("key") or f"session-{uuid.uuid4().hex[:8]}"
        key = resolve_key(raw, agent_id=agent_id)
        row = store.ensure(key, "create")
        if params.get("label"):
            row.label = params["label"]
        if params.get("model"):
            row.overrides["model"] = params["model"]
        d = store.save(row)

        def start(_: Any) -> Any:
            changed(row, "create")
            out: dict[str, Any] = {"ok": True, "key": key, "sessionId": row.session_id,
                                   "agentId": row.agent_id}
            if not params.get("message"):
                return out
            run_id = params.get("idempotencyKey") or str(uuid.uuid4())
            return runtime.accept(row, params["message"], run_id, "chat", ctx.conn).addCallback(
                lambda run: {**out, "runStarted": True, "runId": run.run_id})

        return d.addCallback(start)

    def send(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        if not params["message"].strip():
            raise invalid_request("invalid sessions.send params: message must not be empty")
        row = store.ensure(key_of(params), "send")
        run_id = params.get("idempotencyKey") or str(uuid.uuid4())
        timeout = params.get("timeoutMs")
        return runtime.accept(row, params["message"], run_id, "chat", ctx.conn,
                              timeout / 1000 if timeout else None).addCallback(
            lambda run: {"runId": run.run_id, "status": "started", "key": row.key})

    def abort(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        key = key_of(params) if params.get("key") else None
        if key is None and not params.get("runId"):
            raise invalid_request("invalid sessions.abort params: key or runId required")
        ids = runtime.abort(key, params.get("runId"), "rpc")
        return {"ok": True, "aborted": bool(ids), "runIds": ids}

    table.add("sessions.list", sessions_list, LIST)
    table.add("sessions.subscribe", subscribe, closed(accepted=" ".join(LIST.fields)))
    table.add("sessions.unsubscribe", unsubscribe)
    table.add("sessions.preview", preview, PREVIEW)
    table.add("sessions.resolve", resolve, RESOLVE)
    table.add("sessions.describe", describe, KEY)
    table.add("sessions.get", describe, KEY)
    table.add("sessions.patch", patch, PATCH)
    table.add("sessions.reset", reset, RESET)
    table.add("sessions.delete", delete, DELETE)
    table.add("sessions.compact", compact, COMPACT)
    table.add("sessions.create", create, CREATE)
    table.add("sessions.send", send, SEND)
    table.add("sessions.abort", abort, ABORT)


def _archive(directory: Path, session_id: str, stamp: str, entries: list[Entry]) -> list[str]:
    """Write the transcript as JSON lines next to the reference's archive location."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{session_id}.jsonl.deleted.{stamp}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for e in entries:
            f.write(_json.dumps({"id": e.entry_id, "role": e.role, "ts": e.ts,
                                 "runId": e.run_id, "message": e.body}) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return [str(path)]
