"""Hooks (§11.5): ``POST <hooks.path>/wake`` and ``POST <hooks.path>/agent``.

Served only with ``hooks.enabled: true`` and a ``hooks.token``; otherwise the path falls
through to the 404.  Checks, in order: a ``?token=`` query (400), the method (405), the
token in ``Authorization: Bearer`` or ``x-openclaw-token`` (401 ``Unauthorized``; after 20
failures from one address within 60 s that address gets 429 with ``Retry-After`` until the
window clears, whatever it sends), the sub-path (404 for anything but ``wake``/``agent``:
configured mappings are not implemented), then the JSON body (≤256 KiB).

``wake`` queues a system event for the session (default ``agent:<agentId>:main``): it is
kept in a bounded pending queue (an identical pending text is ``coalesced``) and shown in
presence as a ``system-event`` entry (broadcast to operators).  There is no heartbeat runner
yet, so nothing consumes the queue and ``mode`` is only echoed.

``agent`` starts an agent run (the runtime's ordinary path) and answers ``{ok, runId}`` once
the user entry is committed; the run goes on without the caller, unless ``waitForCompletion:
true`` keeps the response open until it ends (``completion``: status, reply disposition and
delivery facts, never the reply).  ``sessionMode`` ``isolated`` (default) runs in a fresh
``agent:<agentId>:hook:<uuid>`` session; ``persistent`` in the given ``sessionKey``'s own
session.  A request ``sessionKey`` is honoured only with ``hooks.allowRequestSessionKey:
true`` and, when set, under one of ``hooks.allowedSessionKeyPrefixes``.
"""

from __future__ import annotations

import hmac
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from twisted.logger import Logger
from twisted.web.server import Request

from openclaw_tw.agent.models import ProviderError
from openclaw_tw.agent.run import TooManyRuns
from openclaw_tw.automation.heartbeat import ACK_TOKENS
from openclaw_tw.errors import clip
from openclaw_tw.sessions.keys import is_reserved, main_key, resolve_key, rest_of
from openclaw_tw.web import hook_mappings
from openclaw_tw.web.http import (
    NOT_FOUND,
    HttpError,
    client_ip,
    header,
    json_body,
    method_not_allowed,
    parse_json_object,
    read_body,
    text_error,
)
from openclaw_tw.web.openai_compat import agent_ids

_log = Logger(namespace="gateway/hooks")

if TYPE_CHECKING:
    from openclaw_tw.app import Components

MAX_BODY_BYTES = 256 * 1024
WINDOW_S = 60.0
MAX_FAILURES = 20
MAX_TRACKED = 10_000
MAX_PENDING = 20
QUERY_TOKEN = ("Hook token must be provided via Authorization: Bearer <token> or "
               "X-OpenClaw-Token header (query parameters are not allowed).")
WAKE_MODES = ("now", "next-heartbeat")
SESSION_MODES = ("isolated", "persistent")


def hook_error(status: int, message: str) -> HttpError:
    return HttpError(status, {"ok": False, "error": message})


