"""The slash commands ``chat.metadata`` lists for the Control UI's composer.

The real gateway lists its ~70 native, skill and plugin commands.  The Control UI runs some of
them itself through gateway methods (captured against 2026.9.6 and against ours): ``/new``
opens a new session (``sessions.create``), ``/stop`` aborts the run (``sessions.abort``),
``/compact`` compacts the transcript (``sessions.compact``), ``/model <provider/model>`` sets
the session's model (``sessions.patch``) and ``/help`` lists the commands from this very list.
Everything else it sends as message text for the gateway to interpret (``/reset``, ``/status``,
``/think`` ...), which this gateway does not do: a message is a message.  So exactly the five
it runs through methods we serve are listed, in the real entry shape (name, native name, text
aliases, description, category, source, scope, whether it takes arguments and which).
"""

from __future__ import annotations

from typing import Any


def _command(name: str, description: str, category: str,
             args: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "nativeName": name, "textAliases": [f"/{name}"],
                             "description": description, "category": category,
                             "source": "native", "scope": "both",
                             "acceptsArgs": bool(args)}
    if args:
        entry["args"] = args
    return entry


COMMANDS: tuple[dict[str, Any], ...] = (
    _command("help", "List the commands available here.", "status"),
    _command("new", "Open a new session.", "session"),
    _command("stop", "Abort the run in progress.", "session"),
    _command("compact", "Compact this session's transcript.", "session"),
    _command("model", "Show or set this session's model (provider/model).", "options",
             [{"name": "model", "description": "provider/model", "type": "string"}]),
)


def commands() -> list[dict[str, Any]]:
    """A fresh copy for each answer (callers may not share the catalog's dicts)."""
    return [{**c, "textAliases": list(c["textAliases"]),
             **({"args": [dict(a) for a in c["args"]]} if "args" in c else {})}
            for c in COMMANDS]
