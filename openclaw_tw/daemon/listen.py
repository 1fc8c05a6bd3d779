"""The gateway's listening endpoints: plain TCP or TLS, on each address the bind mode names,
or the sockets systemd passes in (socket activation: ``LISTEN_FDS``/``LISTEN_PID``, as
``sd_listen_fds`` reads them; see ``etc/openclaw.socket``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    AdoptedStreamServerEndpoint,
    SSL4ServerEndpoint,
    _SystemdParser,
    serverFromString,
)
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from openclaw_tw.config.settings import GatewaySettings
from openclaw_tw.daemon import tls

_log = Logger(namespace="gateway")

MAX_INHERITED = 16


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def tcp_description(port: int, host: str) -> str:
    escaped = host.replace(":", "\\:")
    return f"tcp:{port}:interface={escaped}"


# index -> (our own duplicate of the inherited descriptor, its address family).  Twisted's
# adopted endpoint closes the descriptor it was given once it listens, so each gateway tree
# (an in-process restart builds a new one) adopts a fresh duplicate of ours.
_KEPT: dict[int, tuple[int, int]] = {}


def inherited_sockets(reactor: Any) -> list[Any]:
    """Endpoints for the listening TCP sockets systemd passed to this process.

    Twisted reads ``LISTEN_PID``/``LISTEN_FDS``/``LISTEN_FDNAMES`` once, when
    ``twisted.internet.endpoints`` is imported (and removes them from the environment, so
    children do not see them); its ``systemd:`` endpoint description is how we ask for them.
    A descriptor that is not a listening TCP socket is refused (SystemExit) rather than
    served half-way."""
    if not _KEPT and not passed_by_systemd():
        return []
    out = []
    for index in range(MAX_INHERITED):
        if index not in _KEPT:
            try:
                endpoint = serverFromString(reactor, f"systemd:domain=INET:index={index}")
            except (IndexError, KeyError):
                break
            _KEPT[index] = (_check(endpoint.fileno), _family(endpoint.fileno))
        kept, family = _KEPT[index]
        out.append(AdoptedStreamServerEndpoint(reactor, os.dup(kept), family))
    return out


def passed_by_systemd() -> int:
    """How many descriptors systemd passed, as Twisted read them.  Asked before the
    ``systemd:`` description: that parser is a plugin, and looking it up imports every
    endpoint parser plugin (HAProxy's, Autobahn's: ~0.2 MiB) even when none was passed.
    ``tests/loopback/test_library_internals.py`` pins the private attribute."""
    return len(_SystemdParser._sddaemon.inheritedDescriptors())


def _check(fd: int) -> int:
    """A duplicate of ``fd`` once it is known to be a listening TCP socket."""
    try:
        s = socket.socket(fileno=fd)
    except OSError as e:
        raise SystemExit(f"openclaw: inherited fd {fd}: {e}") from None
    try:
        family, kind = s.family, s.type
        listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    finally:
        s.detach()  # the descriptor stays open
    if family not in (socket.AF_INET, socket.AF_INET6) or kind != socket.SOCK_STREAM \
            or not listening:
        raise SystemExit(f"openclaw: inherited fd {fd} is not a listening TCP socket "
                         "(openclaw.socket needs ListenStream=)")
    return os.dup(fd)


def _family(fd: int) -> int:
    s = socket.socket(fileno=fd)
    try:
        return int(s.family)
    finally:
        s.detach()


class _TLSOver:
    """TLS over another server endpoint (an adopted socket)."""

    def __init__(self, inner: Any, options: Any) -> None:
        self.inner, self.options = inner, options

    def listen(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = self.inner.listen(TLSMemoryBIOFactory(self.options, False, factory))
        return d


class Listener(StreamServerEndpointService):
    """One listening endpoint that knows, once bound, the address it listens on (a socket
    systemd passed has its own port, not ``gateway.port``) and tells ``on_bound``."""

    bound: Any = None  # the listening port's address

    def __init__(self, endpoint: Any, factory: Any, on_bound: Callable[[Any], None]) -> None:
        super().__init__(endpoint, factory)
        self.on_bound = on_bound

    def startService(self) -> None:
        super().startService()  # raises at once when the port cannot be bound
        waiting = getattr(self, "_waitingForPort", None)
        if waiting is not None:
            waiting.addCallback(self._listening)

    def _listening(self, port: Any) -> Any:
        if port is not None:
            self.bound = port.getHost()
            self.on_bound(self.bound)
        return port  # stopService stops it through the same chain


def endpoints(settings: GatewaySettings, reactor: Any) -> list[Any]:
    """Server endpoints for the port: the sockets systemd passed, else plain TCP
    descriptions, or SSL endpoints with TLS."""
    inherited = inherited_sockets(reactor)
    options = None
    if settings.tls_enabled:
        material = tls.load_or_create(settings.state_dir, settings.tls_cert_path,
                                      settings.tls_key_path, [settings.listen_host])
        _log.info("TLS on; certificate sha256 fingerprint {fingerprint}",
                  fingerprint=material.fingerprint)
        options = tls.server_options(material)
    if inherited:
        _log.info("socket activation: serving {n} socket(s) passed by systemd "
                  "(gateway.port/bind are not used)", n=len(inherited))
        return inherited if options is None else [_TLSOver(e, options) for e in inherited]
    hosts = settings.listen_hosts(has_ipv6_loopback())
    if options is None:
        return [serverFromString(reactor, tcp_description(settings.port, h)) for h in hosts]
    return [SSL4ServerEndpoint(reactor, settings.port, options, interface=h) for h in hosts]
