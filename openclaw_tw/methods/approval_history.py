"""approval.history and exec.approval.grants.list/revoke: the Control UI's Approvals page.

``approval.history`` pages the terminal exec approvals ``approvals/history.py`` keeps for 30
days (allowed, denied, denied for want of an approval client, expired), newest first, in the
real gateway's item shape.  We have no plugin or system-agent approvals, so those kinds are
always an empty page.

``exec.approval.grants.list``/``revoke``: the standing grants an ``allow-always`` decision on a
cron job's exec mints (``approvals/grants.py``), in the real shape, newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.approvals.grants import StandingGrants
from openclaw_tw.approvals.history import ApprovalHistory, CursorError
from openclaw_tw.errors import invalid_request
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Int, Obj, Str

_S1 = Str(min_len=1)
# ApprovalHistoryParamsSchema; ExecApprovalGrantsListParamsSchema / ...RevokeParamsSchema
# (src-*.mjs: closedObject({limit?: int 1..500}) / closedObject({grantId: NonEmptyString})).
HISTORY = Obj(optional={"cursor": Str(min_len=1, max_len=512), "limit": Int(1, 100),
                        "kind": Str(enum=("exec", "plugin", "system-agent"))})
GRANTS_LIST = Obj(optional={"limit": Int(1, 500)})
GRANTS_REVOKE = Obj(required={"grantId": _S1})


class ApprovalHistoryMethods:
    def __init__(self, history: ApprovalHistory, base_path: Callable[[], str],
                 grants: StandingGrants | None = None) -> None:
        self._history = history
        self._base_path = base_path  # gateway.controlUi.basePath, read per call
        self._grants = grants

    @rpc("approval.history", HISTORY)
    def history(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        try:
            return self._history.page(
                cursor=params.get("cursor"), limit=params.get("limit"),
                kind=params.get("kind"), device_id=ctx.conn.device_id, admin=ctx.is_admin,
                base_path=self._base_path())
        except CursorError:
            raise invalid_request("invalid approval.history cursor") from None

    @rpc("exec.approval.grants.list", GRANTS_LIST)
    def grants_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        if self._grants is None:
            return {"grants": []}
        return {"grants": self._grants.listing(params.get("limit"))}

    @rpc("exec.approval.grants.revoke", GRANTS_REVOKE)
    def grants_revoke(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        if self._grants is None:
            return {"outcome": "not-found"}
        client = ctx.conn.client or {}
        by = str(client.get("displayName") or client.get("id") or "operator")
        return {"outcome": self._grants.revoke(params["grantId"], by)}
