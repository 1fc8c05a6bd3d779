"""Every HTTP route of the gateway port, fuzzed through its real ``Site`` with exact bytes.

One test per route family, so a failure names its route; inputs come from
``tests/fuzz/http_strategies.py`` (methods, targets, headers, framing, bodies shaped like
what each JSON endpoint accepts, confused) and the checks are ``HttpFuzzGateway.check``'s.
``FUZZ_EXAMPLES`` scales them as it does the WebSocket tests (2 to 8 times as many per test
here, by how much each route has to explore).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from tests.fuzz import http_strategies as hs
from tests.fuzz.harness import EXAMPLES
from tests.fuzz.http_harness import HttpFuzzGateway
from tests.fuzz.http_wire import HttpInput
from tests.fuzz.test_methods import fuzz_settings

_gateway: HttpFuzzGateway | None = None


def shared() -> HttpFuzzGateway:
    """One gateway for the file; a failing test replaces it (as ``test_methods.shared``)."""
    global _gateway
    if _gateway is None:
        _gateway = HttpFuzzGateway()
    return _gateway


def discard() -> None:
    global _gateway
    if _gateway is not None:
        _gateway.close()
        _gateway = None


UI_PATHS = ["/", "/index.html", "/assets/app-abc123.js", "/assets/app-abc123.css",
            "/assets/big-def456.js", "/assets/app-abc123.js.br", "/sw.js", "/favicon.svg",
            "/manifest.webmanifest", "/leak.txt", "/leakdir/secret.txt", "/leakdir/",
            "/hard.js", "/alias.js", "/chat", "/settings/plugins", "/ui", "/ui/x",
            "/approve/x", "/focus/y", "/share/x", "/share/card.png", "/nope.js",
            "/control-ui-config.json", "/__openclaw__/control-ui-config.json",
            "/__openclaw__/favicon.svg", "/__openclaw__/mcp-app/x", "/plugins", "/api/x",
            "/j", "/secret.txt", "/outside/secret.txt"]
DASHBOARD_PATHS = ["/", "/index.html", "/assets/app.js", "/assets/dashboard.css",
                   "/assets/dom.js", "/assets/out.js", "/chat", "/assets/missing.js",
                   "/control-ui-config.json", "/secret.txt", "/dashboard/index.html"]

CASES: dict[str, tuple[st.SearchStrategy[HttpInput], int]] = {
    "chat_completions": (hs.request("openai", ["/v1/chat/completions"],
                                    body=hs.json_body(hs.CHAT)), 6),
    "responses": (hs.request("openai", ["/v1/responses"], body=hs.json_body(hs.RESPONSES)), 6),
    "hooks_agent": (hs.request("hooks", ["/hooks/agent"], body=hs.json_body(hs.HOOK_AGENT)), 6),
    "hooks_wake": (hs.request("hooks", ["/hooks/wake"], body=hs.json_body(hs.HOOK_WAKE)), 4),
    "hooks_mapped": (hs.request("hooks", ["/hooks/github", "/hooks/mail", "/hooks/batch",
                                          "/hooks/empty", "/hooks/js", "/hooks/none",
                                          "/hooks", "/hooks/", "/hooks/github/x"],
                                body=hs.json_body(hs.HOOK_MAPPED)), 6),
    "tools_invoke": (hs.request("tools", ["/tools/invoke"], body=hs.json_body(hs.TOOLS)), 4),
    "models": (hs.request("openai", [
        "/v1/models", "/v1/models/openclaw", "/v1/models/openclaw%2Fops",
        "/v1/models/openclaw/default", "/v1/models/nope", "/v1/models/"], usual=b"GET"), 2),
    "embeddings": (hs.request("openai", ["/v1/embeddings"],
                              body=hs.json_body(hs.EMBEDDINGS)), 2),
    "session_history": (hs.request("history", [
        "/sessions/main/history", "/sessions/agent%3Amain%3Amain/history",
        "/sessions/%FF/history", "/sessions/a/b/history", "/sessions//history",
        "/sessions/agent:ops:hook:x/history"], usual=b"GET"), 4),
    "probes_metrics": (hs.request("probe", [
        "/health", "/healthz", "/ready", "/readyz", "/startup", "/startupz", "/metrics",
        "/api/diagnostics/prometheus", "/nope"], usual=b"GET"), 4),
    "control_ui": (hs.request("ui", UI_PATHS, usual=b"GET"), 8),
    "dashboard": (hs.request("ui", DASHBOARD_PATHS, usual=b"GET"), 4),
}


def _make_test(name: str, inputs: st.SearchStrategy[HttpInput], scale: int) -> Any:
    @fuzz_settings(EXAMPLES * scale)
    @given(inp=inputs)
    def fuzz(self: unittest.TestCase, inp: HttpInput) -> None:
        shared().check(inp)

    def run(self: unittest.TestCase) -> None:
        failed = True
        gateway = shared()
        gateway.use_dashboard(name == "dashboard")
        try:
            fuzz(self)
            gateway.bystander_answers()
            failed = False
        except BaseExceptionGroup as group:  # hypothesis's FlakyFailure: show what failed
            raise group.exceptions[0] from None
        finally:
            self.flushLoggedErrors()
            gateway.use_dashboard(False)
            gateway.write_report(name, failed)
            if failed:
                discard()

    run.__name__ = f"test_{name}"
    run.__doc__ = f"HTTP {name.replace('_', ' ')}"
    return run


class HttpFuzz(unittest.TestCase):
    pass


def _install(add: Callable[[str, Any], None]) -> None:
    for name, (inputs, scale) in CASES.items():
        add(f"test_{name}", _make_test(name, inputs, scale))


_install(lambda name, test: setattr(HttpFuzz, name, test))
