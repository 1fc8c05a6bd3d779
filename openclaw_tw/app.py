"""The composition root: every component of the gateway, built once, in dependency order.

``build(settings, reactor)`` returns ``Components``, a frozen record with one typed field per
component; nothing is attached later and nothing is looked up by name. ``tap.makeService``
only adds the services among them to the service tree, in start order; tests build the same
record on a ``MemoryReactorClock`` (SQLite and blocking work then run inline).

The order, and the one back-edge: settings -> model registry -> the hub (which needs the
models only to tell hello-ok whether a real one is configured) -> device store and authority
(the authority announces pairing through the hub's broadcast, so it is handed to the hub once
both exist) -> sessions and the agent runtime -> nodes.sqlite's owners (node registry, exec
approvals, DM pairing, provider cursors, the channel ingress queue) -> channels -> automation
(heartbeat, cron, boot) -> the method families, each given just the components it uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from twisted.logger import Logger

from openclaw_tw.agent.costs import CostUsage
from openclaw_tw.agent.dedupe import DedupeCache
from openclaw_tw.agent.exec_tool import ExecTool, exec_enabled
from openclaw_tw.agent.instrument import instrument
from openclaw_tw.agent.models import ModelRegistry, build_registry
from openclaw_tw.agent.offline import OfflineProvider
from openclaw_tw.agent.runtime import AgentRuntime
from openclaw_tw.agent.session_usage import SessionUsage
from openclaw_tw.approvals.grants import MIGRATION as GRANTS_MIGRATION
from openclaw_tw.approvals.grants import StandingGrants
from openclaw_tw.approvals.history import MIGRATION as APPROVAL_HISTORY_MIGRATION
from openclaw_tw.approvals.history import ApprovalHistory
from openclaw_tw.approvals.policyfile import PolicyFile
from openclaw_tw.approvals.service import ExecApprovals
from openclaw_tw.automation.boot import BootScript
from openclaw_tw.automation.delivery import Announcer
from openclaw_tw.automation.heartbeat import Heartbeat, heartbeat_summary
from openclaw_tw.automation.scheduler import Scheduler
from openclaw_tw.automation.store import MIGRATIONS as CRON_MIGRATIONS
from openclaw_tw.automation.store import CronStore, cron_db_path
from openclaw_tw.channels.accounts import configured_accounts
from openclaw_tw.channels.cursors import MIGRATION as CURSOR_MIGRATION
from openclaw_tw.channels.cursors import Cursors
from openclaw_tw.channels.ingress import MIGRATION as INGRESS_MIGRATION
from openclaw_tw.channels.ingress import Ingress
from openclaw_tw.channels.manager import ChannelContext, ChannelManager
from openclaw_tw.channels.pairing import MIGRATION as PAIRING_MIGRATION
from openclaw_tw.channels.pairing import DmPairing
from openclaw_tw.channels.providers import PROVIDERS
from openclaw_tw.channels.router import ChannelRouter
from openclaw_tw.config.reload import ConfigWatcher, Resolver
from openclaw_tw.config.settings import GatewaySettings
from openclaw_tw.daemon.logfile import JsonLinesFileObserver
from openclaw_tw.db import Database, Schema, adopt_legacy_file
from openclaw_tw.devices.authority import DeviceAuthority
from openclaw_tw.devices.store import MIGRATIONS as DEVICE_MIGRATIONS
from openclaw_tw.devices.store import DeviceStore, TokenKey
from openclaw_tw.hub import identity
from openclaw_tw.hub.gateway import EVENTS, LEGACY_SESSIONS_FILE, Gateway
from openclaw_tw.methods.absent_features import AbsentFeaturesMethods
from openclaw_tw.methods.agents import AgentsMethods, cli_projection, configured_agents
from openclaw_tw.methods.approval_history import ApprovalHistoryMethods
from openclaw_tw.methods.approvals import ApprovalsMethods
from openclaw_tw.methods.channels import ChannelsMethods
from openclaw_tw.methods.chat import ChatMethods
from openclaw_tw.methods.chat_startup import ChatStartupMethods
from openclaw_tw.methods.config import ConfigMethods
from openclaw_tw.methods.cron import CronMethods
from openclaw_tw.methods.devices import DevicesMethods
from openclaw_tw.methods.diagnostics import DiagnosticsMethods
from openclaw_tw.methods.doctor import DoctorMethods
from openclaw_tw.methods.environments import EnvironmentsMethods
from openclaw_tw.methods.logs import LogsMethods
from openclaw_tw.methods.models import ModelsMethods
from openclaw_tw.methods.node_approvals import NodeApprovalsMethods
from openclaw_tw.methods.nodes import NodesMethods
from openclaw_tw.methods.plugins import PluginsMethods
from openclaw_tw.methods.projects import ProjectsMethods
from openclaw_tw.methods.session_branches import SessionBranchesMethods
from openclaw_tw.methods.session_groups import SessionGroupsMethods
from openclaw_tw.methods.session_messages import SessionMessagesMethods
from openclaw_tw.methods.session_search import SessionSearchMethods
from openclaw_tw.methods.session_usage import SessionUsageMethods
from openclaw_tw.methods.sessions import SessionsMethods
from openclaw_tw.methods.shell import ShellMethods
from openclaw_tw.methods.skills import SkillsMethods
from openclaw_tw.methods.system import SystemMethods
from openclaw_tw.methods.usage import UsageMethods
from openclaw_tw.nodes.registry import NodeRegistry
from openclaw_tw.nodes.store import MIGRATIONS as NODE_MIGRATIONS
from openclaw_tw.nodes.store import NodeStore, nodes_db_path
from openclaw_tw.observe import state as metrics_state
from openclaw_tw.observe.metrics import Metrics, NullMetrics
from openclaw_tw.protocol.dispatch import MethodTable
from openclaw_tw.sessions.groups import SessionGroups
from openclaw_tw.sessions.keys import normalize_agent_id
from openclaw_tw.sessions.store import MIGRATIONS as SESSION_MIGRATIONS
from openclaw_tw.sessions.store import SessionStore

_log = Logger(namespace="gateway")

DEVICES_FILE_SCHEMA = Schema.single("devices", DEVICE_MIGRATIONS)
SESSIONS_FILE_SCHEMA = Schema.single("sessions", SESSION_MIGRATIONS)
CRON_FILE_SCHEMA = Schema.single("cron", CRON_MIGRATIONS)
# nodes.sqlite holds four owners' tables; each keeps its own migration list and version.
# Files written before per-owner versions counted the lists in this order.
NODES_FILE_SCHEMA = Schema(
    {"nodes": NODE_MIGRATIONS, "channel-pairing": [PAIRING_MIGRATION],
     "channel-cursors": [CURSOR_MIGRATION], "channel-ingress": [INGRESS_MIGRATION],
     "approval-history": [APPROVAL_HISTORY_MIGRATION], "exec-grants": [GRANTS_MIGRATION]},
    legacy=[("nodes", 1), ("channel-pairing", 1), ("channel-cursors", 1),
            ("channel-ingress", 1)])


DEVICES_FILE = "openclaw_tw-devices.sqlite"
DEVICE_TABLES = frozenset({"devices", "pending", "tokens"})
SESSION_TABLES = frozenset({"sessions", "transcript", "sessions_v3"})


def adopt(old: Any, new: Any, ours: frozenset[str]) -> None:
    """Our databases used to sit at the real gateway's paths; move ours, leave theirs."""
    outcome = adopt_legacy_file(old, new, ours)
    if outcome == "moved":
        _log.info("moved {old} to {new} (the real OpenClaw CLI reads the old path)",
                  old=str(old), new=str(new))
    elif outcome == "foreign":
        _log.info("{old} is not ours (a real OpenClaw gateway's?): left alone; openclaw_tw "
                  "keeps its state in {new}", old=str(old), new=str(new))


