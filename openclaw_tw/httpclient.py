"""The outbound HTTP client of model providers and channel pollers: treq on a persistent pool.

The pool's connection factories are quiet: Twisted logs "Starting factory" / "Stopping factory"
for every new connection otherwise, which made a line pair per model call or long-poll.
Imported only when a feature that calls out over HTTP is configured.
"""

from __future__ import annotations

from typing import Any

from treq.client import HTTPClient
from twisted.web.client import Agent, HTTPConnectionPool


class _QuietFactory(HTTPConnectionPool._factory):  # type: ignore[name-defined,misc]
    noisy = False


def quiet_pool(reactor: Any) -> HTTPConnectionPool:
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool._factory = _QuietFactory
    return pool


def http_client(reactor: Any) -> tuple[HTTPClient, HTTPConnectionPool]:
    """A treq client and the pool to close when its owner stops."""
    pool = quiet_pool(reactor)
    return HTTPClient(Agent(reactor, pool=pool)), pool
