"""``twistd openclaw``: command-line options and ``makeService``, the composition root.

Start order: gateway hub (timers, presence, health) then the listener; stop runs in reverse,
so the port stops accepting before the hub sends ``shutdown`` and closes sockets with 1012.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, Service
from twisted.internet import threads
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.server import Site

from openclaw_tw.agent.dedupe import DedupeCache
from openclaw_tw.agent.exec_tool import ExecTool, exec_enabled
from openclaw_tw.agent.models import build_registry
from openclaw_tw.agent.offline import OfflineProvider
from openclaw_tw.agent.runtime import AgentRuntime
from openclaw_tw.approvals.policyfile import PolicyFile
from openclaw_tw.approvals.service import ExecApprovals
from openclaw_tw.automation.boot import BootScript
from openclaw_tw.automation.heartbeat import Heartbeat
from openclaw_tw.automation.scheduler import Scheduler
from openclaw_tw.automation.store import MIGRATIONS as CRON_MIGRATIONS
from openclaw_tw.automation.store import CronStore, cron_db_path
from openclaw_tw.channels.accounts import configured_accounts
from openclaw_tw.channels.cursors import MIGRATION as CURSOR_MIGRATION
from openclaw_tw.channels.cursors import Cursors
from openclaw_tw.channels.ingress import MIGRATION as INGRESS_MIGRATION
from openclaw_tw.channels.ingress import Ingress
from openclaw_tw.channels.manager import ChannelManager
from openclaw_tw.channels.pairing import MIGRATION as PAIRING_MIGRATION
from openclaw_tw.channels.pairing import DmPairing
from openclaw_tw.channels.providers import PROVIDERS
from openclaw_tw.channels.router import ChannelRouter
from openclaw_tw.config import document as configfile
from openclaw_tw.config import reload
from openclaw_tw.config import settings as config
from openclaw_tw.config.settings import BIND_MODES, ConfigError
from openclaw_tw.daemon import features, mdns, sdnotify, tls
from openclaw_tw.daemon.logfile import JsonLinesFileObserver, LogFileService, log_dir
from openclaw_tw.daemon.service import SequentialMultiService
from openclaw_tw.db import Database, Schema
from openclaw_tw.devices.authority import DeviceAuthority
from openclaw_tw.devices.store import MIGRATIONS as STORE_MIGRATIONS
from openclaw_tw.devices.store import DeviceStore, TokenKey
from openclaw_tw.hub import identity
from openclaw_tw.hub.gateway import Gateway
from openclaw_tw.methods import channels as channel_methods
from openclaw_tw.methods import chat, sessions
from openclaw_tw.methods.agents import AgentsMethods, configured_agents
from openclaw_tw.methods.approvals import ApprovalsMethods
from openclaw_tw.methods.config import ConfigMethods
from openclaw_tw.methods.cron import CronMethods
from openclaw_tw.methods.devices import DevicesMethods
from openclaw_tw.methods.logs import LogsMethods
from openclaw_tw.methods.nodes import NodesMethods
from openclaw_tw.methods.system import SystemMethods
from openclaw_tw.nodes.registry import NodeRegistry
from openclaw_tw.nodes.store import MIGRATIONS as NODE_MIGRATIONS
from openclaw_tw.nodes.store import NodeStore, nodes_db_path
from openclaw_tw.protocol.dispatch import MethodTable
from openclaw_tw.protocol.websocket import GatewayFactory
from openclaw_tw.sessions.keys import normalize_agent_id
from openclaw_tw.sessions.store import MIGRATIONS as SESSION_MIGRATIONS
from openclaw_tw.sessions.store import SessionStore
from openclaw_tw.web.http import CappedRequest
from openclaw_tw.web.root import GatewayRoot

_log = Logger(namespace="gateway")


class Options(usage.Options):
    optParameters = [
        ["port", "p", None, "Port to listen on (default 18789; env OPENCLAW_GATEWAY_PORT)."],
        ["bind", None, None, "Bind mode: loopback (default), lan, or custom (with --host)."],
        ["host", None, None, "Address to bind with --bind custom."],
        ["auth", None, None, "Auth mode: none, token (default) or password."],
        ["token", None, None, "Shared token (env OPENCLAW_GATEWAY_TOKEN)."],
        ["password", None, None, "Shared password (env OPENCLAW_GATEWAY_PASSWORD)."],
        ["config", "c", None, "Config file (env OPENCLAW_CONFIG_PATH; default "
                              "~/.openclaw/openclaw.json)."],
        ["state-dir", None, None, "State directory (env OPENCLAW_STATE_DIR; default ~/.openclaw)."],
    ]
    optFlags = [
        ["allow-unconfigured", None, "Accepted for compatibility with `openclaw gateway run`."],
        ["tls", None, "Serve wss:// and https:// (gateway.tls.enabled); a certificate is "
                      "generated in the state dir unless gateway.tls.certPath/keyPath are set."],
    ]

    def postOptions(self) -> None:
        if self["bind"] is not None and self["bind"] not in BIND_MODES:
            raise usage.UsageError(f"--bind must be one of {', '.join(BIND_MODES)}")
        if self["bind"] == "custom" and not self["host"]:
            raise usage.UsageError("--bind custom needs --host")


def build_gateway(settings: config.GatewaySettings, reactor: Any,
                  log_observer: JsonLinesFileObserver | None = None,
                  run_blocking: Any = None) -> Gateway:
    """The hub with its stores and every method family registered (also used by tests).

    Without ``run_blocking`` (tests), blocking work and SQLite run inline.
    """
    table = MethodTable()
    kwargs: dict[str, Any] = {}
    if run_blocking is not None:
        kwargs["run_blocking"] = run_blocking
    if log_observer is not None:
        kwargs["log_file"] = log_observer.current_file
    gw = Gateway(reactor, settings, identity.load_or_create(settings.state_dir), table, **kwargs)
    db = Database(settings.state_dir / "state" / "openclaw.sqlite", STORE_MIGRATIONS, reactor,
                  inline=run_blocking is None)
    db.open()
    gw.db = db
    store = DeviceStore(db, TokenKey.load_or_create(settings.state_dir), clock=reactor)
    db.before_close.append(store.close)
    store.load()
    authority = DeviceAuthority(store, gw.now_ms, gw.broadcast,
                                auto_approve_local=settings.auto_approve_local)
    gw.devices = authority

    sessions_db = Database(gw.sessions_path(), SESSION_MIGRATIONS, reactor,
                           inline=run_blocking is None)
    sessions_db.open()
    gw.sessions_db = sessions_db
    store = SessionStore(sessions_db, gw.now_ms)
    store.load()
    registry = build_registry(settings.raw, _openai_maker(reactor), OfflineProvider(reactor))
    runtime = AgentRuntime(gw, store, registry)
    gw.runtime, gw.sessions, gw.dedupe = runtime, store, DedupeCache(reactor)
    gw.health.sessions_summary = lambda: sessions_summary(store, gw)

    table.add_family(SystemMethods(
        gw.health, gw.presence, gw.broadcast_presence, gw.identity,
        heartbeat=lambda: getattr(gw, "heartbeat", None),  # wired in wire_automation
        heartbeats_enabled=lambda: gw.heartbeats_enabled,
        set_heartbeats_enabled=lambda on: setattr(gw, "heartbeats_enabled", on),
        last_heartbeat=lambda: gw.last_heartbeat,
        sessions_path=lambda: gw.display_path(gw.sessions_path()),
        inflight=lambda: gw.inflight))
    # run_blocking looked up per call: tests swap gw.run_blocking after the build.
    table.add_family(LogsMethods(gw.log_file, lambda *a: gw.run_blocking(*a)))
    table.add_family(DevicesMethods(authority.store, gw.now_ms, gw.broadcast,
                                    lambda: gw.conns.values(), gw.disconnect_device))
    table.add_family(ConfigMethods(lambda: gw.settings, lambda: gw.config_watcher,
                                   gw.display_path, gw.now_ms, gw.broadcast))
    table.add_family(chat.ChatMethods(runtime, store, gw.dedupe, gw.now_ms))
    session_methods = sessions.SessionsMethods(
        runtime, store, gw.broadcast, gw.now_ms, lambda: gw.settings,
        lambda *a: gw.run_blocking(*a), gw.display_path, gw.sessions_path())
    runtime.on_session_changed = session_methods.session_changed
    table.add_family(session_methods)
    table.add_family(AgentsMethods(
        gw.settings.raw, gw.display_path(gw.settings.state_dir / "workspace"), registry))
    wire_nodes(gw, table, reactor, inline=run_blocking is None)
    wire_automation(gw, table, reactor, inline=run_blocking is None)
    if store.interrupted_at_start:
        _log.warn("{n} run(s) were interrupted by the last stop; marked in their transcripts",
                  n=len(store.interrupted_at_start))
    return gw


# nodes.sqlite holds four owners' tables; each keeps its own migration list and version.
# Files written before per-owner versions counted the lists in this order.
NODES_FILE_SCHEMA = Schema(
    {"nodes": NODE_MIGRATIONS, "channel-pairing": [PAIRING_MIGRATION],
     "channel-cursors": [CURSOR_MIGRATION], "channel-ingress": [INGRESS_MIGRATION]},
    legacy=[("nodes", 1), ("channel-pairing", 1), ("channel-cursors", 1),
            ("channel-ingress", 1)])


def wire_nodes(gw: Gateway, table: MethodTable, reactor: Any, inline: bool) -> None:
    """The node registry and exec approvals, with their own database (nodes.sqlite)."""
    # nodes.sqlite holds the pairing state: node surfaces, exec approvals and DM pairing.
    nodes_db = Database(nodes_db_path(gw.settings.state_dir), NODES_FILE_SCHEMA, reactor,
                        inline=inline)
    nodes_db.open()
    store = NodeStore(nodes_db)
    pending_rows = store.load()
    registry = NodeRegistry(gw, store)
    approvals = ExecApprovals(gw, store)
    restored = approvals.restore(pending_rows)
    if restored:
        _log.info("restored {n} pending exec approval(s)", n=restored)
    gw.nodes_db, gw.nodes, gw.approvals = nodes_db, registry, approvals
    policy = PolicyFile(gw.settings.state_dir, gw.display_path)
    table.add_family(NodesMethods(registry, gw.now_ms, gw.clock, gw.broadcast))
    gw.dm_pairing = DmPairing(nodes_db, gw.now_ms)
    gw.dm_pairing.load()
    gw.channel_cursors = Cursors(nodes_db)
    gw.channel_cursors.load()
    gw.channel_ingress = Ingress(nodes_db)
    gw.channel_ingress.load()
    gw.channels = ChannelManager(gw, ChannelRouter(gw), PROVIDERS)
    table.add_family(channel_methods.ChannelsMethods(
        lambda: gw.settings, lambda: gw.channels, gw.dm_pairing, gw.dedupe, gw.now_ms,
        gw.clock, gw.health.lag.snapshot))
    table.add_family(ApprovalsMethods(approvals, policy))
    if exec_enabled(dict(gw.settings.raw)):
        gw.runtime.exec_tool = ExecTool(gw, policy)


def wire_automation(gw: Gateway, table: MethodTable, reactor: Any, inline: bool) -> None:
    """The cron scheduler (own database, cron.sqlite), the heartbeat and the boot script."""
    raw = dict(gw.settings.raw)
    cron_db = Database(cron_db_path(gw.settings.state_dir), CRON_MIGRATIONS, reactor,
                       inline=inline)
    cron_db.open()
    cron_cfg = raw.get("cron") if isinstance(raw.get("cron"), dict) else {}
    enabled = cron_cfg.get("enabled") is not False and os.environ.get("OPENCLAW_SKIP_CRON") != "1"
    agents = configured_agents(raw)
    heartbeat = Heartbeat(gw)
    scheduler = Scheduler(gw, CronStore(cron_db), heartbeat,
                          [normalize_agent_id(a["id"]) for a in agents], enabled=enabled,
                          skip_missed=cron_cfg.get("skipMissedJobs") is True)
    scheduler.load()
    if scheduler.interrupted:
        _log.warn("{n} cron run(s) were interrupted by the last stop; not replayed",
                  n=len(scheduler.interrupted))
    gw.cron_db, gw.cron, gw.heartbeat = cron_db, scheduler, heartbeat
    gw.boot = BootScript(gw, agents)
    table.add_family(CronMethods(scheduler, gw.now_ms, gw.display_path))


def _openai_maker(reactor: Any) -> Any:
    """Imported only when a provider is configured: the offline default needs no HTTP stack."""

    def make(provider_id: str, spec: Any) -> Any:
        from openclaw_tw.agent.openai import provider_factory

        return provider_factory(reactor)(provider_id, spec)

    return make


def sessions_summary(store: SessionStore, gw: Gateway) -> dict[str, Any]:
    rows = sorted(store.rows.values(), key=lambda r: r.updated_at, reverse=True)
    now = gw.now_ms()
    return {"path": gw.display_path(gw.sessions_path()), "count": len(rows),
            "recent": [{"key": r.key, "updatedAt": r.updated_at, "age": now - r.updated_at}
                       for r in rows[:5]]}


class DatabaseService(Service):
    """Closes the database after everything above it in the tree has stopped."""

    name = "database"

    def __init__(self, db: Database) -> None:
        self.db = db

    def startService(self) -> None:
        super().startService()
        self.db.start()

    def stopService(self) -> None:
        super().stopService()
        self.db.close()


def build_site(gw: Gateway) -> Site:
    root = GatewayRoot(gw, GatewayFactory(gw))
    wire_hooks_wake(gw, root.hooks)
    site = Site(root, reactor=gw.reactor)
    site.requestFactory = CappedRequest  # oversized bodies: 413 before they are buffered
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]  # no per-request log lines
    return site


def wire_hooks_wake(gw: Gateway, hooks: Any) -> None:
    """The heartbeat drains ``/hooks/wake``'s queue; ``mode: now`` wakes it at once."""
    gw.hooks = hooks
    queue_wake = hooks.wake

    def wake(body: dict[str, Any]) -> dict[str, Any]:
        result = queue_wake(body)
        heartbeat = getattr(gw, "heartbeat", None)
        if result.get("mode") == "now" and result.get("eventOutcome") == "queued" and \
                heartbeat is not None:
            agent = body.get("agentId") if isinstance(body.get("agentId"), str) else "main"
            heartbeat.request_wake(agent, "hook:wake")
        return result

    hooks.wake = wake


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def tcp_description(port: int, host: str) -> str:
    escaped = host.replace(":", "\\:")
    return f"tcp:{port}:interface={escaped}"


