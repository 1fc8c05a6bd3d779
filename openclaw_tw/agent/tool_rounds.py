"""The tool rounds of a turn: tool events to the run's origin, the tools offered to a
provider, and running the model's calls of our own tools (the exec tool) between model calls.
A part of ``AgentRuntime`` (a mixin: it uses the runtime's store, hub and event helpers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openclaw_tw import _json
from openclaw_tw.agent.exec_tool import EXEC_TOOL, TOOL_NAME
from openclaw_tw.agent.models import ModelResult
from openclaw_tw.agent.run import Run
from openclaw_tw.protocol.frames import EncodedEvent

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.sessions.store import SessionStore


class ToolRounds:
    gw: Gateway
    store: SessionStore
    exec_tool: Any

    def _agent_payload(self, run: Run, stream: str, data: dict[str, Any], sid: bool = False,
                       bump: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def _tool(self, run: Run, data: dict[str, Any],
              calls: list[dict[str, Any]] | None = None) -> None:
        if calls is not None and data.get("phase") == "end":
            calls.append(data)
        origin = run.origin
        if origin is None or "tool-events" not in origin.caps:
            return
        run.seq += 1
        origin.deliver(EncodedEvent("agent", self._agent_payload(run, "tool", data)), True)

    def _tools_for(self, provider: Any) -> list[dict[str, Any]]:
        """Tools offered to this provider's models (only real models get the exec tool)."""
        if self.exec_tool is None or getattr(provider, "api", "") != "openai-completions":
            return []
        return [EXEC_TOOL]

    async def _run_tools(self, run: Run, calls: list[dict[str, Any]],
                         messages: list[dict[str, Any]], result: ModelResult) -> None:
        """Run the model's tool calls, record them, and extend the conversation with them."""
        messages.append({"role": "assistant", "content": result.text or None, "tool_calls": [
            {"id": c.get("toolCallId"), "type": "function",
             "function": {"name": c.get("name"), "arguments": c.get("arguments") or "{}"}}
            for c in calls]})
        for call in calls:
            args = call.get("args") if isinstance(call.get("args"), dict) else {}
            if call.get("name") == TOOL_NAME and self.exec_tool is not None:
                def streamed(chunk: str, call: dict[str, Any] = call) -> None:
                    self._tool(run, {"phase": "update", "toolCallId": call.get("toolCallId"),
                                     "name": call.get("name"), "partialResult": chunk})

                output = await self.exec_tool(args, run.row.agent_id, run.session_key,
                                              streamed)
            else:
                output = _json.dumps({"ok": False, "error":
                                      f"unknown tool {call.get('name')!r}"}).decode()
            body = {"role": "toolResult", "toolCallId": call.get("toolCallId"),
                    "toolName": call.get("name"), "arguments": args, "content": output,
                    "timestamp": self.gw.now_ms()}
            await self.store.append(run.row, "tool", body, run.run_id)
            self._tool(run, {"phase": "result", "toolCallId": call.get("toolCallId"),
                             "name": call.get("name"), "result": output})
            messages.append({"role": "tool", "tool_call_id": call.get("toolCallId"),
                             "content": output})
