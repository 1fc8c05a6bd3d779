"""The reads the Control UI makes for features this gateway does not have, answered truthfully.

Each is the real gateway's answer for "there is none" (captured from 2026.9.6 on a fresh
install and after a chat turn), which is true here at all times:

* ``board.get`` — no session dashboards: revision 0, no tabs, no widgets.
* ``progressCard.get`` — no progress cards: ``{card: null}``.
* ``sessions.companion.state`` — no companion side-chat: no exchanges.
* ``session.discussion.info`` — no discussion threads: ``{state: "none"}``.
* ``tasks.list`` — no background tasks; ``taskSuggestions.list`` — no task suggestions.
* ``mentions.list`` — no user profiles to mention: revision 0, no items (``gatewayInstanceId``
  is this process's boot id, as in the real answer).
* ``sessions.catalog.list`` — no external session catalogs (the real gateway lists Claude Code
  sessions found on its hosts): no catalogs.
* ``controlUi.sessionPullRequests.subscribe`` — no pull request tracking: the keys are checked
  as the real gateway checks them, and the answer is ``{subscribed: false}`` (nothing will be
  sent for them), the real answer for a subscription that watches nothing.

The actions of these features (``board.update``, ``sessions.companion.ask``, ``tasks.cancel``,
...) are not methods here, so hello-ok does not advertise them and the UI does not offer them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openclaw_tw.errors import invalid_request
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Arr, Bool, Int, Obj, OneOf, Record, Str
from openclaw_tw.sessions.keys import resolve_key

_S1 = Str(min_len=1)
PER_SESSION = Obj({"sessionKey": _S1}, {"agentId": _S1})
TASK_STATUS = Str(enum=("queued", "running", "completed", "failed", "cancelled", "timed_out"))
TASKS = Obj(optional={"status": OneOf(TASK_STATUS, Arr(TASK_STATUS)), "agentId": _S1,
                      "sessionKey": _S1, "limit": Int(1, 500), "cursor": Str(max_len=512),
                      "sortBy": Str(enum=("updatedAt", "endedAt"))})
SUGGESTIONS = Obj(optional={"sessionKey": Str(min_len=1, max_len=512),
                            "agentId": Str(min_len=1, max_len=128)})
CATALOGS = Obj(optional={
    "catalogId": _S1, "metadataOnly": Bool(), "cursors": Record(Str()), "agentId": _S1,
    "progressId": Str(min_len=1, max_len=128), "allowPartialResults": Bool(),
    "search": Str(), "limitPerHost": Int(minimum=1), "hostIds": Arr(_S1)})
MAX_PR_KEYS = 200
MAX_KEY_CHARS = 512


class AbsentFeaturesMethods:
    def __init__(self, boot_id: Callable[[], str]) -> None:
        self.boot_id = boot_id

    @rpc("board.get", PER_SESSION)
    def board_get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        key = resolve_key(params["sessionKey"], agent_id=params.get("agentId"))
        return {"sessionKey": key, "revision": 0, "tabs": [], "widgets": []}

    @rpc("progressCard.get", PER_SESSION)
    def progress_card_get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"card": None}

    @rpc("sessions.companion.state", PER_SESSION)
    def companion_state(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"exchanges": []}

    @rpc("session.discussion.info", PER_SESSION)
    def discussion_info(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"state": "none"}

    @rpc("tasks.list", TASKS)
    def tasks_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"tasks": []}

    @rpc("taskSuggestions.list", SUGGESTIONS)
    def task_suggestions_list(self, ctx: CallContext, params: dict[str, Any]
                              ) -> dict[str, Any]:
        return {"suggestions": []}

    @rpc("mentions.list")
    def mentions_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"gatewayInstanceId": self.boot_id(), "revision": 0, "items": []}

    @rpc("sessions.catalog.list", CATALOGS)
    def catalog_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"catalogs": []}

    # The real handler parses these params itself (extra fields pass), with one message.
    @rpc("controlUi.sessionPullRequests.subscribe", None)
    def pull_requests_subscribe(self, ctx: CallContext, params: Any) -> dict[str, Any]:
        keys = _pr_keys(params.get("sessionKeys")) if isinstance(params, dict) and \
            "sessionKeys" in params else None
        refresh = [] if keys is None or params.get("refreshSessionKeys") is None \
            else _pr_keys(params["refreshSessionKeys"])
        if keys is None or refresh is None or not set(refresh) <= set(keys):
            raise invalid_request("invalid controlUi.sessionPullRequests.subscribe params")
        return {"subscribed": False}


def _pr_keys(value: Any) -> list[str] | None:
    if not isinstance(value, list) or len(value) > MAX_PR_KEYS:
        return None
    keys: list[str] = []
    for entry in value:
        if not isinstance(entry, str):
            return None
        key = entry.strip()
        if not key or len(key) > MAX_KEY_CHARS:
            return None
        if key not in keys:
            keys.append(key)
    return keys