def _endpoints(settings: config.GatewaySettings, reactor: Any) -> list[Any]:
    """Server endpoints for the port: plain TCP descriptions, or SSL endpoints with TLS."""
    hosts = settings.listen_hosts(_has_ipv6_loopback())
    if not settings.tls_enabled:
        return [serverFromString(reactor, tcp_description(settings.port, h)) for h in hosts]
    material = tls.load_or_create(settings.state_dir, settings.tls_cert_path,
                                  settings.tls_key_path, [settings.listen_host])
    _log.info("TLS on; certificate sha256 fingerprint {fingerprint}",
              fingerprint=material.fingerprint)
    options = tls.server_options(material)
    return [SSL4ServerEndpoint(reactor, settings.port, options, interface=h) for h in hosts]


def makeService(options: Any, reactor: Any = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    env = dict(os.environ)
    try:
        settings = config.resolve(options, env)
    except ConfigError as e:
        raise SystemExit(f"openclaw: {e}") from None
    if settings.config_exists:
        # Strict at startup, as the real gateway: every problem at once, with its path.
        issues = configfile.validate(dict(settings.raw))
        if issues:
            problems = "; ".join(f"{i['path']}: {i['message']}" for i in issues)
            raise SystemExit(f"openclaw: invalid config {settings.config_path}: {problems}")
    lines, missing = features.report(features.configured(settings, mdns.mdns_mode(settings.raw, env)))
    print("\n".join(lines), file=sys.stdout)
    if missing:
        raise SystemExit(missing)

    observer = JsonLinesFileObserver(log_dir(settings.state_dir))

    def run_blocking(fn: Any, *args: Any) -> Any:
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)

    gw = build_gateway(settings, reactor, observer, run_blocking)
    root = SequentialMultiService()
    LogFileService(observer).setServiceParent(root)
    DatabaseService(gw.db).setServiceParent(root)
    sessions_db = DatabaseService(gw.sessions_db)
    sessions_db.setName("sessions-database")
    sessions_db.setServiceParent(root)
    nodes_db = DatabaseService(gw.nodes_db)
    nodes_db.setName("nodes-database")
    nodes_db.setServiceParent(root)
    gw.setServiceParent(root)
    gw.nodes.setServiceParent(root)
    gw.approvals.setServiceParent(root)
    gw.runtime.setServiceParent(root)
    gw.channels.setServiceParent(root)  # stopped before the runtime, after the listener
    site = build_site(gw)
    for i, endpoint in enumerate(_endpoints(settings, reactor)):
        listener = StreamServerEndpointService(endpoint, site)
        listener.setName("listener" if i == 0 else f"listener-{i}")
        listener.setServiceParent(root)
    # After the port (so stopped before it): the scheduler (which owns cron.sqlite) and the
    # boot script, which runs BOOT.md once the control plane serves.
    gw.cron.setName("cron")
    gw.cron.setServiceParent(root)
    gw.boot.setName("boot")
    gw.boot.setServiceParent(root)

    wire_reload_and_mdns(root, gw, options, env)

    _log.info(
        "gateway listening on ws://{host}:{port} (auth {mode}; state {state})",
        host=settings.listen_host, port=settings.port, mode=settings.auth_mode,
        state=str(settings.state_dir),
    )
    if settings.token_source in ("generated", "state"):
        path = config.token_path(settings.state_dir)
        verb = "generated a gateway token" if settings.token_source == "generated" else \
            "using the gateway token"
        print(f"openclaw: {verb} stored in {path}\n"
              f"openclaw: read it with `openclaw-tw token` (or `cat {path}`)", file=sys.stdout)
    return root


