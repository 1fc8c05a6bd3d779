"""This host's interface addresses, from ``ifaddr`` (portable; it comes with zeroconf).

Used for the TLS certificate's names and mDNS when the gateway binds every interface, and for
the gateway's LAN address in reports.  IPv6 link-local addresses (``fe80::/10``) are left out:
they are meaningless without their interface.
"""

from __future__ import annotations

import ipaddress

import ifaddr
from twisted.logger import Logger

_log = Logger(namespace="daemon/netaddrs")


def local_addresses() -> list[str]:
    """IPv4 then IPv6 addresses of every interface, loopback included, each once."""
    try:
        adapters = ifaddr.get_adapters()
    except (OSError, ValueError) as e:  # no netlink/getifaddrs in a sandbox: no addresses
        _log.warn("cannot list interface addresses: {error}", error=str(e))
        return []
    v4: list[str] = []
    v6: list[str] = []
    for adapter in adapters:
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]  # IPv6: (addr, flow, scope)
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                continue
            if addr.version == 6 and addr.is_link_local:
                continue
            bucket = v4 if addr.version == 4 else v6
            if str(addr) not in bucket:
                bucket.append(str(addr))
    return v4 + v6
