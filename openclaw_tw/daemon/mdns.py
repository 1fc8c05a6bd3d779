"""mDNS / Bonjour advertising of ``_openclaw-gw._tcp`` (reference §13) with python-zeroconf.

Failure isolation is the point of this module: the real gateway's Bonjour failures crash-loop
the whole process.  Here every zeroconf call runs off the reactor thread (zeroconf's sync API
blocks while probing), any exception is caught, logged once per distinct error, recorded for
``status()`` and retried with capped exponential backoff; nothing propagates to the service
tree, so the control plane keeps serving whatever happens to multicast.

The service sits after the listener in the tree: it advertises only once the port is bound
and is stopped (unregistered) first.  ``discovery.mdns.mode`` is ``off`` | ``minimal`` |
``full`` (default ``off`` here, as the real gateway advertises by default only on macOS);
``OPENCLAW_DISABLE_BONJOUR=1`` turns it off whatever the config says;
``OPENCLAW_MDNS_INTERFACES`` (comma-separated addresses, e.g. ``127.0.0.1``) limits the
interfaces it multicasts on (default: all).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

_log = Logger(namespace="gateway/bonjour")

SERVICE_TYPE = "_openclaw-gw._tcp.local."
MODES = ("off", "minimal", "full")
RETRY_INITIAL_S = 5.0
RETRY_MAX_S = 300.0


def mdns_mode(raw: Mapping[str, Any], env: Mapping[str, str]) -> str:
    if env.get("OPENCLAW_DISABLE_BONJOUR", "").strip().lower() in ("1", "true", "yes"):
        return "off"
    mode = ((raw.get("discovery") or {}).get("mdns") or {}).get("mode")
    return mode if mode in MODES else "off"


def host_label(env: Mapping[str, str]) -> str:
    name = env.get("OPENCLAW_MDNS_HOSTNAME") or socket.gethostname().split(".")[0]
    return name.strip() or "openclaw"


def txt_record(mode: str, port: int, host: str, display_name: str,
               tls_fingerprint: str | None, cli_path: str | None = None,
               ssh_port: int = 22) -> dict[str, str]:
    """The TXT keys of §13 for ``minimal``/``full`` mode."""
    txt = {"role": "gateway", "gatewayPort": str(port), "lanHost": f"{host}.local",
           "displayName": display_name, "transport": "gateway"}
    if tls_fingerprint:
        txt["gatewayTls"] = "1"
        txt["gatewayTlsSha256"] = tls_fingerprint
    if mode == "full":
        txt["sshPort"] = str(ssh_port)
        if cli_path:
            txt["cliPath"] = cli_path
    return txt


def mdns_interfaces(env: Mapping[str, str]) -> list[str] | None:
    """The addresses of ``OPENCLAW_MDNS_INTERFACES``, or None for every interface."""
    listed = [a.strip() for a in env.get("OPENCLAW_MDNS_INTERFACES", "").split(",") if a.strip()]
    return listed or None


def _default_zeroconf(interfaces: list[str] | None = None) -> Any:
    from zeroconf import InterfaceChoice, Zeroconf

    return Zeroconf(interfaces=interfaces or InterfaceChoice.All)


def _default_info(name: str, port: int, txt: dict[str, str], server: str,
                  addresses: list[str]) -> Any:
    from zeroconf import ServiceInfo

    return ServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", port=port, properties=txt,
                       server=server, parsed_addresses=addresses)


class MdnsAdvertiser(Service):
    name = "mdns"

    def __init__(self, gw: Any, env: Mapping[str, str] | None = None,
                 port: Callable[[], int] | None = None,
                 tls_fingerprint: str | None = None,
                 zeroconf_factory: Callable[[], Any] | None = None,
                 info_factory: Callable[..., Any] = _default_info,
                 run_blocking: Callable[..., Deferred[Any]] | None = None) -> None:
        self.gw = gw
        self.env = dict(os.environ if env is None else env)
        self.port = port or (lambda: gw.settings.port)
        self.tls_fingerprint = tls_fingerprint
        self.zeroconf_factory = zeroconf_factory or (
            lambda: _default_zeroconf(mdns_interfaces(self.env)))
        self.info_factory = info_factory
        self.run_blocking = run_blocking or gw.run_blocking
        self.mode = mdns_mode(gw.settings.raw, self.env)
        self.zc: Any = None
        self.info: Any = None
        self.advertised = False
        self.last_error: str | None = None
        self.failures = 0
        self._retry: Any = None
        self._busy = False

    # -- lifecycle -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._advertise()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._cancel_retry()
        return self._withdraw()

    def set_mode(self, mode: str) -> None:
        """Hot reload of ``discovery.mdns.mode``: replace the advertisement."""
        if mode == self.mode:
            return
        self.mode = mode
        _log.info("mDNS mode is now {mode}", mode=mode)
        if not self.running:
            return
        self._cancel_retry()
        self._withdraw().addCallback(lambda _: self._advertise() if self.running else None)

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "advertised": self.advertised, "lastError": self.last_error,
                "failures": self.failures}

    # -- advertising ---------------------------------------------------------------------------

    def _build(self) -> tuple[str, int, dict[str, str], str, list[str]]:
        host = host_label(self.env)
        display = f"{host} (OpenClaw)"
        port = self.port()
        txt = txt_record(self.mode, port, host, display, self.tls_fingerprint,
                         cli_path=sys.argv[0] or None)
        addresses = self._addresses()
        return display, port, txt, f"{host}.local.", addresses

    def _addresses(self) -> list[str]:
        listen = self.gw.settings.listen_host
        if listen not in ("0.0.0.0", "::"):
            return [listen]
        from openclaw_tw.daemon.netaddrs import local_addresses

        return [a for a in local_addresses() if ":" not in a] or ["127.0.0.1"]

    def _advertise(self) -> None:
        if self.mode == "off" or self._busy or self.advertised:
            return
        try:
            name, port, txt, server, addresses = self._build()
            info = self.info_factory(name, port, txt, server, addresses)
        except Exception as e:
            self._failed(e)
            return
        self._busy = True

        def register() -> Any:
            zc = self.zc or self.zeroconf_factory()
            self.zc = zc
            zc.register_service(info)
            return info

        d = _guard(self.run_blocking, register)
        d.addCallbacks(self._registered, self._failed)
        d.addBoth(self._not_busy)

    def _not_busy(self, result: Any) -> None:
        self._busy = False

    def _registered(self, info: Any) -> None:
        self.info, self.advertised = info, True
        self.failures, self.last_error = 0, None
        _log.info("advertising {type} on port {port} ({mode})", type=SERVICE_TYPE,
                  port=self.port(), mode=self.mode)
        if not self.running or self.mode == "off":
            self._withdraw()

    def _failed(self, reason: Any) -> None:
        error = getattr(reason, "value", reason)
        text = f"{type(error).__name__}: {error}"
        self.failures += 1
        if text != self.last_error:
            _log.warn("mDNS advertising failed (the gateway keeps running): {error}", error=text)
        self.last_error = text
        self._close_quietly()
        if self.running and self.mode != "off":
            delay = min(RETRY_MAX_S, RETRY_INITIAL_S * 2 ** (self.failures - 1))
            self._retry = self.gw.clock.callLater(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._advertise()

    def _cancel_retry(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _close_quietly(self) -> None:
        zc, self.zc = self.zc, None
        if zc is not None:
            _guard(self.run_blocking, zc.close).addErrback(lambda f: None)

    def _withdraw(self) -> Deferred[None]:
        zc, info = self.zc, self.info
        self.zc, self.info, self.advertised = None, None, False
        if zc is None:
            return succeed(None)

        def unregister() -> None:
            try:
                if info is not None:
                    zc.unregister_service(info)
            finally:
                zc.close()

        d = _guard(self.run_blocking, unregister)

        def failed(f: Any) -> None:
            _log.warn("mDNS withdraw failed: {error}", error=str(f.value))

        d.addErrback(failed)
        return d


def _guard(run_blocking: Callable[..., Deferred[Any]], fn: Callable[[], Any]) -> Deferred[Any]:
    """``run_blocking(fn)`` with a synchronous exception turned into a failed Deferred."""
    from twisted.internet.defer import maybeDeferred

    return maybeDeferred(run_blocking, fn)
