"""systemd ``Type=notify`` support: ``READY=1`` once the listeners are bound, ``STOPPING=1``
when stopping, ``RELOADING=1``/``READY=1`` around a SIGHUP reload.  A few lines over
``$NOTIFY_SOCKET`` (an AF_UNIX datagram socket; ``@`` means the abstract namespace); without
the variable every call is a no-op.  Errors are logged, never raised.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from twisted.application.service import Service
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


class SystemdNotifier(Service):
    """Sits after the listeners: started once they are bound, stopped before them."""

    name = "sdnotify"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)

    def startService(self) -> None:
        super().startService()
        notify(f"READY=1\nMAINPID={os.getpid()}", self.env)

    def stopService(self) -> None:
        super().stopService()
        notify("STOPPING=1", self.env)