def wire_reload_and_mdns(root: Any, gw: Gateway, options: Any, env: dict[str, str]) -> None:
    """After the listener(s): mDNS (advertises once the port is bound, withdrawn first on
    stop), the config watcher (file polling + SIGHUP) and the systemd notifier."""
    fingerprint = None
    if gw.settings.tls_enabled:
        s = gw.settings
        fingerprint = tls.load_or_create(s.state_dir, s.tls_cert_path, s.tls_key_path,
                                         [s.listen_host]).fingerprint
    advertiser = mdns.MdnsAdvertiser(gw, env, tls_fingerprint=fingerprint)
    advertiser.setServiceParent(root)
    watcher = reload.ConfigWatcher(
        gw, lambda data: config.resolve_data(options, env, data), install_sighup=True)
    watcher.setName("config-reload")
    watcher.on_applied.append(lambda s, plan: apply_hot(gw, advertiser, s, env))
    watcher.on_applied.append(lambda s, plan: reconfigure_channels(gw, s, plan))
    watcher.setServiceParent(root)
    sdnotify.SystemdNotifier(env).setServiceParent(root)  # READY=1 once all of the above ran


def reconfigure_channels(gw: Gateway, settings: config.GatewaySettings,
                         plan: dict[str, Any]) -> None:
    """Restart only the channel accounts whose config changed."""
    if any(p == "channels" or p.startswith("channels.") for p in plan["changedPaths"]):
        gw.channels.configure(configured_accounts(settings.raw))


def apply_hot(gw: Gateway, advertiser: Any, settings: config.GatewaySettings,
              env: dict[str, str]) -> None:
    """Reconfigure the services that cache config (the rest read gw.settings per request)."""
    from openclaw_tw.nodes.policy import CommandPolicy

    if gw.nodes is not None:
        gw.nodes.policy = CommandPolicy(settings.raw)
    if advertiser is not None:
        advertiser.set_mode(mdns.mdns_mode(settings.raw, env))
