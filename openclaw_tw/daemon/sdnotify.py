"""systemd ``Type=notify`` support: ``READY=1`` once the listeners are bound, ``STOPPING=1``
when stopping, ``RELOADING=1``/``READY=1`` around a SIGHUP reload, and ``WATCHDOG=1`` every
half ``WatchdogSec=`` while the watchdog is on.  A few lines over ``$NOTIFY_SOCKET`` (an
AF_UNIX datagram socket; ``@`` means the abstract namespace); without the variable every
call is a no-op.  Errors are logged, never raised.

The watchdog pings come from a ``LoopingCall`` on the reactor, so they stop when the reactor
is wedged and systemd restarts the service (``Restart=on-failure``).  ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``, when set, naming this process) turn it on, as ``sd_watchdog_enabled`` does.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

_log = Logger(namespace="gateway")


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(state.encode("utf-8"))
    except OSError as e:
        _log.warn("sd_notify {state} failed: {error}", state=state, error=str(e))
        return False
    return True


def watchdog_interval(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None when the
    watchdog is off, malformed, or meant for another process."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1_000_000 / 2


class SystemdNotifier(Service):
    """Sits after the listeners: started once they are bound, stopped before them."""

    name = "sdnotify"

    def __init__(self, env: Mapping[str, str] | None = None, clock: Any = None,
                 send: Callable[[str, Mapping[str, str]], bool] = notify) -> None:
        self.env = dict(os.environ if env is None else env)
        self.send = send
        self.watchdog: LoopingCall | None = None
        interval = watchdog_interval(self.env)
        if interval is not None and clock is not None:
            self.interval = interval
            self.watchdog = LoopingCall(self.send, "WATCHDOG=1", self.env)
            self.watchdog.clock = clock

    def startService(self) -> None:
        super().startService()
        self.send(f"READY=1\nMAINPID={os.getpid()}", self.env)
        if self.watchdog is not None and not self.watchdog.running:
            self.watchdog.start(self.interval, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self.watchdog is not None and self.watchdog.running:
            self.watchdog.stop()
        self.send("STOPPING=1", self.env)
