"""Roles, operator scopes, the core method -> scope table and the authorization rule.

The table of all 482 core methods (``data/method_scopes.json``) ships with the package, so
authorization is right for methods we add later: anything unclassified requires admin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from openclaw_tw.errors import GatewayError, invalid_request, missing_scope

ADMIN = "operator.admin"
READ = "operator.read"
WRITE = "operator.write"
APPROVALS = "operator.approvals"
PAIRING = "operator.pairing"
QUESTIONS = "operator.questions"
TALK = "operator.talk"
TALK_SECRETS = "operator.talk.secrets"
SESSIONS_READ = "operator.sessions.read"
SESSIONS_WRITE = "operator.sessions.write"

ROLE_OPERATOR = "operator"
ROLE_NODE = "node"
ROLES = frozenset({ROLE_OPERATOR, ROLE_NODE})

NODE_SCOPE = "node"
DYNAMIC_SCOPE = "dynamic"

# The scope set the real CLI asks for when calling a method it cannot classify.
CLI_DEFAULT_SCOPES = (ADMIN, READ, WRITE, APPROVALS, QUESTIONS, PAIRING, TALK_SECRETS)

_WRITE_IMPLIES = frozenset({READ, TALK, SESSIONS_READ, SESSIONS_WRITE})
_ADMIN_PREFIXES = ("config.", "exec.approvals.", "wizard.", "update.")


# package data, found as web/ui_build.py finds the dashboard (importlib.resources would add
# ~0.16 MiB of modules to every gateway for this one read)
_TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "method_scopes.json"


def _load_table() -> dict[str, dict[str, Any]]:
    raw = _TABLE_PATH.read_text("utf-8")
    table: dict[str, dict[str, Any]] = json.loads(raw)
    return table


METHOD_POLICY: dict[str, dict[str, Any]] = _load_table()

# Methods of ours that the reference does not have, classified here so none falls back to
# admin unnoticed (tests/unit/methods/test_index.py); not advertised, as the real gateway lacks them.
EXTENSIONS: dict[str, dict[str, Any]] = {
    # the counterpart of sessions.subscribe (the real UI unsubscribes by closing the socket)
    "sessions.unsubscribe": {"scope": READ, "advertise": False},
}


def scope_satisfied(required: str, granted: Iterable[str]) -> bool:
    """Does ``granted`` satisfy ``required`` under the implication rules (§5.2)?"""
    granted = granted if isinstance(granted, frozenset | set) else frozenset(granted)
    if not required.startswith("operator."):
        return False
    if required in granted or ADMIN in granted:
        return True
    if required in _WRITE_IMPLIES and WRITE in granted:
        return True
    if required == SESSIONS_READ and (READ in granted or SESSIONS_WRITE in granted):
        return True
    return False


def first_missing_scope(role: str, requested: Iterable[str], allowed: Iterable[str]
                        ) -> str | None:
    """The first of ``requested`` that ``allowed`` does not grant for ``role`` (operator
    scopes with their implications; another role's only by name under its own prefix), or
    ``None`` when all are granted.  Blank entries are ignored."""
    role = role.strip()
    granted = frozenset(a.strip() for a in allowed)
    for scope in requested:
        wanted = scope.strip()
        if not wanted:
            continue
        if role == ROLE_OPERATOR:
            if not scope_satisfied(wanted, granted):
                return scope
        elif not (wanted.startswith(role + ".") and wanted in granted):
            return scope
    return None


def normalize_token_scopes(scopes: Iterable[str]) -> list[str]:
    """A device token's scopes as stored: trimmed, unique, sorted, with what admin and write
    imply written out (admin adds read and write; write adds read)."""
    out = {s.strip() for s in scopes if s.strip()}
    if ADMIN in out:
        out.update((READ, WRITE))
    elif WRITE in out:
        out.add(READ)
    return sorted(out)


def policy_scope(method: str) -> str:
    """The declared scope of a method: core table, reserved prefixes, else admin."""
    entry = METHOD_POLICY.get(method) or EXTENSIONS.get(method)
    if entry is not None:
        return str(entry["scope"])
    if method.startswith(_ADMIN_PREFIXES):
        return ADMIN
    return ADMIN


def is_node_method(method: str) -> bool:
    entry = METHOD_POLICY.get(method)
    return entry is not None and entry["scope"] == NODE_SCOPE


# -- dynamic scopes (§5.3): computed from params --------------------------------------------

_ADMIN_NODE_COMMANDS = frozenset(
    {"browser.proxy", "browser.proxy.upload.v1", "fs.listDir", "terminal.upload",
     "system.execApprovals.get", "system.execApprovals.set"}
)
_SESSION_PATCH_WRITE_FIELDS = frozenset(
    {"key", "agentId", "label", "category", "pinned", "archived", "unread", "model",
     "thinkingLevel", "fastMode", "agentRuntime", "expectedSessionId", "verboseLevel",
     "reasoningLevel", "sendPolicy", "groupActivation", "permissionMode"}
)


def _p(params: Any) -> Mapping[str, Any]:
    return params if isinstance(params, dict) else {}


def _agent_scope(params: Any) -> str:
    message = _p(params).get("message")
    if isinstance(message, str):
        head = message.strip().lower()
        if head.startswith("/new") or head.startswith("/reset"):
            return ADMIN
    return WRITE


def _node_invoke_scope(params: Any) -> str:
    return ADMIN if _p(params).get("command") in _ADMIN_NODE_COMMANDS else WRITE


def _sessions_patch_scope(params: Any) -> str:
    p = _p(params)
    if p.get("permissionMode") == "full":
        return ADMIN
    return WRITE if all(k in _SESSION_PATCH_WRITE_FIELDS for k in p) else ADMIN


def _sessions_delete_scope(params: Any) -> str:
    p = _p(params)
    if p.get("archivedOnly") is True and set(p) <= {"key", "agentId", "archivedOnly",
                                                    "expectedSessionId"}:
        return WRITE
    return ADMIN


def _sessions_create_scope(params: Any) -> str:
    p = _p(params)
    if p.get("incognito") or p.get("execNode") or p.get("toolOverrides") or \
            p.get("permissionMode") == "full":
        return ADMIN
    return WRITE


def _talk_config_scopes(params: Any) -> tuple[str, ...]:
    return (READ, TALK_SECRETS) if _p(params).get("includeSecrets") is True else (READ,)


def _environments_list_scope(params: Any) -> str:
    return WRITE if _p(params).get("runtimeId") else READ


def _fs_list_dir_scope(params: Any) -> str:
    return ADMIN if _p(params).get("nodeId") else WRITE


def _channels_pairing_approve_scopes(params: Any) -> tuple[str, ...]:
    return (PAIRING, ADMIN) if _p(params).get("bootstrapCommandOwner") else (PAIRING,)


DynamicRule = Callable[[Any], "str | tuple[str, ...]"]

DYNAMIC_RULES: dict[str, DynamicRule] = {
    "agent": _agent_scope,
    "node.invoke": _node_invoke_scope,
    "sessions.patch": _sessions_patch_scope,
    "sessions.patchMany": _sessions_patch_scope,
    "sessions.delete": _sessions_delete_scope,
    "sessions.create": _sessions_create_scope,
    "sessions.dispatch": lambda params: WRITE,
    "sessions.move": lambda params: WRITE,
    "plugins.sessionAction": lambda params: WRITE,
    "talk.config": _talk_config_scopes,
    "environments.list": _environments_list_scope,
    "fs.listDir": _fs_list_dir_scope,
    "channels.pairing.approve": _channels_pairing_approve_scopes,
}


def required_scopes(method: str, params: Any) -> tuple[str, ...]:
    scope = policy_scope(method)
    if scope == DYNAMIC_SCOPE:
        rule = DYNAMIC_RULES.get(method)
        result = rule(params) if rule is not None else ADMIN
        return (result,) if isinstance(result, str) else result
    return (scope,)


def authorize(method: str, params: Any, role: str, scopes: frozenset[str]) -> None:
    """Raise the protocol's error if ``role``/``scopes`` may not call ``method`` (§5.3)."""
    if method == "health":
        return
    node_method = is_node_method(method)
    if role == ROLE_NODE:
        if not node_method:
            raise invalid_request("unauthorized role: node")
        return
    if node_method:
        raise invalid_request(f"unauthorized role: {role}")
    if method in ("device.scopes.requestUpgrade", "device.scopes.waitUpgrade"):
        return
    if ADMIN in scopes:
        return
    session_method = method.startswith("sessions.")
    for scope in required_scopes(method, params):
        if scope_satisfied(scope, scopes):
            continue
        if session_method and _narrow_session_scope_ok(scope, scopes):
            continue
        raise missing_scope(scope)


def _narrow_session_scope_ok(required: str, granted: frozenset[str]) -> bool:
    """Session methods also accept operator.sessions.read/write (§5.3 step 8)."""
    if required == READ:
        return SESSIONS_READ in granted or SESSIONS_WRITE in granted
    if required == WRITE:
        return SESSIONS_WRITE in granted
    return False


def is_unauthorized_role(error: GatewayError) -> bool:
    return error.message.startswith("unauthorized role:")


def advertised(method: str) -> bool:
    entry = METHOD_POLICY.get(method) or EXTENSIONS.get(method)
    return entry is None or entry.get("advertise", True) is not False