@attrs.frozen
class Components:
    """Every component of one gateway, complete once ``build`` returns."""

    settings: GatewaySettings  # as started; the hub holds the reloaded ones
    reactor: Any
    table: MethodTable
    hub: Gateway
    models: ModelRegistry
    devices_db: Database
    device_store: DeviceStore
    authority: DeviceAuthority
    sessions_db: Database
    sessions: SessionStore
    runtime: AgentRuntime
    dedupe: DedupeCache
    nodes_db: Database
    node_store: NodeStore
    nodes: NodeRegistry
    approvals: ExecApprovals
    exec_policy: PolicyFile
    grants: StandingGrants
    dm_pairing: DmPairing
    cursors: Cursors
    ingress: Ingress
    channels: ChannelManager
    cron_db: Database
    heartbeat: Heartbeat
    cron: Scheduler
    boot: BootScript
    config_watcher: ConfigWatcher | None
    metrics: Metrics | NullMetrics

    @property
    def databases(self) -> list[tuple[str, Database]]:
        """(service name, database) of the files the service tree closes last; cron.sqlite
        belongs to the scheduler, which closes it when it stops."""
        return [("database", self.devices_db), ("sessions-database", self.sessions_db),
                ("nodes-database", self.nodes_db)]


def build(settings: GatewaySettings, reactor: Any,
          log_observer: JsonLinesFileObserver | None = None,
          run_blocking: Callable[..., Any] | None = None,
          config_resolver: Resolver | None = None,
          env: Mapping[str, str] | None = None) -> Components:
    """Build every component. Without ``run_blocking`` (tests), blocking work and SQLite run
    inline; without ``config_resolver`` there is no config watcher (nor SIGHUP)."""
    inline = run_blocking is None
    env = os.environ if env is None else env
    raw = dict(settings.raw)
    table = MethodTable()

    def database(path: Any, schema: Schema) -> Database:
        db = Database(path, schema, reactor, inline=inline)
        db.open()
        return db

    models = build_registry(settings.raw, openai_maker(reactor), OfflineProvider(reactor))
    hub_options: dict[str, Any] = {}
    if run_blocking is not None:
        hub_options["run_blocking"] = run_blocking
    if log_observer is not None:
        hub_options["log_file"] = log_observer.current_file
    # One registry per app (tests stay isolated); method labels only from this table.
    metrics: Metrics | NullMetrics = NullMetrics() if settings.metrics == "off" else \
        Metrics(table.names(), EVENTS, run_blocking)  # a live view: families added below
    hub = Gateway(reactor, settings, identity.load_or_create(settings.state_dir), table,
                  models=models, metrics=metrics, **hub_options)
    instrument(models, hub.diagnostics, reactor)  # model calls -> diagnostics.stability
    if isinstance(metrics, Metrics):
        hub.diagnostics.listeners.append(metrics.record)  # model calls, channel deliveries

    devices_path = settings.state_dir / "state" / DEVICES_FILE
    adopt(settings.state_dir / "state" / "openclaw.sqlite", devices_path, DEVICE_TABLES)
    adopt(hub.sessions_path().with_name(LEGACY_SESSIONS_FILE), hub.sessions_path(),
          SESSION_TABLES)
    devices_db = database(devices_path, DEVICES_FILE_SCHEMA)
    device_store = DeviceStore(devices_db, TokenKey.load_or_create(settings.state_dir),
                               clock=reactor)
    devices_db.before_close.append(device_store.close)
    device_store.load()
    authority = DeviceAuthority(device_store, hub.now_ms, hub.broadcast,
                                auto_approve_local=settings.auto_approve_local)
    hub.devices = authority

    sessions_db = database(hub.sessions_path(), SESSIONS_FILE_SCHEMA)
    sessions = SessionStore(sessions_db, hub.now_ms)
    sessions.load()
    if sessions.interrupted_at_start:
        _log.warn("{n} run(s) were interrupted by the last stop; marked in their transcripts",
                  n=len(sessions.interrupted_at_start))
    runtime = AgentRuntime(hub, sessions, models)
    dedupe = DedupeCache(reactor)
    hub.health.sessions_summary = lambda: sessions_summary(sessions, hub)
    hub.health.heartbeat_summary = lambda: heartbeat_summary(dict(hub.settings.raw), "main")
    hub.health.refresh()  # the first snapshot (hello-ok's) from the store and config, not defaults

    nodes_db = database(nodes_db_path(settings.state_dir), NODES_FILE_SCHEMA)
    node_store = NodeStore(nodes_db)
    pending_approvals = node_store.load()
    nodes = NodeRegistry(hub, node_store, device_store)
    approval_history = ApprovalHistory(nodes_db, hub.now_ms)  # approval.history's store
    approval_history.load()
    approvals = ExecApprovals(hub, node_store, approval_history)
    restored = approvals.restore(pending_approvals)
    if restored:
        _log.info("restored {n} pending exec approval(s)", n=restored)
    exec_policy = PolicyFile(settings.state_dir, hub.display_path)
    grants = StandingGrants(nodes_db, hub.now_ms)  # "Always allow" on automations' execs
    grants.load()
    dm_pairing = DmPairing(nodes_db, hub.now_ms)
    dm_pairing.load()
    cursors = Cursors(nodes_db)
    cursors.load()
    ingress = Ingress(nodes_db)
    ingress.load()
    router = ChannelRouter(hub, runtime, sessions, dm_pairing)
    channels = ChannelManager(ChannelContext(hub, router, ingress, cursors), PROVIDERS)

    cron_db = database(cron_db_path(settings.state_dir), CRON_FILE_SCHEMA)
    cron_cfg = raw.get("cron") if isinstance(raw.get("cron"), dict) else {}
    agents = configured_agents(raw)
    announcer = Announcer(channels, lambda: configured_accounts(hub.settings.raw), reactor)
    heartbeat = Heartbeat(hub, runtime, sessions, announcer=announcer)
    cron = Scheduler(hub, runtime, sessions, CronStore(cron_db), heartbeat,
                     [normalize_agent_id(a["id"]) for a in agents],
                     enabled=cron_cfg.get("enabled") is not False and
                     env.get("OPENCLAW_SKIP_CRON") != "1",
                     skip_missed=cron_cfg.get("skipMissedJobs") is True,
                     announcer=announcer)
    cron.load()
    if cron.interrupted:
        _log.warn("{n} cron run(s) were interrupted by the last stop; not replayed",
                  n=len(cron.interrupted))
    if exec_enabled(raw):
        runtime.exec_tool = make_exec_tool(reactor, hub, approvals, nodes, exec_policy, grants,
                                           cron)
    boot = BootScript(hub, runtime, sessions, agents)
    watcher = None
    if config_resolver is not None:
        watcher = ConfigWatcher(hub, config_resolver, install_sighup=True)
        watcher.setName("config-reload")

    app = Components(
        settings=settings, reactor=reactor, table=table, hub=hub, models=models,
        devices_db=devices_db, device_store=device_store, authority=authority,
        sessions_db=sessions_db, sessions=sessions, runtime=runtime, dedupe=dedupe,
        nodes_db=nodes_db, node_store=node_store, nodes=nodes, approvals=approvals,
        exec_policy=exec_policy, grants=grants, dm_pairing=dm_pairing, cursors=cursors,
        ingress=ingress,
        channels=channels, cron_db=cron_db, heartbeat=heartbeat, cron=cron, boot=boot,
        config_watcher=watcher, metrics=metrics)
    add_method_families(app)
    if isinstance(metrics, Metrics):
        metrics_state.register(metrics, app)  # scrape-time gauges
    return app


