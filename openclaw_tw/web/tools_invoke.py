"""``POST /tools/invoke`` (§11.4): invoke one agent tool over HTTP.

The policy is the reference's: a default HTTP deny list (``DEFAULT_DENY``), extended by
``gateway.tools.deny`` and relaxed by ``gateway.tools.allow``.  A tool that is denied, or that
this gateway does not have, is "not available" (404).  No agent tools are implemented yet, so
``TOOLS`` is empty and every name answers 404; a tool added there is invoked as
``tool(args, context) -> Deferred[{"content": [...], "details": {...}}]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.web.server import Request

from openclaw_tw import _json
from openclaw_tw.errors import clip
from openclaw_tw.sessions.keys import resolve_key
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import (
    HttpError,
    header,
    json_body,
    method_not_allowed,
    parse_json_object,
    read_body,
)

if TYPE_CHECKING:
    from openclaw_tw.app import Components

MAX_BODY_BYTES = 2 * 1024 * 1024
DEFAULT_DENY = frozenset({"exec", "spawn", "shell", "fs_write", "fs_delete", "fs_move",
                          "apply_patch", "sessions_spawn", "sessions_send", "cron", "gateway",
                          "nodes"})
CONTEXT_HEADERS = ("x-openclaw-message-channel", "x-openclaw-account-id",
                   "x-openclaw-message-to", "x-openclaw-thread-id")
Tool = Callable[[dict[str, Any], dict[str, Any]], Any]
TOOLS: Mapping[str, Tool] = {}


def tool_error(status: int, type_: str, message: str) -> HttpError:
    return HttpError(status, {"ok": False, "error": {"type": type_, "message": message}})


def invalid(message: str) -> HttpError:
    return tool_error(400, "invalid_request", message)


def internal_error() -> HttpError:
    return tool_error(500, "internal_error", "internal error")


def allowed(name: str, allow: tuple[str, ...], deny: tuple[str, ...]) -> bool:
    """Denied by ``deny`` always; by the default HTTP deny list unless in ``allow``."""
    if name in deny or "*" in deny:
        return False
    return name not in DEFAULT_DENY or name in allow


class ToolsInvoke:
    def __init__(self, app: Components, tools: Mapping[str, Tool] | None = None) -> None:
        self.app = app
        self.gw = app.hub
        self.tools = TOOLS if tools is None else tools

    def builtin(self, name: str) -> Tool | None:
        """Tools the gateway itself provides: ``exec`` when ``tools.exec.enabled`` (it is on
        the default HTTP deny list, so it also needs ``gateway.tools.allow``).  The exec tool
        applies the approval policy, so an ``ask`` policy holds the request for a human."""
        runtime = self.app.runtime
        exec_tool = getattr(runtime, "exec_tool", None)
        if name != "exec" or exec_tool is None:
            return None

        async def run_exec(args: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
            agent = context.get("agentId") or "main"
            key = resolve_key(str(context.get("sessionKey") or "main"), agent_id=agent)
            output = await exec_tool(args, agent, key)
            return {"content": [{"type": "text", "text": output}], "details": _json.loads(output)}

        return run_exec

    async def handle(self, request: Request) -> bytes:
        if request.method != b"POST":
            raise method_not_allowed("POST")
        await require_bearer(request, self.gw)
        body = parse_json_object(
            read_body(request, MAX_BODY_BYTES,
                      tool_error(413, "payload_too_large", "Payload too large")), invalid)
        name = body.get("tool", body.get("name"))
        if not isinstance(name, str) or not name.strip():
            raise invalid("`tool` (or `name`) is required.")
        name = name.strip()
        args = body.get("args", {})
        if not isinstance(args, dict):
            raise invalid("`args` must be an object.")
        settings = self.gw.settings
        tool = self.tools.get(name) or self.builtin(name)
        if tool is None or not allowed(name, settings.tools_allow, settings.tools_deny):
            raise tool_error(404, "not_found", f"Tool not available: {clip(name)}")
        context = {"sessionKey": body.get("sessionKey") or "main",
                   "agentId": body.get("agentId"), "action": body.get("action"),
                   "dryRun": body.get("dryRun") is True,
                   "idempotencyKey": body.get("idempotencyKey"),
                   **{h: header(request, h) for h in CONTEXT_HEADERS}}
        result = await tool(args, context)
        return json_body(request, 200, {"ok": True, "result": result})
