"""Reloaded settings reach the components that were built from the config once.

Most of the gateway reads ``hub.settings`` per request, so a hot reload is in force as soon as
the watcher swaps it (``Gateway.apply_settings``).  The components built from the config at
start-up are brought up to date here, each from the new settings; the reload plan
(``config/document.py`` ``RELOAD_RULES``) may call a path ``hot`` only when this module (or a
per-request read) really applies it:

* ``models``, ``agents.defaults.model``: the model registry is rebuilt and swapped in place
  (every holder sees the new catalog and default; a turn already running keeps the provider it
  started with, whose HTTP client stays until that turn ends);
* ``agents.*.heartbeat``, ``agents.list``, ``cron.enabled``, ``cron.skipMissedJobs``: the
  scheduler's heartbeat jobs and switches (``Scheduler.reconfigure``);
* ``tools.exec.enabled``: the agent's exec tool is added or removed;
* ``gateway.nodes``: the node command policy; ``discovery.mdns.mode``: the advertisement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from openclaw_tw.agent.exec_tool import exec_enabled
from openclaw_tw.agent.instrument import instrument
from openclaw_tw.agent.models import OFFLINE_PROVIDER, build_registry
from openclaw_tw.app import make_exec_tool
from openclaw_tw.daemon import mdns
from openclaw_tw.methods.agents import configured_agents
from openclaw_tw.nodes.policy import CommandPolicy
from openclaw_tw.sessions.keys import normalize_agent_id

if TYPE_CHECKING:
    from openclaw_tw.app import Components
    from openclaw_tw.config.settings import GatewaySettings

_log = Logger(namespace="config.reload")


def apply_hot(app: Components, advertiser: Any, settings: GatewaySettings,
              env: Mapping[str, str], make_openai: Any) -> None:
    """Bring every component built from the config up to date with ``settings``."""
    raw = dict(settings.raw)
    app.nodes.policy = CommandPolicy(raw)
    advertiser.set_mode(mdns.mdns_mode(raw, env))
    reload_models(app, raw, make_openai)
    reload_exec_tool(app, raw)
    cron_cfg = raw.get("cron") if isinstance(raw.get("cron"), dict) else {}
    app.cron.reconfigure(
        [normalize_agent_id(a["id"]) for a in configured_agents(raw)],
        enabled=cron_cfg.get("enabled") is not False and env.get("OPENCLAW_SKIP_CRON") != "1",
        skip_missed=cron_cfg.get("skipMissedJobs") is True)


def reload_models(app: Components, raw: dict[str, Any], make_openai: Any) -> None:
    registry = app.models
    before = ([m.ref for m in registry.models], registry.primary)
    # The offline provider is kept as it is (already wrapped for diagnostics); the new
    # providers are wrapped once they belong to the shared registry.
    registry.replace_with(build_registry(raw, make_openai, registry.providers[OFFLINE_PROVIDER]))
    instrument(registry, app.hub.diagnostics, app.reactor)
    after = ([m.ref for m in registry.models], registry.primary)
    if after != before:
        _log.info("models reloaded: {n} model(s), default {primary}",
                  n=len(registry.models), primary=registry.primary)


def reload_exec_tool(app: Components, raw: dict[str, Any]) -> None:
    runtime = app.runtime
    wanted = exec_enabled(raw)
    if wanted and runtime.exec_tool is None:
        runtime.exec_tool = make_exec_tool(app.reactor, app.hub, app.approvals, app.nodes,
                                           app.exec_policy, app.grants, app.cron)
        _log.info("tools.exec enabled by a config reload")
    elif not wanted and runtime.exec_tool is not None:
        runtime.exec_tool = None
        _log.info("tools.exec disabled by a config reload")
