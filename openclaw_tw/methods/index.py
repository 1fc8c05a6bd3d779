"""The API's index: every registered method with its scope, params fields and handler.

``openclaw-tw methods`` prints it (``--json`` for machines); the scope column says where the
scope comes from — the reference's method table, a reserved admin prefix, or a rule computed
from the params (``dynamic``) — so a method that would silently fall back to admin stands out.
"""

from __future__ import annotations

import os
from typing import Any

from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import MethodTable
from openclaw_tw.protocol.schema import AnyValue, Obj

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def scope_source(method: str) -> str:
    """'table' (the reference's), 'ours' (scopes.EXTENSIONS), 'prefix' (a reserved admin
    prefix), or 'default' (unclassified: admin)."""
    if method in S.EXTENSIONS:
        return "ours"
    if method in S.METHOD_POLICY:
        return "table"
    if method.startswith(S._ADMIN_PREFIXES):
        return "prefix"
    return "default"


def rows(table: MethodTable) -> list[dict[str, Any]]:
    out = []
    for m in sorted(table.methods(), key=lambda m: m.name):
        schema = m.params
        required: list[str] = []
        typed: list[str] = []
        accepted: list[str] = []
        if isinstance(schema, Obj):
            required = sorted(schema.required)
            typed = sorted(k for k, v in schema.optional.items() if not isinstance(v, AnyValue))
            accepted = sorted(k for k, v in schema.optional.items() if isinstance(v, AnyValue))
        where = m.where
        if where.startswith(_ROOT + os.sep):
            where = where[len(_ROOT) + 1:]
        out.append({"method": m.name, "scope": S.policy_scope(m.name),
                    "scopeSource": scope_source(m.name), "advertised": m.advertise,
                    "params": "handler-validated" if schema is None else
                    ("closed" if isinstance(schema, Obj) and schema.closed else "open"),
                    "required": required, "optional": typed, "accepted": accepted,
                    "handler": where})
    return out


def render(index: list[dict[str, Any]]) -> str:
    lines = [f"{len(index)} methods (scope source: table = the reference's method table, "
             "ours = not in the reference, prefix = reserved admin prefix; * = required "
             "param, ~ = accepted untyped)", ""]
    for r in index:
        params = [f"*{f}" for f in r["required"]] + r["optional"]
        if r["accepted"]:
            params.append(f"~{len(r['accepted'])} more")
        if r["params"] == "handler-validated":
            params = ["(validated by the handler)"]
        hidden = "" if r["advertised"] else " (not advertised)"
        lines.append(f"{r['method']:<32} {r['scope']:<26} {r['scopeSource']:<7} "
                     f"{r['handler']}{hidden}")
        if params:
            lines.append(f"    {' '.join(params)}")
    return "\n".join(lines)


def build_index() -> list[dict[str, Any]]:
    """Build every component on a throw-away state dir and a test clock, then index the
    method table (nothing of the user's state is read or written)."""
    import tempfile

    from twisted.internet.task import Clock

    from openclaw_tw.app import build
    from openclaw_tw.config.settings import resolve

    with tempfile.TemporaryDirectory(prefix="openclaw-index-") as state:
        settings = resolve({"state-dir": state, "token": "index", "port": "0"},
                           env={"HOME": state})
        app = build(settings, Clock(), env={"OPENCLAW_SKIP_CRON": "1"})
        try:
            return rows(app.table)
        finally:
            for db in (app.devices_db, app.sessions_db, app.nodes_db, app.cron_db):
                db.close()