def add_method_families(app: Components) -> None:
    """Each family gets the components it uses, nothing more."""
    hub, table = app.hub, app.table
    # Read per call: hot reload replaces hub.settings; tests swap hub.run_blocking.
    settings = lambda: hub.settings  # noqa: E731
    run_blocking = lambda *a: hub.run_blocking(*a)  # noqa: E731
    table.add_family(SystemMethods(
        hub.health, hub.presence, hub.broadcast_presence, hub.identity,
        heartbeat=app.heartbeat,
        heartbeats_enabled=lambda: hub.heartbeats_enabled,
        set_heartbeats_enabled=lambda on: setattr(hub, "heartbeats_enabled", on),
        last_heartbeat=lambda: hub.last_heartbeat,
        sessions_path=lambda: hub.display_path(hub.sessions_path()),
        inflight=lambda: hub.inflight,
        sessions_summary=lambda: sessions_summary(app.sessions, hub),
        cli_projection=lambda: cli_projection(hub.settings.raw)))
    table.add_family(LogsMethods(hub.log_file, run_blocking))
    table.add_family(DevicesMethods(app.device_store, hub.now_ms, hub.broadcast,
                                    lambda: hub.conns.values(), hub.disconnect_device))
    table.add_family(ConfigMethods(settings, app.config_watcher, hub.display_path,
                                   hub.now_ms, hub.broadcast))
    chat_methods = ChatMethods(app.runtime, app.sessions, app.dedupe, hub.now_ms)
    table.add_family(chat_methods)
    session_methods = SessionsMethods(
        app.runtime, app.sessions, hub.broadcast, hub.now_ms, settings, run_blocking,
        hub.display_path, hub.sessions_path())
    app.runtime.on_session_changed = session_methods.session_changed
    table.add_family(session_methods)
    add_session_families(app, chat_methods, session_methods)
    config_raw = lambda: hub.settings.raw  # noqa: E731
    table.add_family(AgentsMethods(
        config_raw, hub.display_path(hub.settings.state_dir / "workspace"), app.models))
    table.add_family(UsageMethods(CostUsage(app.sessions_db, app.models, hub.now_ms),
                                  hub.now_ms))
    table.add_family(DiagnosticsMethods(hub.diagnostics))
    table.add_family(DoctorMethods(config_raw))
    table.add_family(NodesMethods(app.nodes, hub.now_ms, hub.clock, hub.broadcast))
    table.add_family(NodeApprovalsMethods(app.nodes))  # after NodesMethods: its invoker
    table.add_family(ChannelsMethods(
        settings, app.channels, app.dm_pairing, app.dedupe, hub.now_ms, hub.clock,
        hub.health.lag.snapshot))
    table.add_family(ApprovalsMethods(app.approvals, app.exec_policy))
    table.add_family(CronMethods(app.cron, hub.now_ms, hub.display_path, hub.boot_id))
    add_shell_families(app)


