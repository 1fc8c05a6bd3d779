"""Service-tree order: children stopped one at a time, in reverse start order; databases last.

A MultiService that stops its children one at a time, in reverse start order.

Twisted's MultiService stops all children at once.  The gateway needs order: the port stops
accepting, then running agent turns are aborted and persisted, then clients get ``shutdown``
and are closed, and only then is the database closed.
"""

from __future__ import annotations

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.logger import Logger

from openclaw_tw.db import Database

_log = Logger(namespace="gateway")


class SequentialMultiService(MultiService):
    def stopService(self) -> Deferred[None]:
        # Service.stopService only flips the flag; the children are stopped below, in order.
        self.running = 0
        return ensureDeferred(self._stop_children())

    async def _stop_children(self) -> None:
        for child in reversed(list(self)):
            try:
                await maybeDeferred(child.stopService)
            except Exception:
                _log.failure("stopping {name} failed", name=getattr(child, "name", child))



class DatabaseService(Service):
    """Starts a database's writer thread; closes the database after everything above it in
    the tree has stopped."""

    def __init__(self, name: str, db: Database) -> None:
        self.setName(name)
        self.db = db

    def startService(self) -> None:
        super().startService()
        self.db.start()

    def stopService(self) -> None:
        super().stopService()
        self.db.close()
