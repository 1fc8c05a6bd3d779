"""``twistd openclaw``: command-line options and ``makeService``.

``app.build`` builds every component (the composition root); ``makeService`` only adds the
services among them to the tree, in start order. Stop runs in reverse, one at a time: the
port stops accepting, then channels, the agent runtime (turns aborted and persisted), the
hub (``shutdown``, sockets closed 1012), and the databases last.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.application.service import IService
from twisted.internet import threads
from twisted.logger import Logger
from twisted.python import usage

from openclaw_tw import app as composition
from openclaw_tw.app import Components
from openclaw_tw.channels.accounts import configured_accounts
from openclaw_tw.config import document as configfile
from openclaw_tw.config import settings as config
from openclaw_tw.config.apply import apply_hot
from openclaw_tw.config.settings import BIND_MODES, METRICS_MODES, ConfigError
from openclaw_tw.daemon import features, mdns, sdnotify, tls
from openclaw_tw.daemon.listen import Listener, endpoints
from openclaw_tw.daemon.logfile import JsonLinesFileObserver, LogFileService, log_dir
from openclaw_tw.daemon.restart import RestartableGateway
from openclaw_tw.daemon.service import DatabaseService, SequentialMultiService
from openclaw_tw.web.control_ui import ControlUiDiscovery
from openclaw_tw.web.http import CappedRequest
from openclaw_tw.web.root import GatewayRoot
from openclaw_tw.web.site import GatewaySite

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
        ["metrics", None, None, "Prometheus /metrics: token (default: bearer gateway token), "
                                "loopback (direct loopback callers only) or off "
                                "(env OPENCLAW_TW_METRICS)."],
    ]
    optFlags = [
        ["allow-unconfigured", None, "Accepted for compatibility with `openclaw gateway run`."],
        ["tls", None, "Serve wss:// and https:// (gateway.tls.enabled); a certificate is "
                      "generated in the state dir unless gateway.tls.certPath/keyPath are set."],
    ]

    def postOptions(self) -> None:
        if self["bind"] is not None and self["bind"] not in BIND_MODES:
            raise usage.UsageError(f"--bind must be one of {', '.join(BIND_MODES)}")
        if self["metrics"] is not None and self["metrics"] not in METRICS_MODES:
            raise usage.UsageError(f"--metrics must be one of {', '.join(METRICS_MODES)}")
        if self["bind"] == "custom" and not self["host"]:
            raise usage.UsageError("--bind custom needs --host")


def build_site(app: Components) -> GatewaySite:
    # header deadline and per-IP pending budget (slowloris); trusted proxies are exempt
    root = GatewayRoot(app)
    site = GatewaySite(root, app.reactor, exempt=app.hub.is_trusted_proxy,
                       upgrades=root.ws_factory)  # one-read upgrades skip twisted.web
    site.requestFactory = CappedRequest  # oversized bodies: 413 before they are buffered
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]  # no per-request log lines
    return site


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

    def build(settings: config.GatewaySettings,
              restarter: RestartableGateway) -> tuple[IService, Components]:
        app = composition.build(
            settings, reactor, observer, run_blocking,
            config_resolver=lambda data: config.resolve_data(options, env, data), env=env)
        return gateway_tree(app, env, restarter), app

    def fatal() -> None:
        from twisted.internet import reactor as running

        running.stop()
        raise SystemExit(1)

    root = RestartableGateway(build, settings, lambda: config.resolve(options, env), reactor,
                              keep=(LogFileService(observer),), install_signal=True,
                              on_fatal=fatal)
    if settings.token_source in ("generated", "state"):
        path = config.token_path(settings.state_dir)
        verb = "generated a gateway token" if settings.token_source == "generated" else \
            "using the gateway token"
        print(f"openclaw: {verb} stored in {path}\n"
              f"openclaw: read it with `openclaw-tw token` (or `cat {path}`)", file=sys.stdout)
    return root


def gateway_tree(app: Components, env: dict[str, str],
                 restarter: RestartableGateway | None = None) -> SequentialMultiService:
    """The services of one gateway instance, in start order (stopped in reverse)."""
    settings, reactor = app.settings, app.reactor
    root = SequentialMultiService()
    root.setName("gateway-tree")
    for name, db in app.databases:
        DatabaseService(name, db).setServiceParent(root)
    for service in (app.hub, app.nodes, app.approvals, app.runtime,
                    app.channels):  # channels: stopped before the runtime, after the listener
        service.setServiceParent(root)
    site = build_site(app)
    # finds the Control UI build off the reactor before the port opens (503 until then)
    ControlUiDiscovery(site.resource.control_ui, env).setServiceParent(root)
    listeners = []

    def bound(address: Any) -> None:  # logged once the port is really listening
        _log.info("gateway listening on {scheme}://{host}:{port} (auth {mode}; state {state})",
                  scheme="wss" if settings.tls_enabled else "ws",
                  host=getattr(address, "host", "?"), port=getattr(address, "port", "?"),
                  mode=settings.auth_mode, state=str(settings.state_dir))

    for i, endpoint in enumerate(endpoints(settings, reactor)):
        listener = Listener(endpoint, site, bound)
        listener.setName("listener" if i == 0 else f"listener-{i}")
        listener.setServiceParent(root)
        listeners.append(listener)
    # After the port (so stopped before it): the scheduler (which owns cron.sqlite) and the
    # boot script, which runs BOOT.md once the control plane serves.
    app.cron.setName("cron")
    app.cron.setServiceParent(root)
    app.boot.setName("boot")
    app.boot.setServiceParent(root)
    add_reload_and_mdns(root, app, env, restarter,
                        port=lambda: getattr(listeners[0].bound, "port", settings.port))
    return root


def add_reload_and_mdns(root: Any, app: Components, env: dict[str, str],
                        restarter: RestartableGateway | None = None,
                        port: Callable[[], int] | None = None) -> None:
    """After the listener(s): mDNS (advertises once the port is bound, withdrawn first on
    stop), the config watcher (file polling + SIGHUP) and the systemd notifier."""
    s = app.hub.settings
    fingerprint = None
    if s.tls_enabled:
        fingerprint = tls.load_or_create(s.state_dir, s.tls_cert_path, s.tls_key_path,
                                         [s.listen_host]).fingerprint
    advertiser = mdns.MdnsAdvertiser(app.hub, env, port=port, tls_fingerprint=fingerprint)
    advertiser.setServiceParent(root)
    watcher = app.config_watcher
    if watcher is not None:
        make_openai = composition.openai_maker(app.reactor)
        watcher.on_applied.append(
            lambda s, plan: apply_hot(app, advertiser, s, env, make_openai))
        watcher.on_applied.append(lambda s, plan: reconfigure_channels(app, s, plan))
        if restarter is not None:
            watcher.on_applied.append(lambda s, plan: restart_if_needed(restarter, plan))
        watcher.setServiceParent(root)
    # READY=1 once all of the above ran; WATCHDOG=1 pings from the reactor under WatchdogSec=
    sdnotify.SystemdNotifier(env, clock=app.reactor).setServiceParent(root)


def restart_if_needed(restarter: RestartableGateway, plan: dict[str, Any]) -> None:
    """``hybrid`` reload mode (the default): paths that need a restart get one, in process."""
    if plan["restart"] and plan["mode"] != "off":
        restarter.request("config reload: " + ", ".join(plan["restart"]))


def reconfigure_channels(app: Components, settings: config.GatewaySettings,
                         plan: dict[str, Any]) -> None:
    """Restart only the channel accounts whose config changed."""
    if any(p == "channels" or p.startswith("channels.") for p in plan["changedPaths"]):
        app.channels.configure(configured_accounts(settings.raw))