def add_shell_families(app: Components) -> None:
    """What the Control UI's app shell and Settings pages read beyond the families above: the
    host (system.info), updates, preferences, themes, plugins, skills, environments, the
    approvals history -- real where we have the feature, truthfully empty where we do not."""
    hub, table = app.hub, app.table
    settings = lambda: hub.settings  # noqa: E731
    table.add_family(ShellMethods(settings, hub.uptime_ms, hub.health.lag.snapshot,
                                  hub.boot_id))
    table.add_family(PluginsMethods())
    table.add_family(SkillsMethods(
        lambda: hub.settings.raw, hub.display_path(hub.settings.state_dir / "workspace"),
        hub.display_path(hub.settings.state_dir / "skills"),
        hub.display_path(hub.settings.state_dir / "hooks")))
    table.add_family(EnvironmentsMethods(settings, app.nodes))
    assert app.approvals.history is not None
    table.add_family(ApprovalHistoryMethods(
        app.approvals.history, lambda: hub.settings.control_ui_base_path, app.grants))


def add_session_families(app: Components, chat: ChatMethods,
                         sessions: SessionsMethods) -> None:
    """What the Control UI's chat and sessions views read beyond chat.* and sessions.*: the
    chat view's start-up, live transcripts (``session.message``), branches, groups, usage,
    projects, and the features this gateway lacks (answered truthfully empty)."""
    hub, table = app.hub, app.table
    # chat.metadata lists the models.list rows
    models = ModelsMethods(lambda: hub.settings.raw, app.models, hub.now_ms)
    table.add_family(models)
    messages = SessionMessagesMethods(app.runtime, hub.broadcast, hub.now_ms)
    app.sessions.appended.append(messages.appended)
    table.add_family(messages)
    table.add_family(ChatStartupMethods(
        chat, app.runtime, app.sessions, lambda: models.models_list(None, {})["models"],
        lambda: {normalize_agent_id(a["id"]) for a in configured_agents(hub.settings.raw)}))
    table.add_family(SessionBranchesMethods(app.sessions))
    table.add_family(SessionSearchMethods(app.sessions_db, app.sessions.get_many,
                                          sessions.public))
    groups = SessionGroups(app.sessions_db, app.sessions, hub.now_ms)  # the group catalog
    groups.load()
    table.add_family(SessionGroupsMethods(groups, hub.broadcast, hub.now_ms,
                                          sessions.session_changed))
    table.add_family(SessionUsageMethods(SessionUsage(
        app.sessions_db, CostUsage(app.sessions_db, app.models, hub.now_ms),
        app.sessions.get_many, sessions.public), hub.now_ms))
    table.add_family(ProjectsMethods(lambda: hub.settings.raw,
                                     hub.settings.state_dir / "workspace"))
    table.add_family(AbsentFeaturesMethods(lambda: hub.boot_id))


