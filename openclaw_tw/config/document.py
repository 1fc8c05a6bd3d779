"""The config file as a document: schema, validation, hashing, redaction, merge patch, writes
and the reload planner (reference §6.6 and §14).

``config.py`` turns a parsed file into ``GatewaySettings``; this module owns everything about
the file itself: the JSON Schema of the keys we implement (``SCHEMA``, also served by
``config.schema``), full validation that reports every problem with its path, the opaque
``hmac-sha256:v1:…`` hash that ``baseHash`` is compared with, secret redaction as
``__OPENCLAW_REDACTED__``, RFC 7396 merge patches with ``replacePaths``, atomic writes that
keep ``<path>.last-good``, and the longest-prefix reload planner.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from openclaw_tw.b64 import b64url
from openclaw_tw.config import settings as config

REDACTED = "__OPENCLAW_REDACTED__"
HASH_PREFIX = "hmac-sha256:v1:"
_HASH_KEY = b"openclaw-config-hash"
STALE_MESSAGE = "config changed since last load; re-run config.get and retry"

# Keys whose string values are secrets (the reference redacts these in every config view).
SECRET_KEYS = frozenset({"token", "password", "apiKey", "secret", "botToken", "appToken",
                         "signingSecret", "webhookSecret", "accessToken", "refreshToken",
                         "clientSecret", "privateKey"})


# -- schema ------------------------------------------------------------------------------------

def _obj(title: str, props: Mapping[str, Any] | None = None, closed: bool = True,
         description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "title": title}
    if description:
        out["description"] = description
    if props is not None:
        out["properties"] = dict(props)
    out["additionalProperties"] = not closed if props is not None else True
    return out


def _open(title: str, description: str = "") -> dict[str, Any]:
    """An object whose contents we pass through (modelled by the real gateway, not by us)."""
    return _obj(title, None, closed=False, description=description)


def _s(title: str, enum: Iterable[str] | None = None, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "title": title}
    if enum is not None:
        out["enum"] = list(enum)
    if description:
        out["description"] = description
    return out


def _b(title: str, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "boolean", "title": title}
    if description:
        out["description"] = description
    return out


def _strs(title: str) -> dict[str, Any]:
    return {"type": "array", "title": title, "items": {"type": "string"}}


_ENDPOINT = {"enabled": _b("Enabled")}

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "OpenClaw config",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string", "title": "Schema URL"},
        "meta": _open("Config metadata", "Written by tools (lastTouchedVersion, migrations)."),
        "wizard": _open("Onboarding wizard state"),
        "gateway": _obj("Gateway", {
            "mode": _s("Gateway Mode", ("local", "remote")),
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "title": "Gateway Port",
                     "description": "TCP port used by the gateway listener for API, control "
                                    "UI, and channel-facing ingress paths."},
            "bind": _s("Gateway Bind Mode", config.BIND_MODES),
            "customBindHost": _s("Custom Bind Host"),
            "auth": _obj("Gateway Auth", {
                "mode": _s("Auth Mode", config.AUTH_MODES),
                "token": _s("Gateway Token"),
                "password": _s("Gateway Password"),
                "allowTailscale": _b("Allow Tailscale identity"),
                "identityScopes": _open("Identity scopes"),
                "rateLimit": _obj("Auth rate limit", {
                    "maxAttempts": {"type": "integer", "minimum": 1},
                    "windowMs": {"type": "integer", "minimum": 1},
                    "lockoutMs": {"type": "integer", "minimum": 0},
                    "exemptLoopback": {"type": "boolean"},
                }),
                "trustedProxy": _open("Trusted proxy auth"),
            }),
            "trustedProxies": _strs("Trusted Proxies"),
            "allowRealIpFallback": _b("Allow X-Real-IP fallback"),
            "publicOrigin": _s("Public Origin"),
            "tls": _obj("Gateway TLS", {
                "enabled": _b("TLS Enabled"),
                "autoGenerate": _b("Auto-generate certificate"),
                "certPath": _s("Certificate Path"),
                "keyPath": _s("Key Path"),
                "caPath": _s("CA Path"),
            }),
            "http": _obj("Gateway HTTP", {
                "endpoints": _obj("Gateway HTTP Endpoints", {
                    "chatCompletions": _obj("Chat Completions", _ENDPOINT, closed=False),
                    "responses": _obj("Responses", _ENDPOINT, closed=False),
                }, description="HTTP endpoint feature toggles under the gateway API surface."),
                "securityHeaders": _open("Security headers"),
            }),
            "controlUi": _obj("Control UI", {
                "enabled": _b("Enabled"),
                "basePath": _s("Base Path"),
                "root": _s("Root"),
                "allowedOrigins": _strs("Allowed Origins"),
            }, closed=False),
            "reload": _obj("Config Reload", {"mode": _s("Reload Mode", ("hybrid", "off"))}),
            "nodes": _open("Nodes"),
            "tools": _obj("Gateway Tools", {"allow": _strs("Allow"), "deny": _strs("Deny")}),
            "remote": _open("Remote gateway (client side)"),
            "roles": _open("Roles"),
            "terminal": _open("Terminal"),
            "tailscale": _open("Tailscale"),
            "push": _open("Push"),
            "cliAgents": _open("CLI agents"),
        }),
        "discovery": _obj("Discovery", {
            "mdns": _obj("mDNS", {"mode": _s("mDNS Mode", ("off", "minimal", "full"))}),
            "wideArea": _open("Wide-area DNS-SD"),
        }),
        "session": _open("Sessions"),
        "agents": _open("Agents"),
        "models": _open("Models"),
        "channels": _open("Channels"),
        "bindings": {"type": "array", "title": "Route bindings",
                     "description": "Which agent answers a channel/account/peer (first match "
                                    "by specificity).",
                     "items": {"type": "object", "additionalProperties": True}},
        "hooks": _obj("Hooks", {
            "enabled": _b("Hooks Enabled"),
            "token": _s("Hooks Token"),
            "path": _s("Hooks Path"),
            "allowRequestSessionKey": _b("Allow request session key"),
            "allowedSessionKeyPrefixes": {"type": "array", "items": {"type": "string"},
                                          "title": "Allowed session key prefixes"},
        }, closed=False),
        "cron": _open("Cron"),
        "logging": _open("Logging"),
        "tools": _open("Tools"),
        "messages": _open("Messages"),
    },
}


def schema_at(path: str) -> dict[str, Any] | None:
    node: Any = SCHEMA
    for part in split_path(path):
        props = node.get("properties") if isinstance(node, dict) else None
        if props is None or part not in props:
            return None
        node = props[part]
    return node


def split_path(path: str) -> list[str]:
    return [p for p in path.split(".") if p] if path else []


# -- validation --------------------------------------------------------------------------------

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or \
            isinstance(value, float) and value.is_integer()
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _walk(schema: Mapping[str, Any], value: Any, path: str, out: list[dict[str, str]]) -> None:
    kind = schema.get("type")
    where = path or "<root>"
    if kind and not _type_ok(kind, value):
        out.append({"path": where, "message": f"must be {kind}"})
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        out.append({"path": where, "message": f"must be one of {allowed}"})
    if "minimum" in schema and value < schema["minimum"]:
        out.append({"path": where, "message": f"must be >= {schema['minimum']}"})
    if "maximum" in schema and value > schema["maximum"]:
        out.append({"path": where, "message": f"must be <= {schema['maximum']}"})
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            _walk(schema["items"], item, f"{path}.{i}" if path else str(i), out)
    if kind == "object":
        props = schema.get("properties") or {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in props:
                _walk(props[key], item, sub, out)
            elif schema.get("additionalProperties") is False:
                out.append({"path": sub, "message": "unknown key"})


def schema_issues(data: Any) -> list[dict[str, str]]:
    """The problems the schema alone finds (tests cross-check this against jsonschema)."""
    issues: list[dict[str, str]] = []
    _walk(SCHEMA, data, "", issues)
    return issues


def validate(data: Any) -> list[dict[str, str]]:
    """Every problem in a parsed config, each ``{path, message}``; empty when valid.

    Beyond the schema, the file must also resolve into settings (the checks ``config.resolve``
    makes, e.g. ``hooks.path`` not ``/``, password mode needing a password)."""
    issues = schema_issues(data)
    if not issues:
        problem = resolve_problem(data)
        if problem is not None:
            issues.append(problem)
    return issues


def resolve_problem(data: Mapping[str, Any]) -> dict[str, str] | None:
    try:
        config._http_settings(data)
    except config.ConfigError as e:
        text = str(e)
        path = text.split(" ", 1)[0] if "." in text.split(" ", 1)[0] else "<root>"
        return {"path": path, "message": text}
    return None


def parse(text: str) -> dict[str, Any]:
    """Parse JSON5 text; ``ConfigError`` with the parser's message on failure."""
    try:
        data = config.decode_json5(text)
    except ValueError as e:
        raise config.ConfigError(f"invalid JSON5: {e}") from None
    if not isinstance(data, dict):
        raise config.ConfigError("the top level must be an object")
    return data


