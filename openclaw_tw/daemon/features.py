"""Which optional features the settings turn on, and whether each one's packages are installed.

``makeService`` prints one line per configured feature before the gateway serves, and stops
with one line naming the missing package instead of a traceback from deep inside the first
request (or the first reconnect loop) that needed it. Presence is checked with
``importlib.util.find_spec``: nothing is imported here, so the check costs no memory.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import attrs

from openclaw_tw.channels.accounts import LABELS, configured_accounts

# import name -> the distribution that provides it (what `pip install` wants)
DISTRIBUTIONS = {
    "treq": "treq",
    "zeroconf": "zeroconf",
    "OpenSSL": "pyopenssl",
    "service_identity": "service-identity",
    "twisted.words": "twisted",
    "pyjson5": "pyjson5",
}


@attrs.frozen
class Feature:
    name: str
    detail: str
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        return [DISTRIBUTIONS.get(m, m) for m in self.modules if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing or broken
        return False


def _model_providers(raw: Mapping[str, Any]) -> list[str]:
    providers = (raw.get("models") or {}).get("providers") if isinstance(
        raw.get("models"), Mapping) else None
    if not isinstance(providers, Mapping):
        return []
    return [str(p) for p, spec in providers.items() if isinstance(spec, Mapping) and
            spec.get("api", "openai-completions") in ("openai-completions", "openai")]


def configured(settings: Any, mdns_mode: str) -> list[Feature]:
    """The optional features these settings turn on, in start-up order."""
    raw = settings.raw
    out: list[Feature] = []
    if settings.config_exists:
        out.append(Feature("config file", str(settings.config_path), ("pyjson5",)))
    providers = _model_providers(raw)
    if providers:
        out.append(Feature("model providers", ", ".join(providers), ("treq",)))
    for channel, accounts in configured_accounts(raw).items():
        for account_id, cfg in accounts.items():
            if channel == "irc":
                mods: tuple[str, ...] = ("twisted.words",)
                if cfg.get("tls", True) is not False:
                    mods += ("OpenSSL", "service_identity")
            else:
                mods = ("treq",)
            out.append(Feature(f"channel {LABELS[channel]}", account_id, mods))
    if settings.tls_enabled:
        out.append(Feature("TLS", "wss:// and https://", ("OpenSSL", "service_identity")))
    if mdns_mode != "off":
        out.append(Feature("mDNS", mdns_mode, ("zeroconf",)))
    endpoints = [path for on, path in ((settings.chat_completions_enabled, "/v1/chat/completions"),
                                       (settings.responses_enabled, "/v1/responses"),
                                       (settings.hooks_enabled, settings.hooks_path)) if on]
    if endpoints:
        out.append(Feature("HTTP endpoints", ", ".join(endpoints), ()))
    return out


def report(features: list[Feature]) -> tuple[list[str], str | None]:
    """Lines to print, and the one-line error when a feature's package is missing."""
    if not features:
        return ["openclaw: optional features: none configured (built-in offline model)"], None
    lines = ["openclaw: optional features:"]
    problem = None
    for f in features:
        missing = f.missing()
        deps = ", ".join(DISTRIBUTIONS.get(m, m) for m in f.modules)
        state = f"MISSING {', '.join(missing)}" if missing else (f"{deps} ok" if deps else "ok")
        lines.append(f"openclaw:   {f.name}: {f.detail} [{state}]")
        if missing and problem is None:
            problem = (f"openclaw: {f.name} ({f.detail}) needs the Python package "
                       f"{' and '.join(missing)}, which is not installed "
                       f"(pip install {' '.join(missing)})")
    return lines, problem
