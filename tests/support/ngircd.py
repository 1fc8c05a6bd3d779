"""A real IRC server for interop tests (Debian's ngircd on a loopback port) and a human IRC
client: what tests/interop/test_irc.py and the heartbeat delivery test share."""

from __future__ import annotations

import os
import shutil
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.words.protocols import irc

from tests.support.children import ChildProcess

NGIRCD = shutil.which("ngircd") or ("/usr/sbin/ngircd" if os.path.exists("/usr/sbin/ngircd")
                                    else None)
SKIP_REASON = "ngircd not installed (apt-get install -y ngircd; .ci/run installs it)"


class Human(irc.IRCClient):
    nickname = "human"

    def __init__(self) -> None:
        self.lines: defer.DeferredQueue[tuple[str, str, str]] = defer.DeferredQueue()
        self.signed_on: defer.Deferred[None] = defer.Deferred()
        self.joined_channels: defer.DeferredQueue[str] = defer.DeferredQueue()
        self.gone: defer.Deferred[None] = defer.Deferred()

    def signedOn(self) -> None:
        self.signed_on.callback(None)

    def joined(self, channel: str) -> None:
        self.joined_channels.put(channel)

    def privmsg(self, user: str, channel: str, message: str) -> None:
        self.lines.put((user.split("!", 1)[0], channel, message))

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        super().connectionLost(reason)
        if not self.gone.called:
            self.gone.callback(None)


async def start_plain_ngircd(conf: str, port: int, channel: str = "#ops") -> ChildProcess:
    """ngircd on 127.0.0.1:``port`` (no password, no TLS) with ``channel`` predefined."""
    assert NGIRCD is not None
    lines = ["[Global]", "Name = irc.test.local", "Info = openclaw_tw test",
             "Listen = 127.0.0.1", f"Ports = {port}", "MotdPhrase = test",
             "[Limits]", "MaxConnectionsIP = 0", "[Options]", "PAM = no", "Ident = no",
             "DNS = no", "[Channel]", f"Name = {channel}"]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    server = ChildProcess(ready_marker=b"Now listening on")
    reactor.spawnProcess(server, NGIRCD, [NGIRCD, "-n", "-f", conf], env=os.environ)
    await server.ready
    return server
