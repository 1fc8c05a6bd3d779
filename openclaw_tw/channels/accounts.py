"""Which channel accounts the config enables: ``channels.<name>`` (+ ``accounts.<id>``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABELS = {"telegram": "Telegram", "irc": "IRC", "matrix": "Matrix"}
DETAIL_LABELS = {"telegram": "Telegram Bot", "irc": "IRC", "matrix": "Matrix"}

Accounts = dict[str, dict[str, dict[str, Any]]]


def configured_accounts(raw: Mapping[str, Any]) -> Accounts:
    """``{channel: {accountId: account config}}`` for the known, enabled channels; an account's
    keys override the channel's top-level keys."""
    channels = raw.get("channels")
    out: Accounts = {}
    if not isinstance(channels, Mapping):
        return out
    for name in LABELS:
        cfg = channels.get(name)
        if not isinstance(cfg, Mapping) or cfg.get("enabled") is False:
            continue
        base = {k: v for k, v in cfg.items() if k != "accounts"}
        accounts = cfg.get("accounts")
        if isinstance(accounts, Mapping) and accounts:
            out[name] = {str(a): {**base, **(v if isinstance(v, Mapping) else {})}
                         for a, v in accounts.items()
                         if not (isinstance(v, Mapping) and v.get("enabled") is False)}
        else:
            out[name] = {"default": base}
    return out


def has_credentials(channel: str, cfg: Mapping[str, Any]) -> bool:
    if channel == "telegram":
        return bool(cfg.get("botToken") or cfg.get("tokenFile"))
    if channel == "irc":
        return bool(cfg.get("host") and cfg.get("nick"))
    return bool(cfg.get("homeserver") and (cfg.get("accessToken") or cfg.get("password")))
