"""Interface addresses from ifaddr: IPv4 then IPv6, no link-local, each once."""

from __future__ import annotations

from unittest import mock

import ifaddr
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.daemon import netaddrs


def adapter(name: str, *ips: str | tuple[str, int, int]) -> ifaddr.Adapter:
    return ifaddr.Adapter(name, name, [ifaddr.IP(ip, 24, name) for ip in ips])


class LocalAddresses(SynchronousTestCase):
    def test_shapes_from_ifaddr(self) -> None:
        fake = [adapter("lo", "127.0.0.1", ("::1", 0, 0)),
                adapter("eth0", "192.0.2.7", ("fe80::1", 0, 2), ("2001:db8::7", 0, 0)),
                adapter("eth1", "192.0.2.7", "not-an-address")]
        with mock.patch.object(ifaddr, "get_adapters", return_value=fake):
            self.assertEqual(netaddrs.local_addresses(),
                             ["127.0.0.1", "192.0.2.7", "::1", "2001:db8::7"])

    def test_no_interface_listing_is_no_addresses(self) -> None:
        with mock.patch.object(ifaddr, "get_adapters", side_effect=OSError("no netlink")):
            self.assertEqual(netaddrs.local_addresses(), [])
        self.flushLoggedErrors()

    def test_this_host_has_loopback(self) -> None:
        self.assertIn("127.0.0.1", netaddrs.local_addresses())
