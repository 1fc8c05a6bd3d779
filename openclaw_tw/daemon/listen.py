"""The gateway's listening endpoints: plain TCP or TLS, on each address the bind mode names."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.logger import Logger

from openclaw_tw.config.settings import GatewaySettings
from openclaw_tw.daemon import tls

_log = Logger(namespace="gateway")


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


def endpoints(settings: GatewaySettings, reactor: Any) -> list[Any]:
    """Server endpoints for the port: plain TCP descriptions, or SSL endpoints with TLS."""
    hosts = settings.listen_hosts(has_ipv6_loopback())
    if not settings.tls_enabled:
        return [serverFromString(reactor, tcp_description(settings.port, h)) for h in hosts]
    material = tls.load_or_create(settings.state_dir, settings.tls_cert_path,
                                  settings.tls_key_path, [settings.listen_host])
    _log.info("TLS on; certificate sha256 fingerprint {fingerprint}",
              fingerprint=material.fingerprint)
    options = tls.server_options(material)
    return [SSL4ServerEndpoint(reactor, settings.port, options, interface=h) for h in hosts]
