"""sessions.groups.*: the sidebar's session groups (``sessions/groups.py``).

A session joins a group through ``sessions.patch {category}``; these methods list and order the
groups, rename and delete them (moving or clearing their members' category), as the real
gateway does, with its answers and error messages (captured against 2026.9.6).

Group defaults (``sessions.groups.update``: a working directory and a worktree choice for new
sessions of the group) are settings this gateway cannot honour: every session runs in its
agent's workspace and there are no worktrees.  ``sessions.groups.defaults`` therefore lists each
group with no defaults (the real answer for a group that has none), and an update that would set
one is refused with a message saying so; clearing them (``cwd: null, worktree: false``) is what
is already true and succeeds.  ``sessions.groups.update`` is not advertised in hello-ok, so the
Control UI shows its "New session defaults" item disabled instead of a dialog that cannot save.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.errors import clip, invalid_request
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Arr, Bool, Nullable, Obj, Str
from openclaw_tw.sessions.groups import GroupNotEmpty, SessionGroups, UnknownGroup
from openclaw_tw.sessions.store import SessionRow

_NAME = Str(min_len=1, max_len=512)
EMPTY = Obj()
PUT = Obj({"names": Arr(_NAME)}, {"sectionOrder": Arr(_NAME)})
RENAME = Obj({"name": _NAME, "to": _NAME})
UPDATE = Obj({"name": _NAME, "cwd": Nullable(Str(min_len=1)), "worktree": Bool()})
DELETE = Obj({"name": _NAME})
NO_DEFAULTS = ("session group defaults are not supported by this gateway: every session runs "
               "in its agent's workspace, with no per-group folder or worktree")


class SessionGroupsMethods:
    """sessions.groups.list/defaults/put/rename/update/delete."""

    def __init__(self, groups: SessionGroups, broadcast: Callable[..., int],
                 now_ms: Callable[[], int],
                 session_changed: Callable[[SessionRow, str], None]) -> None:
        self.groups = groups
        self.broadcast = broadcast
        self.now_ms = now_ms
        self.session_changed = session_changed

    def _groups_changed(self, _: Any = None) -> None:
        self.broadcast("sessions.changed", {"reason": "groups", "ts": self.now_ms()},
                       scope=S.READ, drop_if_slow=True, predicate=_subscribed)

    def _absorbed(self) -> Deferred[bool]:
        """Register the categories sessions carry; tell subscribers when that added any."""
        d = self.groups.absorb()
        d.addCallback(lambda added: added and self._groups_changed())
        return d

    @rpc("sessions.groups.list", EMPTY)
    def groups_list(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self._absorbed().addCallback(lambda _: self.groups.listing())

    @rpc("sessions.groups.defaults", EMPTY)
    def defaults(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self._absorbed().addCallback(lambda _: self._defaults())

    def _defaults(self) -> dict[str, Any]:
        return {"defaults": [{"name": g.name} for g in self.groups.ordered()]}

    @rpc("sessions.groups.put", PUT)
    def put(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        def replace(_: Any) -> Deferred[None]:
            try:
                return self.groups.put(params["names"], params.get("sectionOrder"))
            except GroupNotEmpty as e:
                raise invalid_request(str(e)) from None

        d = self._absorbed().addCallback(replace)
        d.addCallback(self._groups_changed)
        return d.addCallback(lambda _: {"ok": True, **self.groups.listing()})

    @rpc("sessions.groups.rename", RENAME)
    def rename(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self._retire(lambda: self.groups.rename(params["name"], params["to"]),
                            params["name"])

    @rpc("sessions.groups.delete", DELETE)
    def delete(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self._retire(lambda: self.groups.delete(params["name"]), params["name"])

    def _retire(self, change: Callable[[], Deferred[int]], name: str
                ) -> Deferred[dict[str, Any]]:
        members: list[SessionRow] = []

        def apply(_: Any) -> Deferred[int]:
            members.extend(self.groups.members(name.strip()))
            try:
                return change()
            except UnknownGroup as e:
                self._groups_changed()  # the real gateway tells subscribers either way
                raise invalid_request(str(e)) from None

        def done(moved: int) -> dict[str, Any]:
            for row in members:
                self.session_changed(row, "patch")
            self._groups_changed()
            return {"ok": True, **self.groups.listing(), "updatedSessions": moved}

        return self._absorbed().addCallback(apply).addCallback(done)

    @rpc("sessions.groups.update", UPDATE, advertise=False)
    def update(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        cwd = params["cwd"]
        if cwd and not os.path.isabs(cwd):
            raise invalid_request("session group cwd must be absolute")
        name = params["name"].strip()
        if not name:
            raise invalid_request("session group name must not be empty")

        def check(_: Any) -> dict[str, Any]:
            if name not in self.groups.groups:
                raise invalid_request(f"unknown session group: {clip(name)}")
            if cwd is not None or params["worktree"]:
                raise invalid_request(NO_DEFAULTS)
            self._groups_changed()
            return {"ok": True, **self._defaults()}

        return self._absorbed().addCallback(check)


def _subscribed(conn: Any) -> bool:
    return "sessions" in conn.subscriptions