def make_exec_tool(reactor: Any, hub: Gateway, approvals: ExecApprovals, nodes: NodeRegistry,
                   policy: PolicyFile, grants: StandingGrants, cron: Scheduler) -> ExecTool:
    """The agent's exec tool (``tools.exec.enabled``), with the automations' standing grants."""

    def expiry_days() -> float | None:
        tools = hub.settings.raw.get("tools")
        spec = tools.get("exec") if isinstance(tools, dict) else None
        days = spec.get("grantExpiryDays") if isinstance(spec, dict) else None
        ok = isinstance(days, int | float) and not isinstance(days, bool) and 1 <= days <= 3650
        return float(days) if ok else None

    return ExecTool(reactor, approvals, nodes, policy, grants, cron.jobs.get, expiry_days)


def openai_maker(reactor: Any) -> Any:
    """Imported only when a provider is configured: the offline default needs no HTTP stack."""

    def make(provider_id: str, spec: Any) -> Any:
        from openclaw_tw.agent.openai import provider_factory

        return provider_factory(reactor)(provider_id, spec)

    return make


def sessions_summary(store: SessionStore, hub: Gateway) -> dict[str, Any]:
    """The rows stored and the five newest, which the store keeps as it writes."""
    now = hub.now_ms()
    return {"path": hub.display_path(hub.sessions_path()), "count": store.count,
            "recent": [{"key": key, "updatedAt": updated, "age": now - updated}
                       for key, updated in store.recent]}
