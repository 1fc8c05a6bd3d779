"""The method table: every RPC method maps to (params schema, handler); scopes come from
``scopes.METHOD_POLICY``.  ``MethodTable.invoke`` is the one place a request becomes a result
or a ``GatewayError``; the socket layer only turns those into frames.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred, ensureDeferred

from openclaw_tw.errors import GatewayError, invalid_request
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.schema import EMPTY, Schema

if TYPE_CHECKING:
    from openclaw_tw.protocol.websocket import GatewayProtocol

Handler = Callable[["CallContext", dict[str, Any]], Any]


@attrs.frozen
class Method:
    name: str
    handler: Handler
    params: Schema | None  # None: accept any params (already validated by the handler)
    advertise: bool = True


@attrs.frozen
class CallContext:
    """What a handler may know about the caller."""

    conn: GatewayProtocol
    method: str
    request_id: str

    @property
    def role(self) -> str:
        return self.conn.role

    @property
    def scopes(self) -> frozenset[str]:
        return self.conn.scopes

    @property
    def is_admin(self) -> bool:
        return S.ADMIN in self.conn.scopes

    def respond_early(self, payload: Any) -> None:
        """A first response on this request id ("accepted"); the handler's result follows."""
        self.conn.respond(self.request_id, payload)


class MethodTable:
    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def add(
        self,
        name: str,
        handler: Handler,
        params: Schema | None = EMPTY,
        advertise: bool | None = None,
    ) -> None:
        if name in self._methods:
            raise ValueError(f"method {name} registered twice")
        if advertise is None:
            advertise = S.advertised(name)
        self._methods[name] = Method(name, handler, params, advertise)

    def __contains__(self, name: str) -> bool:
        return name in self._methods

    def advertised(self) -> list[str]:
        return [m.name for m in self._methods.values() if m.advertise]

    def names(self) -> Iterable[str]:
        return self._methods.keys()

    def invoke(self, ctx: CallContext, params: Any) -> Any:
        """Authorize, validate and run.  Returns a value, or a Deferred for async handlers;
        raises ``GatewayError`` for every refusal."""
        method = ctx.method
        S.authorize(method, params, ctx.role, ctx.scopes)
        if method == "connect":
            raise invalid_request("connect is only valid as the first request")
        entry = self._methods.get(method)
        if entry is None:
            raise invalid_request(f"unknown method: {method}")
        if params is None:
            params = {}
        if entry.params is not None:
            problem = entry.params.check(params)
            if problem is not None:
                raise invalid_request(f"invalid {method} params: {problem}")
        result = entry.handler(ctx, params)
        if inspect.iscoroutine(result):
            return ensureDeferred(result)
        return result


def is_async(result: Any) -> bool:
    return isinstance(result, Deferred)


__all__ = ["CallContext", "GatewayError", "Method", "MethodTable", "is_async"]
