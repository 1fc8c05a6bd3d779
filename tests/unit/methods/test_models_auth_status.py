"""models.authStatus (methods/models.py): the credentials of our configured providers.

The real gateway (openclaw 2026.9.6) with the bench's mock provider configured
(``models.providers.mock.apiKey: "bench-mock"``) answered, trimmed::

    {"ts": 1796613106054,
     "providers": [{"provider": "mock", "authProvider": "mock", "displayName": "mock",
                    "status": "static", "profiles": [], "apiKey": {"source": "config"}}],
     "providerCapabilities": [{"provider": "anthropic", "apiKeySupported": true, ...}, ...]}

and on a fresh install ``providers: []``.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import build_registry
from openclaw_tw.agent.offline import OfflineProvider
from openclaw_tw.methods.models import ModelsMethods, key_source
from tests.support.helpers import call, hello, make_app, ok

REAL_MOCK_ENTRY = {"provider": "mock", "authProvider": "mock", "displayName": "mock",
                   "status": "static", "profiles": [], "apiKey": {"source": "config"}}


def provider(api_key: Any = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"baseUrl": "http://127.0.0.1:9/v1", "api": "openai-completions",
                            "models": [{"id": "m"}], **extra}
    if api_key is not None:
        spec["apiKey"] = api_key
    return spec


class FreshInstall(SynchronousTestCase):
    def test_no_providers(self) -> None:
        app, clock = make_app()
        client = hello(app.hub, scopes=["operator.read"])
        got = ok(client, "models.authStatus", {"agentId": "main"})
        self.assertEqual(set(got), {"ts", "providers", "providerCapabilities"})
        self.assertEqual(got["providers"], [])  # the offline model needs no key
        self.assertEqual(got["providerCapabilities"], [])  # no key can be stored from the UI
        self.assertIsInstance(got["ts"], int)
        self.assertEqual(ok(client, "models.authStatus", {"refresh": True})["providers"], [])
        res = call(client, "models.authStatus", {"agentId": "ghost"})
        self.assertEqual(res["error"]["message"], 'unknown agent id "ghost"')
        self.assertNotIn("models.authSetApiKey", app.hub.methods.advertised())


class Configured(SynchronousTestCase):
    def family(self, providers: dict[str, Any], environ: dict[str, str]) -> ModelsMethods:
        raw = {"models": {"providers": providers}}
        registry = build_registry(raw, lambda pid, spec: OfflineProvider(None),
                                  OfflineProvider(None))
        return ModelsMethods(lambda: raw, registry, lambda: 1234, environ)

    def status(self, providers: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
        return self.family(providers, environ or {}).auth_status(None, {})  # type: ignore[arg-type]

    def test_literal_key_is_the_real_static_config_entry(self) -> None:
        got = self.status({"mock": provider("bench-mock")})
        self.assertEqual(got, {"ts": 1234, "providers": [REAL_MOCK_ENTRY],
                               "providerCapabilities": []})

    def test_env_keys(self) -> None:
        env = {"OPENAI_API_KEY": "sk-x"}
        got = self.status({"a": provider("${OPENAI_API_KEY}"),
                           "b": provider({"source": "env", "id": "OPENAI_API_KEY"}),
                           "c": provider({"env": "UNSET_KEY"}),
                           "d": provider()}, env)
        by = {p["provider"]: p for p in got["providers"]}
        self.assertEqual(sorted(by), ["a", "b", "c"])  # d needs no key: not listed
        self.assertEqual(by["a"]["apiKey"], {"source": "env", "envVar": "OPENAI_API_KEY"})
        self.assertEqual(by["b"]["status"], "static")
        # a key whose variable is unset: its calls go out unauthenticated
        self.assertEqual(by["c"]["status"], "missing")
        self.assertNotIn("apiKey", by["c"])

    def test_key_source_forms(self) -> None:
        env = {"K": "v", "EMPTY": " "}
        self.assertEqual(key_source("lit", env), {"source": "config"})
        self.assertIsNone(key_source("  ", env))
        self.assertEqual(key_source("${K}", env), {"source": "env", "envVar": "K"})
        self.assertEqual(key_source("Bearer ${K}", env), {"source": "env"})
        self.assertIsNone(key_source("${EMPTY}", env))
        self.assertIsNone(key_source({"source": "file", "id": "x"}, env))
        self.assertIsNone(key_source(42, env))

    def test_non_openai_apis_are_not_ours(self) -> None:
        got = self.status({"x": provider("k", api="anthropic-messages")})
        self.assertEqual(got["providers"], [])
