"""The method table: every RPC method maps to (params schema, handler); scopes come from
``scopes.METHOD_POLICY``.  ``MethodTable.invoke`` is the one place a request becomes a result
or a ``GatewayError``; the socket layer only turns those into frames.

Handlers live in method families: one class per family (``methods/<family>.py``) whose
constructor takes the few components it needs, each handler marked with ``@rpc(name,
params)``; ``MethodTable.add_family`` collects the marks::

    class SystemMethods:
        def __init__(self, presence: PresenceRegistry) -> None: ...

        @rpc("system-presence")
        def system_presence(self, ctx: CallContext, params: dict[str, Any]) -> Any: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred, ensureDeferred

from openclaw_tw.errors import GatewayError, invalid_request
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.schema import EMPTY, Schema, bounds_problem

if TYPE_CHECKING:
    from openclaw_tw.interfaces import IConnection

Handler = Callable[["CallContext", dict[str, Any]], Any]
_MARKS = "__rpc_methods__"


def rpc(name: str, params: Schema | None = EMPTY,
        advertise: bool | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a method of a family class as the handler of RPC method ``name``.

    ``params`` is the closed params schema (``EMPTY`` for none; ``None`` only for a handler
    that validates its own params); ``advertise`` overrides the scope table's flag.  Marks
    stack, top first, for a handler serving aliases (``sessions.get``/``sessions.describe``).
    """

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        marks = fn.__dict__.setdefault(_MARKS, [])
        marks.insert(0, (name, params, advertise))
        return fn

    return mark


@attrs.frozen
class Method:
    name: str
    handler: Handler
    params: Schema | None  # None: accept any params (already validated by the handler)
    advertise: bool = True

    @property
    def where(self) -> str:
        """``file:line`` of the handler (the API index prints it)."""
        fn = inspect.unwrap(getattr(self.handler, "__func__", self.handler))
        code = getattr(fn, "__code__", None)
        if code is None:
            return "?"
        return f"{code.co_filename}:{code.co_firstlineno}"


@attrs.frozen
class CallContext:
    """What a handler may know about the caller."""

    conn: IConnection
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
        self._advertised: list[str] | None = None

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
        self._advertised = None

    def add_family(self, family: object) -> None:
        """Register every ``@rpc``-marked handler of ``family``, in definition order."""
        for attr, fn in vars(type(family)).items():
            for name, params, advertise in getattr(fn, _MARKS, ()):
                self.add(name, getattr(family, attr), params, advertise)

    def methods(self) -> Iterable[Method]:
        return self._methods.values()

    def __contains__(self, name: str) -> bool:
        return name in self._methods

    def advertised(self) -> list[str]:
        """The names hello-ok lists (~480 of them, on every connect): built once after the
        last registration and shared, so callers must not modify the list."""
        if self._advertised is None:
            self._advertised = [m.name for m in self._methods.values() if m.advertise]
        return self._advertised

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
        problem = bounds_problem(params)
        if problem is not None:
            raise invalid_request(f"invalid {method} params: {problem}")
        if entry.params is not None:
            params, problem = entry.params.normalize(params)
            if problem is not None:
                raise invalid_request(f"invalid {method} params: {problem}")
        result = entry.handler(ctx, params)
        if inspect.iscoroutine(result):
            return ensureDeferred(result)
        return result


def is_async(result: Any) -> bool:
    return isinstance(result, Deferred)


__all__ = ["CallContext", "GatewayError", "Method", "MethodTable", "is_async", "rpc"]