class FailureWindow:
    """Failed hook-token attempts per address in a sliding window."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, ip: str) -> deque[float]:
        q = self.failures.get(ip, deque())
        cutoff = self.clock.seconds() - WINDOW_S
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            self.failures.pop(ip, None)
        return q

    def retry_after_s(self, ip: str) -> int | None:
        q = self._recent(ip)
        if len(q) < MAX_FAILURES:
            return None
        return max(1, int(q[-MAX_FAILURES] + WINDOW_S - self.clock.seconds() + 0.999))

    def record(self, ip: str) -> None:
        q = self._recent(ip)
        if not q:
            if len(self.failures) >= MAX_TRACKED:
                self.failures.pop(next(iter(self.failures)))
            q = self.failures.setdefault(ip, deque())
        q.append(self.clock.seconds())


class Hooks:
    def __init__(self, app: Components) -> None:
        self.app = app
        self.gw = gw = app.hub
        self.failures = FailureWindow(gw.clock)
        # wake events wait in the heartbeat's queue, which drains them on its next run
        self.pending = app.heartbeat.hook_events

    @property
    def base(self) -> bytes | None:
        """The hooks path when hooks are served, else ``None`` (the path falls through)."""
        s = self.gw.settings
        return s.hooks_path.encode("utf-8") if s.hooks_enabled and s.hooks_token else None

    def matches(self, path: bytes) -> bool:
        base = self.base
        return base is not None and (path == base or path.startswith(base + b"/"))

    async def handle(self, request: Request) -> bytes:
        query = request.uri.split(b"?", 1)[1] if b"?" in request.uri else b""
        if "token" in parse_qs(query.decode("latin-1"), keep_blank_values=True):
            raise text_error(400, QUERY_TOKEN)
        if request.method != b"POST":
            raise method_not_allowed("POST")
        self.authorize(request)
        base = self.base or b""
        action = request.path[len(base) + 1:]
        if action not in (b"wake", b"agent"):
            return await self.mapped(request, action.decode("utf-8", "replace").strip("/"))
        body = parse_json_object(
            read_body(request, MAX_BODY_BYTES, hook_error(413, "payload too large")),
            lambda message: hook_error(400, message))
        if action == b"wake":
            return json_body(request, 200, self.wake(body))
        return json_body(request, 200, await self.agent(body, direct=True))

    async def mapped(self, request: Request, sub_path: str) -> bytes:
        """``/hooks/<name>``: the first matching ``hooks.mappings`` entry decides."""
        mappings = hook_mappings.mappings_of(self.gw.settings.raw)
        if not sub_path or not mappings:
            raise text_error(404, NOT_FOUND)
        body = parse_json_object(
            read_body(request, MAX_BODY_BYTES, hook_error(413, "payload too large")),
            lambda message: hook_error(400, message))
        found = hook_mappings.find(mappings, sub_path, body)
        if found is None:
            raise text_error(404, NOT_FOUND)
        headers = {k.decode("latin-1").lower(): v[0].decode("latin-1")
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        headers.pop("authorization", None)
        headers.pop("x-openclaw-token", None)
        query = {k: v[0] for k, v in parse_qs(
            (request.uri.split(b"?", 1)[1] if b"?" in request.uri else b"").decode("latin-1")
        ).items()}
        try:
            todo = hook_mappings.actions(found[0], found[1], sub_path, body, headers, query)
        except hook_mappings.MappingError as e:
            _log.warn("hook mapping {path} failed: {why}", path=sub_path, why=str(e))
            raise hook_error(500, "hook mapping failed") from None
        if not todo:
            request.setResponseCode(204)
            return b""
        results = []
        for act in todo:
            if act["kind"] == "wake":
                results.append(self.wake({"text": act["text"], "mode": act["mode"],
                                          **({"agentId": act["agentId"]}
                                             if act.get("agentId") else {})}))
            else:
                fields = {k: v for k, v in act.items() if k not in ("kind", "mappingId")
                          and v is not None}
                results.append(await self.agent(fields, trusted_key=True))
        if len(results) == 1:
            return json_body(request, 200, results[0])
        return json_body(request, 200, {"ok": True, "count": len(results),
                                        "results": results})

    def authorize(self, request: Request) -> None:
        ip = client_ip(request, self.gw)
        retry = self.failures.retry_after_s(ip)
        if retry is not None:
            raise text_error(429, "Too Many Requests", {"Retry-After": str(retry)})
        auth = header(request, "authorization") or ""
        offered = auth[7:].strip() if auth[:7].lower() == "bearer " else \
            header(request, "x-openclaw-token") or ""
        token = (self.gw.settings.hooks_token or "").encode("utf-8")
        if not token or not hmac.compare_digest(offered.encode("utf-8"), token):
            self.failures.record(ip)
            raise text_error(401, "Unauthorized")

    def agent_id(self, body: dict[str, Any]) -> str:
        raw = body.get("agentId")
        if raw is None:
            return "main"
        agent = raw.strip().lower() if isinstance(raw, str) else ""
        if agent not in agent_ids(self.gw):
            raise hook_error(400, f"unknown agentId: {clip(str(raw))}")
        return agent

    # -- wake ----------------------------------------------------------------------------------

    def wake(self, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise hook_error(400, "text required")
        mode = body.get("mode", "now")
        if mode not in WAKE_MODES:
            raise hook_error(400, "mode must be now or next-heartbeat")
        agent = self.agent_id(body)
        raw_key = body.get("sessionKey")
        key = resolve_key(raw_key, agent_id=agent) if isinstance(raw_key, str) and raw_key \
            else main_key(agent)
        slot = (key, text.strip())
        if slot in self.pending:
            return {"ok": True, "mode": mode, "eventOutcome": "coalesced"}
        self.pending[slot] = {"sessionKey": key, "text": text.strip(), "mode": mode,
                              "ts": self.gw.now_ms()}
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        self.gw.presence.add_event({"text": text.strip(), "reason": "hook:wake",
                                    "mode": "hook"})
        self.gw.broadcast_presence()
        if mode == "now":
            self.app.heartbeat.request_wake(agent, "hook:wake")
        return {"ok": True, "mode": mode, "eventOutcome": "queued"}

    # -- agent ---------------------------------------------------------------------------------

    async def agent(self, body: dict[str, Any], trusted_key: bool = False,
                    direct: bool = False) -> dict[str, Any]:
        gw = self.gw
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise hook_error(400, "message required")
        mode = body.get("sessionMode", "isolated")
        if mode not in SESSION_MODES:
            raise hook_error(400, "sessionMode must be isolated or persistent")
        wait = body.get("waitForCompletion", False)
        if not isinstance(wait, bool):
            raise hook_error(400, "waitForCompletion must be boolean")
        wait = wait and direct  # mappings and fan-out stay admission-only, as documented
        agent = self.agent_id(body)
        key = self.session_key(body, agent, trusted_key, mode)
        model = body.get("model")
        if model is not None:
            try:
                if not isinstance(model, str) or not self.app.runtime.registry.resolve(model)[1]:
                    raise ProviderError("invalid model")
            except ProviderError:
                raise hook_error(400, "invalid model") from None
        timeout = body.get("timeoutSeconds")
        if timeout is not None and (isinstance(timeout, bool) or
                                    not isinstance(timeout, int | float) or timeout <= 0):
            raise hook_error(400, "timeoutSeconds must be a positive number")
        idem = body.get("idempotencyKey")
        dedupe_key = f"hook:{idem}" if isinstance(idem, str) and idem else None
        seen = self.app.dedupe.get(dedupe_key) if dedupe_key else None
        if seen is not None and seen.payload:
            return await self._replay(seen.payload, wait)
        if gw.shutting_down or not self.app.runtime.running:
            raise hook_error(503, "gateway is shutting down")
        run_id = str(uuid.uuid4())
        if dedupe_key:
            self.app.dedupe.start(dedupe_key).payload = {"runId": run_id}
        row = await self.app.sessions.ensure(key, "hook")
        try:
            run = await self.app.runtime.accept(row, message, run_id, "agent", None,
                                               float(timeout) if timeout else None, model)
        except TooManyRuns as e:
            if dedupe_key:
                self.app.dedupe.forget(dedupe_key)
            raise hook_error(429, e.message) from None
        except Exception:
            if dedupe_key:
                self.app.dedupe.settle(dedupe_key, False, None, {"message": "not started"})
            raise
        if dedupe_key:
            run.finished().addCallback(lambda o: self.app.dedupe.settle(
                dedupe_key, o.status == "ok", {"runId": run_id, "completion": completion(o)}))
        if wait:
            return {"ok": True, "runId": run_id, "completion": completion(
                await run.finished())}
        return {"ok": True, "runId": run_id}

    async def _replay(self, payload: dict[str, Any], wait: bool) -> dict[str, Any]:
        """The same key again: the same run; a waiting caller shares its completion."""
        out = {"ok": True, "runId": payload["runId"]}
        if not wait:
            return out
        if "completion" in payload:
            return {**out, "completion": payload["completion"]}
        run = self.app.runtime.runs.get(payload["runId"])
        if run is None:
            return out  # its outcome is gone with the run: unknown, not invented
        return {**out, "completion": completion(await run.finished())}

    def session_key(self, body: dict[str, Any], agent: str, trusted: bool = False,
                    mode: str = "isolated") -> str:
        """Where the run goes.  ``isolated`` (the default): a fresh ``hook:<uuid>`` session
        every time -- a given key is still checked, but, as in the real gateway, the run does
        not see that session's history; ``persistent``: the given key's own session, which
        needs a key, ``hooks.allowRequestSessionKey`` (unless a mapping gives it) and, when
        ``hooks.allowedSessionKeyPrefixes`` is set, a key under one of them."""
        raw = body.get("sessionKey")
        fresh = f"agent:{agent}:hook:{uuid.uuid4()}"
        if raw is None or raw == "":
            if mode == "persistent":
                raise hook_error(400, "sessionKey is required when sessionMode is persistent")
            return fresh
        if not trusted and not self.gw.settings.hooks_allow_request_session_key:
            raise hook_error(400, "sessionKey is not accepted from hook requests "
                                  "(set hooks.allowRequestSessionKey: true to allow it)")
        if not isinstance(raw, str):
            raise hook_error(400, "sessionKey must be a string")
        key = resolve_key(raw, agent_id=agent)
        if is_reserved(raw) or is_reserved(rest_of(key)):
            raise hook_error(400, "sessionKey cannot use reserved internal session namespaces")
        prefixes = allowed_prefixes(self.gw.settings.raw)
        if prefixes and not trusted and not any(raw.startswith(p) or rest_of(key).startswith(p)
                                                for p in prefixes):
            raise hook_error(400, "sessionKey must start with one of: " + ", ".join(prefixes))
        return key if mode == "persistent" else fresh


def allowed_prefixes(raw: Any) -> list[str]:
    hooks = raw.get("hooks") if isinstance(raw, dict) else None
    given = hooks.get("allowedSessionKeyPrefixes") if isinstance(hooks, dict) else None
    return [p for p in given if isinstance(p, str) and p] if isinstance(given, list) else []


def completion(outcome: Any) -> dict[str, Any]:
    """``waitForCompletion``'s terminal facts, never the reply itself: the status, whether a
    visible reply existed, and delivery facts -- a hook run is announced nowhere here, so
    nothing was attempted (what the real gateway answers without a destination)."""
    text = (outcome.text or "").strip()
    disposition = "empty" if not text else "silent" if text.upper() in ACK_TOKENS \
        else "visible"
    return {"status": "ok" if outcome.status == "ok" else "error",
            "replyDisposition": disposition, "delivered": False, "deliveryAttempted": False}
