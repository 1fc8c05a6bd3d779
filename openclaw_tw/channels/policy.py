"""Inbound access decisions for a channel account: ``dmPolicy``, ``groupPolicy``, mention gating.

Pure functions over the account's config, so every provider applies the same rules:

- DMs (``dmPolicy``/``allowFrom``, or Matrix's ``dm.policy``/``dm.allowFrom``): ``pairing``
  (default) admits allow-listed or pairing-approved senders and asks everyone else to pair;
  ``allowlist`` admits only ``allowFrom``; ``open`` admits everyone only when the
  allow list holds ``"*"`` (otherwise only the listed senders — approvals never widen ``open``);
  ``disabled`` drops every DM.
- Groups: ``groupPolicy`` ``allowlist`` (default) admits groups listed in ``groups`` (or
  ``"*"``) and, when ``groupAllowFrom`` is set, only those senders; ``open`` admits any group;
  ``disabled`` drops group traffic.  In an admitted group the bot answers only when mentioned,
  unless the group (or ``"*"``) sets ``requireMention: false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Decision = Literal["process", "pair", "drop"]

DM_POLICIES = ("pairing", "allowlist", "open", "disabled")
GROUP_POLICIES = ("allowlist", "open", "disabled")


def _entries(value: Any) -> set[str]:
    if not isinstance(value, list):
        return set()
    return {str(v).strip() for v in value if str(v).strip()}


def _matches(entries: set[str], channel: str, sender: str) -> bool:
    return sender in entries or f"{channel}:{sender}" in entries


def _dm(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    dm = cfg.get("dm")
    return dm if isinstance(dm, Mapping) else {}


def dm_policy(cfg: Mapping[str, Any]) -> str:
    """``dmPolicy`` — or ``dm.policy`` (Matrix spells it so); ``dm.enabled: false`` disables."""
    dm = _dm(cfg)
    if dm.get("enabled") is False:
        return "disabled"
    return str(dm.get("policy", cfg.get("dmPolicy", "pairing")))


def dm_decision(cfg: Mapping[str, Any], channel: str, sender: str, approved: bool) -> Decision:
    policy = dm_policy(cfg)
    allow = _entries(_dm(cfg).get("allowFrom", cfg.get("allowFrom")))
    if policy == "disabled":
        return "drop"
    if policy == "open":
        return "process" if "*" in allow or _matches(allow, channel, sender) else "drop"
    if _matches(allow, channel, sender) or "*" in allow:
        return "process"
    if policy == "allowlist":
        return "drop"
    return "process" if approved else "pair"


def group_decision(cfg: Mapping[str, Any], channel: str, group: str, sender: str,
                   mentioned: bool) -> Decision:
    policy = cfg.get("groupPolicy", "allowlist")
    groups = cfg.get("groups") if isinstance(cfg.get("groups"), Mapping) else {}
    group_cfg = groups.get(group, groups.get("*"))
    if policy == "disabled":
        return "drop"
    if policy == "allowlist":
        if group_cfg is None:
            return "drop"
        senders = _entries(cfg.get("groupAllowFrom"))
        if senders and "*" not in senders and not _matches(senders, channel, sender):
            return "drop"
    require_mention = True
    if isinstance(group_cfg, Mapping) and group_cfg.get("requireMention") is False:
        require_mention = False
    if require_mention and not mentioned:
        return "drop"
    return "process"
