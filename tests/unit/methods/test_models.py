"""models.list: the published model catalog, and the hello-ok capability that announces it.

The rows are what the real gateway (2026.9.6) answered ``openclaw models list`` (params
``{"view": "default", "includeDetails": true}``) with a loopback OpenAI-compatible provider
``mock`` declaring bench-model (text, 128k, the primary) and bench-free (text+image, 32k,
reasoning): ``local`` and ``input`` only with ``includeDetails``, ``tags: ["default"]`` on the
primary model only, rows sorted by provider and id.  One difference is ours on purpose: a
reasoning model offers only the ``off`` thinking level, since our runtime sends no reasoning
settings (the real gateway offered off..high with default medium).
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import is_local_base_url
from tests.support.helpers import WSClient, call, hello, make_app, ok
from tests.support.http_harness import write_config

READ = ["operator.read"]
OFF = [{"id": "off", "label": "off"}]
CONFIG = {
    "models": {"mode": "merge", "providers": {"mock": {
        "baseUrl": "http://127.0.0.1:19101/v1", "apiKey": "bench-mock",
        "api": "openai-completions",
        "models": [
            {"id": "bench-model", "name": "Bench mock", "reasoning": False, "input": ["text"],
             "contextWindow": 128000, "maxTokens": 4096,
             "cost": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}},
            {"id": "bench-free", "name": "Bench free", "reasoning": True,
             "input": ["text", "image"], "contextWindow": 32000, "maxTokens": 2048}]}}},
    "agents": {"defaults": {"model": {"primary": "mock/bench-model"}},
               "list": [{"id": "main"}, {"id": "ops"}]},
}
# The real gateway's rows for these two models, thinking levels aside (see the docstring).
BENCH_FREE = {"id": "bench-free", "name": "Bench free", "provider": "mock",
              "contextWindow": 32000, "local": True, "input": ["text", "image"],
              "reasoning": True, "thinkingLevels": OFF, "thinkingDefault": "off",
              "available": True}
BENCH_MODEL = {"id": "bench-model", "name": "Bench mock", "provider": "mock",
               "contextWindow": 128000, "local": True, "input": ["text"], "reasoning": False,
               "tags": ["default"], "thinkingLevels": OFF, "thinkingDefault": "off",
               "available": True}
OFFLINE = {"id": "offline-echo",
           "name": "Offline echo (built-in, no network; not a language model)",
           "provider": "offline", "contextWindow": 8192, "local": True, "input": ["text"],
           "reasoning": False, "tags": ["offline"], "thinkingLevels": OFF,
           "thinkingDefault": "off", "available": True}


def without(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


class Capabilities(SynchronousTestCase):
    def test_hello_ok_advertises_exactly_the_published_catalog(self) -> None:
        app, _ = make_app()
        client = WSClient(app.hub)
        res = client.connect(scopes=READ)
        self.assertEqual(res["payload"]["features"]["capabilities"], ["published-model-catalog"])
        self.assertIn("models.list", res["payload"]["features"]["methods"])
        # model-catalog-snapshot (a models.snapshot event for a connect's modelCatalog) is
        # not ours: the challenge does not offer it either.
        challenge = client.events("connect.challenge")[0]["payload"]
        self.assertNotIn("capabilities", challenge)


class ConfiguredCatalog(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, _ = make_app(config=write_config(CONFIG))
        self.c = hello(self.app.hub, scopes=READ)

    def test_cli_params_give_the_real_rows(self) -> None:
        """``openclaw models list`` sends ``{view: default, includeDetails: true}``."""
        result = ok(self.c, "models.list", {"view": "default", "includeDetails": True})
        self.assertEqual(result, {"models": [BENCH_FREE, BENCH_MODEL, OFFLINE]})

    def test_without_details_no_local_nor_input(self) -> None:
        """``openclaw gateway call models.list --params {}`` on the real gateway."""
        result = ok(self.c, "models.list", {})
        self.assertEqual(result["models"][:2], [without(BENCH_FREE, "local", "input"),
                                                 without(BENCH_MODEL, "local", "input")])

    def test_provider_filter_and_unknown_provider(self) -> None:
        rows = ok(self.c, "models.list", {"provider": "MOCK", "view": "all",
                                          "includeDetails": True})["models"]
        self.assertEqual(rows, [BENCH_FREE, BENCH_MODEL])
        self.assertEqual(ok(self.c, "models.list", {"provider": "offline"})["models"],
                         [without(OFFLINE, "local", "input")])
        res = call(self.c, "models.list", {"provider": "nope"})
        self.assertEqual(res["error"], {
            "code": "UNAVAILABLE", "retryable": False,
            "message": "Error: Unknown model catalog provider. Use a provider id from the "
                       "installed plugins or configured providers."})

    def test_configured_view_reports_no_utility_model(self) -> None:
        result = ok(self.c, "models.list", {"view": "configured"})
        self.assertEqual(result["defaultModels"], {"automaticUtilityModel": None})
        self.assertNotIn("defaultModels", ok(self.c, "models.list", {"view": "all"}))

    def test_agents(self) -> None:
        self.assertEqual(len(ok(self.c, "models.list", {"agentId": "ops"})["models"]), 3)
        res = call(self.c, "models.list", {"agentId": "ghost"})
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                        "message": 'unknown agent id "ghost"'})

    def test_params_are_the_reference_schema(self) -> None:
        cases = [({"bogus": 1}, "invalid models.list params: at root: unexpected property "
                                "'bogus'"),
                 ({"preparedOnly": True, "refresh": True},
                  "invalid models.list params: must not be valid"),
                 ({"sessionKey": "main", "authProfileId": "p"},
                  "invalid models.list params: must not be valid"),
                 ({"view": "everything"}, "invalid models.list params: at /view: must be "
                                          "equal to one of the allowed values")]
        for params, message in cases:
            res = call(self.c, "models.list", params)
            self.assertEqual(res["error"], {"code": "INVALID_REQUEST", "message": message})
        for params in ({"refresh": True}, {"preparedOnly": True}, {"sessionKey": "main"},
                       {"includeProviderCapabilities": True}, {"view": "provider-config"}):
            self.assertTrue(call(self.c, "models.list", params)["ok"], params)


class OfflineOnly(SynchronousTestCase):
    def test_the_builtin_model_is_listed_as_what_it_is(self) -> None:
        app, _ = make_app()
        c = hello(app.hub, scopes=READ)
        [row] = ok(c, "models.list", {"includeDetails": True})["models"]
        self.assertEqual(row, {**OFFLINE, "tags": ["default", "offline"]})


class LocalBaseUrl(SynchronousTestCase):
    def test_the_real_rule(self) -> None:
        for url in ("http://127.0.0.1:8080/v1", "http://localhost:11434", "http://[::1]:1/",
                    "http://0.0.0.0:1", "http://box.local/v1", "http://127.1.2.3/"):
            self.assertTrue(is_local_base_url(url), url)
        for url in ("https://api.openai.com/v1", "http://10.0.0.2/v1", "http://127.0.0.01/",
                    "", None, "not a url"):
            self.assertFalse(is_local_base_url(url), url)
