"""The start-up report of optional features and their packages (``openclaw_tw.daemon.features``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from twisted.trial import unittest

from openclaw_tw.config.settings import GatewaySettings
from openclaw_tw.daemon import features


def settings(raw: dict[str, Any], **kw: Any) -> GatewaySettings:
    return GatewaySettings(port=1, bind="loopback", host="127.0.0.1", auth_mode="token",
                           token="t", password=None, token_source="flag",
                           config_path=Path("/x/openclaw.json"), state_dir=Path("/x"),
                           config_exists=True, raw=raw, **kw)


class Report(unittest.SynchronousTestCase):
    def test_nothing_configured(self) -> None:
        s = attrs.evolve(settings({}), config_exists=False)
        lines, problem = features.report(features.configured(s, "off"))
        self.assertEqual(lines, ["openclaw: optional features: none configured "
                                 "(built-in offline model)"])
        self.assertIsNone(problem)

    def test_each_feature_names_its_packages(self) -> None:
        raw = {"models": {"providers": {"local": {"baseUrl": "http://127.0.0.1:1/v1"},
                                        "other": {"api": "anthropic-messages"}}},
               "channels": {"telegram": {"botToken": "1:x"},
                            "irc": {"host": "h", "nick": "n"},
                            "matrix": {"enabled": False}}}
        found = features.configured(settings(raw, tls_enabled=True, hooks_enabled=True),
                                    "minimal")
        self.assertEqual([(f.name, f.detail, f.modules) for f in found], [
            ("config file", "/x/openclaw.json", ("pyjson5",)),
            ("model providers", "local", ("treq",)),
            ("channel Telegram", "default", ("treq",)),
            ("channel IRC", "default", ("twisted.words", "OpenSSL", "service_identity")),
            ("TLS", "wss:// and https://", ("OpenSSL", "service_identity")),
            ("mDNS", "minimal", ("zeroconf",)),
            ("HTTP endpoints", "/hooks", ()),
        ])
        lines, problem = features.report(found)
        self.assertIsNone(problem)
        self.assertIn("openclaw:   model providers: local [treq ok]", lines)

    def test_a_missing_package_is_one_line_naming_it(self) -> None:
        found = [features.Feature("model providers", "local", ("treq_not_installed_here",))]
        lines, problem = features.report(found)
        self.assertIn("openclaw:   model providers: local [MISSING treq_not_installed_here]",
                      lines)
        self.assertEqual(problem, "openclaw: model providers (local) needs the Python package "
                                  "treq_not_installed_here, which is not installed "
                                  "(pip install treq_not_installed_here)")