# -- hashing and redaction ---------------------------------------------------------------------

def hash_text(raw: str | None) -> str:
    digest = hmac.new(_HASH_KEY, (raw or "").encode("utf-8"), hashlib.sha256).digest()
    return HASH_PREFIX + b64url(digest)


def _secrets(value: Any, out: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in SECRET_KEYS and isinstance(v, str) and v:
                out.add(v)
            else:
                _secrets(v, out)
    elif isinstance(value, list):
        for v in value:
            _secrets(v, out)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_KEYS and isinstance(v, str) and v else redact(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_text(raw: str, data: Any) -> str:
    """The raw file with every secret string literal replaced by the redaction marker."""
    found: set[str] = set()
    _secrets(data, found)
    for secret in sorted(found, key=len, reverse=True):
        for quote in ('"', "'"):
            raw = raw.replace(f"{quote}{secret}{quote}", f'"{REDACTED}"')
    return raw


def restore_redacted(new: Any, old: Any) -> Any:
    """Put back the current secret wherever a client echoed the redaction marker."""
    if isinstance(new, dict):
        return {k: (old.get(k) if v == REDACTED and isinstance(old, dict) else
                    restore_redacted(v, old.get(k) if isinstance(old, dict) else None))
                for k, v in new.items()}
    if isinstance(new, list):
        return [restore_redacted(v, old[i] if isinstance(old, list) and i < len(old) else None)
                for i, v in enumerate(new)]
    return new


def unresolved_redactions(value: Any, path: str = "") -> list[str]:
    if value == REDACTED:
        return [path or "<root>"]
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += unresolved_redactions(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += unresolved_redactions(v, f"{path}.{i}" if path else str(i))
    return out


# -- merge patch and diff ----------------------------------------------------------------------

def merge_patch(target: Any, patch: Any, replace_paths: Iterable[str] = (), _path: str = "") -> Any:
    """RFC 7396 merge patch; at a path listed in ``replace_paths`` the value is replaced whole."""
    replace = set(replace_paths)
    if not isinstance(patch, dict) or _path in replace and _path:
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        sub = f"{_path}.{key}" if _path else key
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, replace, sub)
    return result


def changed_paths(old: Any, new: Any, path: str = "") -> list[str]:
    """Leaf-most paths whose values differ (a whole subtree added/removed counts once)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                out.append(sub)
            else:
                out += changed_paths(old[key], new[key], sub)
        return out
    return [] if old == new else [path or "<root>"]


# -- reload planner ----------------------------------------------------------------------------

HOT, RESTART, NONE = "hot", "restart", "none"
RELOAD_RULES: dict[str, str] = {
    "$schema": NONE, "meta": NONE, "wizard": NONE,
    "gateway": RESTART,
    "gateway.http.endpoints": HOT, "gateway.http.securityHeaders": HOT,
    "gateway.tools": HOT, "gateway.nodes": HOT, "gateway.cliAgents": HOT,
    "gateway.terminal": HOT, "gateway.push": HOT, "gateway.publicOrigin": HOT,
    "gateway.controlUi": HOT, "gateway.controlUi.basePath": RESTART,
    "gateway.controlUi.root": RESTART,
    "gateway.auth.token": HOT, "gateway.auth.password": HOT,
    "gateway.auth.allowTailscale": HOT, "gateway.auth.identityScopes": HOT,
    "gateway.auth.trustedProxy": HOT, "gateway.auth.rateLimit": HOT,
    "gateway.roles": HOT, "gateway.trustedProxies": HOT, "gateway.allowRealIpFallback": HOT,
    "gateway.reload": HOT, "gateway.remote": HOT,
    "discovery": RESTART, "discovery.mdns.mode": HOT,
    "agents": HOT, "models": HOT, "hooks": HOT, "cron": HOT, "session": HOT,
    "messages": HOT, "tools": HOT, "logging": HOT, "channels": HOT, "bindings": HOT,
}


def reload_kind(path: str) -> str:
    """Longest matching prefix wins; a path no rule matches needs a restart."""
    parts = split_path(path)
    for n in range(len(parts), 0, -1):
        kind = RELOAD_RULES.get(".".join(parts[:n]))
        if kind is not None:
            return kind
    return RESTART


def plan(paths: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {HOT: [], RESTART: [], NONE: []}
    for path in paths:
        out[reload_kind(path)].append(path)
    return out


def lookup(path: str) -> dict[str, Any] | None:
    """``config.schema.lookup``: the schema at a dotted path, its reload kind and children."""
    node = schema_at(path)
    if node is None:
        return None
    schema = {k: v for k, v in node.items() if k not in ("properties", "items")}
    children = []
    for key, sub in (node.get("properties") or {}).items():
        child = f"{path}.{key}" if path else key
        children.append({"key": key, "path": child, "type": sub.get("type"), "required": False,
                         "hasChildren": bool(sub.get("properties")) or sub.get("type") == "object",
                         "reloadKind": reload_kind(child), "hintPath": child})
    title = node.get("title", path)
    hint: dict[str, Any] = {"label": title}
    if node.get("description"):
        hint["help"] = node["description"]
    return {"path": path, "schema": schema, "reloadKind": reload_kind(path) if path else RESTART,
            "hint": hint, "hintPath": path, "children": children}


# -- writes ------------------------------------------------------------------------------------

def write(path: Path, text: str) -> None:
    """Atomic write (temp, fsync, rename); the file being replaced is kept as ``.last-good``."""
    try:
        previous = path.read_bytes()
    except FileNotFoundError:
        previous = None
    if previous is not None:
        config.atomic_write(path.with_name(path.name + ".last-good"), previous)
    config.atomic_write(path, text.encode("utf-8"))


def dump(data: Any) -> str:
    """JSON text for a config we generate (JSON is valid JSON5)."""
    import json

    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

