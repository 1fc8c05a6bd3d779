"""``hooks.mappings``: turn a POST to ``/hooks/<name>`` into wake/agent actions.

The first mapping whose ``match.path`` (sub-path after ``hooks.path``) and ``match.source``
(the payload's ``source``) both fit owns the request.  Templates fill ``{{payload.field}}`` /
``{{field}}`` (with ``[i]`` indexing), ``{{headers.x-name}}``, ``{{query.k}}``, ``{{path}}``
and ``{{now}}``; missing values render empty, objects as JSON.  ``forEach`` fans out over a
top-level payload array (at most 200 items; a missing, empty or non-array value makes no
actions, answered 204 as the reference documents).  JavaScript ``transform`` modules cannot
run in this gateway; such a mapping answers 500 "hook mapping failed" and says why in the log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from openclaw_tw import _json

MAX_FAN_OUT = 200
_TEMPLATE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class MappingError(Exception):
    """The mapping cannot produce actions (answered 500 "hook mapping failed")."""


def mappings_of(raw_config: Mapping[str, Any]) -> list[dict[str, Any]]:
    hooks = raw_config.get("hooks") or {}
    items = hooks.get("mappings") if isinstance(hooks, Mapping) else None
    return [m for m in (items or []) if isinstance(m, dict)]


def find(mappings: list[dict[str, Any]], sub_path: str, payload: dict[str, Any]
         ) -> tuple[int, dict[str, Any]] | None:
    for index, mapping in enumerate(mappings):
        match = mapping.get("match") or {}
        want_path = str(match.get("path", "")).strip("/")
        if want_path and want_path != sub_path:
            continue
        if "source" in match and payload.get("source") != match["source"]:
            continue
        return index, mapping
    return None


def lookup(root: Any, dotted: str) -> Any:
    value = root
    for name, index in _STEP.findall(dotted):
        if name:
            if name in ("__proto__", "constructor", "prototype") or not isinstance(value, dict):
                return None
            value = value.get(name)
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return None
            value = value[int(index)]
        if value is None:
            return None
    return value


def render(template: Any, context: dict[str, Any]) -> str:
    if not isinstance(template, str):
        return ""

    def fill(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr == "now":
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if expr == "path":
            return str(context["path"])
        head = expr.split(".", 1)[0].split("[", 1)[0]
        if head in ("payload", "headers", "query"):
            value = lookup(context, expr)
        else:
            value = lookup(context["payload"], expr)
        if value is None:
            return ""
        if isinstance(value, dict | list):
            return _json.dumps(value).decode("utf-8")
        return str(value)

    return _TEMPLATE.sub(fill, template)


def actions(index: int, mapping: dict[str, Any], sub_path: str, payload: dict[str, Any],
            headers: dict[str, str], query: dict[str, str]) -> list[dict[str, Any]]:
    """The wake/agent actions for one request (empty: nothing to do, 204)."""
    if mapping.get("transform"):
        raise MappingError("transform modules (JavaScript) are not supported by this gateway")
    kind = mapping.get("action", "agent")
    if kind not in ("agent", "wake"):
        raise MappingError(f"mapping action must be agent or wake, not {kind!r}")
    items: list[Any] = [payload]
    each = mapping.get("forEach")
    if each:
        if not isinstance(each, str) or "." in each:
            raise MappingError(f"forEach {each!r} is not a top-level payload key")
        value = payload.get(each)  # missing, empty or not an array: no actions (204)
        items = value[:MAX_FAN_OUT] if isinstance(value, list) else []
    out = []
    for item in items:
        scope = item if isinstance(item, dict) else {"item": item}
        context = {"payload": {**payload, **scope}, "headers": headers, "query": query,
                   "path": sub_path}
        if kind == "wake":
            text = render(mapping.get("textTemplate"), context).strip()
            if text:
                out.append({"kind": "wake", "text": text,
                            "mode": mapping.get("wakeMode", "now"),
                            "agentId": mapping.get("agentId")})
            continue
        message = render(mapping.get("messageTemplate"), context).strip()
        if not message:
            continue
        action: dict[str, Any] = {"kind": "agent", "message": message,
                                  "name": render(mapping.get("name"), context) or "Hook",
                                  "agentId": mapping.get("agentId"),
                                  "mappingId": mapping.get("id") or f"mapping-{index}"}
        if mapping.get("sessionKey"):
            key = render(mapping["sessionKey"], context).strip()
            if not key:
                raise MappingError("the rendered sessionKey is empty")
            action["sessionKey"] = key
        if mapping.get("sessionMode"):
            action["sessionMode"] = mapping["sessionMode"]  # isolated (default) | persistent
        for field in ("model", "thinking"):
            if mapping.get(field):
                action[field] = render(mapping[field], context)
        if mapping.get("timeoutSeconds"):
            action["timeoutSeconds"] = mapping["timeoutSeconds"]
        out.append(action)
    return out
