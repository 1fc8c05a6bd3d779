"""HTTP probes and upgrade checks on the gateway port (reference §11.1, §4.5 step 1), driven
through treq's StubTreq (requests arrive from 127.0.0.1:31337, a direct loopback peer)."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.web.root import GatewayRoot
from tests.support.helpers import TOKEN, make_app

BASE = "http://127.0.0.1:18789"
WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
EVENT_LOOP_KEYS = {"degraded", "degradedSinceMs", "reasons", "intervalMs", "delayP99Ms",
                   "delayMaxMs", "utilization", "cpuCoreRatio", "cpuBreakdown"}


class Probes(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.stub = StubTreq(GatewayRoot(self.app))

    def fetch(self, method: str, path: str, headers: dict[str, str] | None = None
              ) -> tuple[int, Any, bytes]:
        response = self.successResultOf(
            self.stub.request(method, BASE + path, headers=headers or {}))
        body = self.successResultOf(response.content())
        return response.code, response.headers, body

    def header(self, headers: Any, name: str) -> str | None:
        values = headers.getRawHeaders(name)  # a str name gives str values
        return values[0] if values else None

    def assert_json_probe_headers(self, headers: Any) -> None:
        self.assertEqual(self.header(headers, "Content-Type"), "application/json; charset=utf-8")
        self.assertEqual(self.header(headers, "Cache-Control"), "no-store")
        self.assert_security_headers(headers)

    def assert_security_headers(self, headers: Any) -> None:
        self.assertEqual(self.header(headers, "X-Content-Type-Options"), "nosniff")
        self.assertEqual(self.header(headers, "Referrer-Policy"), "no-referrer")
        self.assertEqual(self.header(headers, "Permissions-Policy"),
                         "camera=(), microphone=(self), geolocation=()")

    # -- liveness ---------------------------------------------------------------------------

    def test_health_and_healthz(self) -> None:
        for path in ("/health", "/healthz"):
            code, headers, body = self.fetch("GET", path)
            self.assertEqual(code, 200, path)
            self.assertEqual(body, b'{"ok":true,"status":"live"}')
            self.assert_json_probe_headers(headers)

    def test_head_health(self) -> None:
        code, headers, body = self.fetch("HEAD", "/health")
        self.assertEqual((code, body), (200, b""))
        self.assert_json_probe_headers(headers)

    def test_query_string_ignored(self) -> None:
        code, _, body = self.fetch("GET", "/healthz?verbose=1")
        self.assertEqual((code, json.loads(body)), (200, {"ok": True, "status": "live"}))

    # -- readiness and startup ----------------------------------------------------------------

    def test_ready_detailed_for_local_caller(self) -> None:
        for path in ("/ready", "/readyz"):
            code, headers, body = self.fetch("GET", path)
            self.assertEqual(code, 200)
            self.assert_json_probe_headers(headers)
            ready = json.loads(body)
            self.assertEqual(set(ready), {"ready", "failing", "uptimeMs", "eventLoop"})
            self.assertEqual((ready["ready"], ready["failing"]), (True, []))
            self.assertIsInstance(ready["uptimeMs"], int)
            self.assertLessEqual(EVENT_LOOP_KEYS, set(ready["eventLoop"]))

    def test_ready_uptime_follows_clock(self) -> None:
        for _ in range(5):
            self.clock.advance(1)
        self.assertEqual(json.loads(self.fetch("GET", "/ready")[2])["uptimeMs"], 5000)

    def test_ready_minimal_for_forwarded_caller(self) -> None:
        code, _, body = self.fetch("GET", "/ready", {"X-Forwarded-For": "203.0.113.5"})
        self.assertEqual((code, json.loads(body)), (200, {"ready": True}))

    def test_ready_detailed_with_bearer(self) -> None:
        headers = {"X-Forwarded-For": "203.0.113.5", "Authorization": f"Bearer {TOKEN}"}
        self.assertIn("eventLoop", json.loads(self.fetch("GET", "/ready", headers)[2]))
        headers["Authorization"] = "Bearer wrong"
        self.assertEqual(json.loads(self.fetch("GET", "/ready", headers)[2]), {"ready": True})

    def test_startup(self) -> None:
        for path in ("/startup", "/startupz"):
            code, headers, body = self.fetch("GET", path)
            self.assertEqual(code, 200)
            self.assert_json_probe_headers(headers)
            started = json.loads(body)
            self.assertEqual(set(started), {"ok", "status", "version", "uptimeMs"})
            self.assertEqual((started["ok"], started["status"], started["version"]),
                             (True, "started", "2026.9.6"))
        code, _, body = self.fetch("GET", "/startup", {"X-Forwarded-For": "203.0.113.5"})
        self.assertEqual((code, json.loads(body)), (200, {"ok": True, "status": "started"}))

    def test_not_ready_while_stopping(self) -> None:
        self.gw.stopService()
        code, headers, body = self.fetch("GET", "/ready")
        self.assertEqual(code, 503)
        self.assert_json_probe_headers(headers)
        ready = json.loads(body)
        self.assertFalse(ready["ready"])
        self.assertTrue(ready["failing"])
        code, _, body = self.fetch("GET", "/startup")
        self.assertEqual(code, 503)
        self.assertFalse(json.loads(body)["ok"])
        # liveness stays up
        self.assertEqual(self.fetch("GET", "/health")[0], 200)

    # -- routing errors ---------------------------------------------------------------------------

    def test_probe_sub_paths_are_404(self) -> None:
        for path in ("/health/x", "/ready/x", "/healthz/", "/startup/deep/path"):
            code, headers, body = self.fetch("GET", path)
            self.assertEqual((code, body), (404, b"Not Found"), path)
            self.assertEqual(self.header(headers, "Content-Type"), "text/plain; charset=utf-8")
            self.assert_security_headers(headers)

    def test_other_methods_405(self) -> None:
        for method, path in (("POST", "/health"), ("PUT", "/ready"), ("DELETE", "/startupz")):
            code, headers, body = self.fetch(method, path)
            self.assertEqual((code, body), (405, b"Method Not Allowed"), (method, path))
            self.assertEqual(self.header(headers, "Allow"), "GET, HEAD")

    def test_unknown_paths_404(self) -> None:
        for path in ("/", "/v1/models", "/v1/chat/completions", "/nope"):
            code, _, body = self.fetch("GET", path)
            self.assertEqual((code, body), (404, b"Not Found"), path)

    # -- upgrade checks ---------------------------------------------------------------------------

    def test_non_websocket_upgrade_is_400(self) -> None:
        code, headers, _ = self.fetch("GET", "/", {"Upgrade": "foo", "Connection": "Upgrade"})
        self.assertEqual(code, 400)
        self.assert_security_headers(headers)
        code, _, _ = self.fetch("GET", "/health", {"Upgrade": "h2c", "Connection": "Upgrade"})
        self.assertEqual(code, 400)

    def test_forwarded_upgrade_from_untrusted_peer_is_403(self) -> None:
        for name in ("X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Forwarded-Proto"):
            code, headers, body = self.fetch("GET", "/", {**WS_HEADERS, name: "203.0.113.5"})
            self.assertEqual(code, 403, name)
            self.assert_json_probe_headers(headers)
            error = json.loads(body)["error"]
            self.assertEqual(error["type"], "proxy_attribution_required")
            self.assertTrue(error["message"].startswith(
                "Proxy client attribution is required."), error)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 0)
        self.assertEqual(self.gw.preauth_count("203.0.113.5"), 0)

    def test_upgrade_refused_while_stopping(self) -> None:
        self.gw.stopService()
        code, _, _ = self.fetch("GET", "/", WS_HEADERS)
        self.assertEqual(code, 503)

    def test_upgrade_refused_over_preauth_budget(self) -> None:
        self.gw.max_preauth_per_ip = 0
        code, _, body = self.fetch("GET", "/", WS_HEADERS)
        self.assertEqual((code, body), (503, b"Too many unauthenticated sockets"))
