"""The boot script: run each agent workspace's ``BOOT.md`` once at start-up.

As the bundled ``boot-md`` hook does (``docs/automation/hooks/bundled-hooks.md#boot-md``,
``docs/reference/templates/BOOT.md``): a nonempty ``BOOT.md`` in an agent's workspace runs as
one agent turn in a fresh ``agent:<id>:boot:<run-id>`` session, deleted afterwards; a workspace
shared by several agents runs once, under the first; runs go one after another; a missing or
blank file is skipped; a failure is logged and recorded in ``results`` and never stops start-up.
The service is placed after the listeners, so it starts once the control plane serves.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from openclaw_tw.sessions.keys import normalize_agent_id

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import AgentRuntime
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.sessions.store import SessionStore

_log = Logger(namespace="boot")
BOOT_TIMEOUT_S = 600.0


def workspaces(gw: Gateway, agents: list[dict[str, Any]]) -> list[tuple[str, Path]]:
    default = gw.settings.state_dir / "workspace"
    seen: set[Path] = set()
    out: list[tuple[str, Path]] = []
    for spec in agents:
        raw = spec.get("workspace")
        path = Path(raw).expanduser() if isinstance(raw, str) and raw else default
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        out.append((normalize_agent_id(spec.get("id")), path))
    return out


class BootScript(Service):
    name = "boot"

    def __init__(self, gw: Gateway, runtime: AgentRuntime, sessions: SessionStore,
                 agents: list[dict[str, Any]]) -> None:
        self.gw = gw
        self.runtime = runtime
        self.sessions = sessions
        self.agents = agents
        self.results: dict[str, dict[str, Any]] = {}
        self.done: Any = None
        self._call: Any = None

    def startService(self) -> None:
        super().startService()
        self._call = self.gw.clock.callLater(0, self._start)

    def stopService(self) -> None:
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()

    def _start(self) -> None:
        self._call = None
        self.done = ensureDeferred(self.run_all()).addErrback(
            lambda f: _log.failure("boot script failed", f))

    async def run_all(self) -> None:
        for agent, workspace in workspaces(self.gw, self.agents):
            try:
                text = (workspace / "BOOT.md").read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not text.strip():
                continue
            self.results[agent] = await self.run_one(agent, text)

    async def run_one(self, agent: str, text: str) -> dict[str, Any]:
        gw = self.gw
        run_id = str(uuid.uuid4())
        key = f"agent:{agent}:boot:{run_id}"
        started = gw.now_ms()
        try:
            row = await self.sessions.ensure(key, "boot")
            run = await self.runtime.accept(row, text, f"boot-{run_id}", "agent", None,
                                          timeout_s=BOOT_TIMEOUT_S)
            outcome = await run.finished()
            status = "ok" if outcome.status == "ok" else "error"
            error = None if status == "ok" else (outcome.error or outcome.stop_reason)
        except Exception as e:  # noqa: BLE001 - a failed boot turn never blocks start-up
            status, error = "error", str(e) or type(e).__name__
        result: dict[str, Any] = {"status": status, "ts": started,
                                  "durationMs": gw.now_ms() - started}
        if error:
            result["error"] = error
            _log.warn("BOOT.md for agent {agent} failed: {error}", agent=agent, error=error)
        else:
            _log.info("BOOT.md for agent {agent} ran", agent=agent)
        try:
            await self.sessions.delete(key)
        except Exception:  # noqa: BLE001
            _log.failure("could not clean up boot session {key}", key=key)
        return result
