"""``FakeConnection``: an ``IConnection`` for method and service tests without a socket."""

from __future__ import annotations

import json
from typing import Any

from zope.interface import implementer

from openclaw_tw.interfaces import IConnection
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext


@implementer(IConnection)
class FakeConnection:
    """Records what the gateway sends: ``events`` (name, payload, seq), ``responses``
    (request id, payload), ``closed`` (code, reason) — and answers pings unless told not to."""

    def __init__(self, conn_id: str = "conn-1", role: str = S.ROLE_OPERATOR,
                 scopes: frozenset[str] | set[str] = frozenset({S.ADMIN}),
                 client: dict[str, Any] | None = None, device_id: str | None = None,
                 peer_ip: str = "127.0.0.1", caps: frozenset[str] = frozenset(),
                 ephemeral: bool = False, auth_method: str = "token") -> None:
        self.conn_id = conn_id
        self.role = role
        self.scopes = frozenset(scopes)
        self.client = client if client is not None else {"id": "test", "mode": "test"}
        self.caps = caps
        self.device_id = device_id
        self.auth_method = auth_method
        self.peer_ip = peer_ip
        self.ephemeral = ephemeral
        self.connect_params: dict[str, Any] = {}
        self.subscriptions: set[str] = set()
        self.events: list[tuple[str, Any, int | None]] = []
        self.responses: list[tuple[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.aborted = False
        self.pings = 0
        self.seq = 0

    def ctx(self, method: str, request_id: str = "req-1") -> CallContext:
        return CallContext(self, method, request_id)

    def deliver(self, event: Any, drop_if_slow: bool) -> None:
        if self.closed is None:
            self.seq += 1
            frame = json.loads(event.with_seq(self.seq))
            self.events.append((frame["event"], frame["payload"], self.seq))

    def send_event(self, event: str, payload: Any) -> None:
        self.events.append((event, payload, None))

    def respond(self, request_id: str, payload: Any) -> None:
        self.responses.append((request_id, payload))

    def keepalive(self) -> None:
        self.pings += 1

    def close(self, code: int, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)

    def abort(self) -> None:
        self.aborted = True
