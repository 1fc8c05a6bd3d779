"""The Control UI on the gateway port (``web/control_ui.py``, ``web/ui_build.py``): a fake
build served as a package build and as a configured root, through the real ``Site`` with
raw requests (``tests/support/ui_build.py``), compared with what the real gateway answered
(headers measured with curl against OpenClaw 2026.9.6):

- ``/`` and the SPA fallback: ``text/html``, ``no-cache``, the Control UI CSP (inline script
  hashes, ``frame-ancestors 'none'``), ``X-Frame-Options: DENY``, ``Vary: Accept-Encoding``;
- a package build's hashed assets: ``public, max-age=31536000, immutable``, the ``.br``/``.gz``
  sibling chosen by ``Accept-Encoding`` with ``Content-Encoding``; ``sw.js`` and other files
  ``no-cache`` with ``Last-Modified``; a missing asset a plain 404, not the shell.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import attrs
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw import tap
from openclaw_tw.config import document as configfile
from openclaw_tw.config import settings as config
from openclaw_tw.devices.store import PairedDevice
from openclaw_tw.web import control_ui, ui_build, ui_document, ui_routes
from openclaw_tw.web.ui_build import Discovery
from tests.support.helpers import TOKEN, make_app
from tests.support.tmp import fresh_dir
from tests.support.ui_build import (
    APP_BR,
    APP_JS,
    BUILD_ID,
    INLINE_SCRIPT,
    SECRET,
    FakeBuild,
    RawReply,
    make_build,
    raw_request,
)

UI_PERMISSIONS = "camera=(self), microphone=*, geolocation=*, clipboard-write=*"
IMMUTABLE = "public, max-age=31536000, immutable"
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class UiCase(SynchronousTestCase):
    """A gateway whose Control UI serves the fake build; ``configured``: through
    ``gateway.controlUi.root`` (else found as an installed package)."""

    configured = False
    ui_config: dict[str, Any] = {}

    def setUp(self) -> None:
        self.dir = fresh_dir(self)
        self.build = make_build(self.dir)
        ui_cfg = dict(self.ui_config)
        if self.configured:
            ui_cfg["root"] = str(self.build.root)
        cfg_path = self.dir / "openclaw.json"
        cfg_path.write_text(json.dumps({"gateway": {"controlUi": ui_cfg}}))
        self.app, self.clock = make_app(config=str(cfg_path))
        self.gw = self.app.hub
        self.site = tap.build_site(self.app)
        self.ui: control_ui.ControlUi = self.site.resource.control_ui
        self.found = self.discover(self.env_with_reference())

    def env_with_reference(self) -> dict[str, str]:
        ref = self.dir / "ref" / "pkg" / "node_modules"
        ref.mkdir(parents=True, exist_ok=True)
        if not (ref / "openclaw").exists():
            os.symlink(self.build.package, ref / "openclaw")
        return {"PATH": str(self.dir / "empty-bin"), "OPENCLAW_REF_DIR": str(self.dir / "ref"),
                "HOME": str(self.dir)}

    def discover(self, env: dict[str, str]) -> Discovery:
        found: Discovery = self.successResultOf(self.ui.discover(env))
        return found

    def get(self, target: str | bytes, method: str = "GET", **headers: str) -> RawReply:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        return raw_request(self.site, method, target, hdrs, clock=self.clock)

    def assert_ui_headers(self, reply: RawReply) -> None:
        self.assertEqual(reply.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(reply.header("X-Frame-Options"), "DENY")
        self.assertEqual(reply.header("Referrer-Policy"), "no-referrer")
        self.assertEqual(reply.header("Permissions-Policy"), UI_PERMISSIONS)
        self.assertIn("frame-ancestors 'none'", reply.header("Content-Security-Policy") or "")

    def assert_index(self, reply: RawReply) -> None:
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(reply.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(reply.header("Cache-Control"), "no-cache")
        self.assertEqual(reply.header("Vary"), "Accept-Encoding")
        self.assertIn(b"<openclaw-app>", reply.body)
        self.assert_ui_headers(reply)

    def assert_404(self, reply: RawReply) -> None:
        self.assertEqual((reply.status, reply.body), (404, b"Not Found"), reply)
        self.assertNotIn(SECRET, reply.body)


class PackageBuild(UiCase):
    """The build of an installed openclaw package, served as the real gateway serves its own."""

    def test_discovered_as_a_package_build(self) -> None:
        build = self.found.build
        assert build is not None
        self.assertEqual((build.bundled, build.version, build.build_id, build.found_by),
                         (True, "2026.9.6", BUILD_ID, "the reference install"))
        self.assertEqual(build.real, Path(os.path.realpath(self.build.root)))

    def test_startup_log_names_the_build(self) -> None:
        with capturedLogs() as events:
            self.discover(self.env_with_reference())
        lines = [formatEvent(e) for e in events if e.get("log_namespace") ==
                 "gateway/control-ui"]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"serving the openclaw 2026.9.6 package build at {self.build.package}",
                      lines[0].replace("/ref/pkg/node_modules/openclaw", "/pkg"))
        self.assertIn(f"found via the reference install; build {BUILD_ID}", lines[0])

    def test_index(self) -> None:
        reply = self.get("/")
        self.assert_index(reply)
        self.assertIsNone(reply.header("Last-Modified"))
        self.assertIsNone(reply.header("Content-Encoding"))
        body = reply.body.decode()
        self.assertIn(f'<html data-openclaw-control-ui-base-path="" '
                      f'data-openclaw-terminal-enabled="false" '
                      f'data-openclaw-control-ui-build-id="{BUILD_ID}" lang="en">', body)
        self.assertIn('src="/assets/app-abc123.js"', body)
        self.assertIn('href="/assets/app-abc123.css"', body)
        self.assertIn(f'href="/favicon.svg?v={BUILD_ID}"', body)
        self.assertIn(f'href="/manifest.webmanifest?v={BUILD_ID}"', body)
        csp = reply.header("Content-Security-Policy") or ""
        self.assertIn(f"'{ui_document.inline_script_hashes(f'<script>{INLINE_SCRIPT}</script>')[0]}'",
                      csp)
        self.assertIn("connect-src 'self' ws: wss: data: https://api.openai.com "
                      "https://tweakcn.com http://127.0.0.1:* https://127.0.0.1:*", csp)
        self.assertNotIn("wasm-unsafe-eval", csp)  # no terminal here
        self.assertEqual(self.get("/index.html").body, reply.body)

    def test_index_gzip_on_request(self) -> None:
        plain = self.get("/").body
        reply = self.get("/", Accept_Encoding="gzip, deflate, br")
        self.assertEqual(reply.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(reply.body), plain)
        self.assertEqual(self.get("/", Accept_Encoding="identity;q=0").status, 406)

    def test_spa_fallback_respects_accept(self) -> None:
        self.assert_index(self.get("/chat/deep/path"))                     # no Accept
        self.assert_index(self.get("/chat/deep/path", Accept="*/*"))
        self.assert_index(self.get("/chat/deep/path", Accept=HTML_ACCEPT))
        self.assert_index(self.get("/agents/main/", Accept="text/*"))
        for accept in ("text/html;q=0", "text/html;q=0, */*", "application/json"):
            reply = self.get("/chat/deep/path", Accept=accept)
            self.assert_404(reply)
            self.assert_ui_headers(reply)
        # the index itself is the index whatever the client accepts
        self.assert_index(self.get("/", Accept="application/json"))
        self.assert_index(self.get("/approve/abc", Accept="application/json"))

    def test_hashed_asset_immutable_and_precompressed(self) -> None:
        cases = (("br, gzip", "br", APP_BR), ("gzip", "gzip", gzip.compress(APP_JS, mtime=0)),
                 ("", None, APP_JS), ("gzip;q=0.5, br", "br", APP_BR),
                 ("br;q=0, gzip;q=0", None, APP_JS))
        for accept_encoding, encoding, body in cases:
            reply = self.get("/assets/app-abc123.js", Accept_Encoding=accept_encoding)
            self.assertEqual(reply.status, 200, accept_encoding)
            self.assertEqual(reply.header("Content-Type"), "application/javascript; charset=utf-8")
            self.assertEqual(reply.header("Cache-Control"), IMMUTABLE)
            self.assertEqual(reply.header("Vary"), "Accept-Encoding")
            self.assertEqual(reply.header("Content-Encoding"), encoding, accept_encoding)
            self.assertEqual(reply.body, body, accept_encoding)
            self.assertEqual(reply.header("Content-Length"), str(len(body)))
            self.assertIsNotNone(reply.header("Last-Modified"))
            self.assert_ui_headers(reply)
        refused = self.get("/assets/app-abc123.js",
                           Accept_Encoding="identity;q=0, br;q=0, gzip;q=0")
        self.assertEqual((refused.status, refused.body), (406, b"Not Acceptable"))
        self.assertEqual(refused.header("Cache-Control"), "no-store")
        # hashed assets are found under any deep route (relative links from a deep page)
        self.assertEqual(self.get("/chat/x/assets/app-abc123.js").body, APP_JS)

    def test_precompressed_files_are_not_served_by_name(self) -> None:
        self.assert_404(self.get("/assets/app-abc123.js.br"))
        self.assert_404(self.get("/assets/app-abc123.js.gz"))

    def test_documents_and_sw_are_no_cache(self) -> None:
        for path, kind in (("/sw.js", "application/javascript; charset=utf-8"),
                           ("/__openclaw__/sw.js", "application/javascript; charset=utf-8"),
                           ("/favicon.svg", "image/svg+xml"),
                           ("/manifest.webmanifest", "application/manifest+json; charset=utf-8")):
            reply = self.get(path, Accept_Encoding="br, gzip")
            self.assertEqual(reply.status, 200, path)
            self.assertEqual(reply.header("Content-Type"), kind, path)
            self.assertEqual(reply.header("Cache-Control"), "no-cache", path)
            self.assertIsNone(reply.header("Content-Encoding"), path)
            self.assertEqual(reply.header("Vary"), "Accept-Encoding")
        # a versioned public asset asked for with the build's ?v= is immutable; sw.js never
        self.assertEqual(self.get(f"/favicon.svg?v={BUILD_ID}").header("Cache-Control"),
                         IMMUTABLE)
        self.assertEqual(self.get("/favicon.svg?v=other").header("Cache-Control"), "no-cache")
        self.assertEqual(self.get(f"/sw.js?v={BUILD_ID}").header("Cache-Control"), "no-cache")

    def test_missing_asset_is_404_not_the_shell(self) -> None:
        for path in ("/assets/missing-abc.js", "/missing.png", "/x/y/sw.js", "/fonts/x.woff2",
                     "/deep/missing.css"):
            reply = self.get(path, Accept=HTML_ACCEPT)
            self.assert_404(reply)
            self.assertEqual(reply.header("Content-Type"), "text/plain; charset=utf-8")
            self.assert_ui_headers(reply)

    def test_head(self) -> None:
        reply = self.get("/assets/app-abc123.js", "HEAD", Accept_Encoding="br")
        self.assertEqual((reply.status, reply.body), (200, b""))
        self.assertEqual(reply.header("Content-Length"), str(len(APP_BR)))
        self.assertEqual(reply.header("Content-Encoding"), "br")
        index = self.get("/", "HEAD", Accept_Encoding="gzip")
        self.assertEqual((index.status, index.body), (200, b""))
        self.assertEqual(index.header("Content-Encoding"), "gzip")
        self.assertEqual(index.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(self.get("/chat/x", "HEAD").status, 200)
        self.assertEqual(self.get("/missing.js", "HEAD").status, 404)

    def test_conditional_requests(self) -> None:
        first = self.get("/sw.js")
        stamp = first.header("Last-Modified") or ""
        for headers in ({"If-None-Match": "*"}, {"If-Modified-Since": stamp}):
            reply = self.get("/sw.js", **{k.replace("-", "_"): v for k, v in headers.items()})
            self.assertEqual((reply.status, reply.body), (304, b""), headers)
            self.assertEqual(reply.header("Cache-Control"), "no-cache")
            self.assertEqual(reply.header("Last-Modified"), stamp)
            self.assertEqual(reply.header("Vary"), "Accept-Encoding")
        asset = self.get("/assets/app-abc123.js", If_None_Match="*")
        self.assertEqual((asset.status, asset.header("Cache-Control")), (304, IMMUTABLE))
        # an entity tag never matches (there are none); a future date is not believed
        self.assertEqual(self.get("/sw.js", If_None_Match='"abc"').status, 200)
        self.assertEqual(self.get("/sw.js", If_Modified_Since="Fri, 01 Jan 2100 00:00:00 GMT"
                                  ).status, 200)

    def test_large_files_are_streamed_whole(self) -> None:
        self.patch(ui_build, "STREAM_OVER", 64 * 1024)
        self.patch(ui_build, "CHUNK", 16 * 1024)
        reads: list[int] = []
        real_read = ui_build.read_chunk
        self.patch(ui_build, "read_chunk", lambda fd, off: reads.append(off) or
                   real_read(fd, off))
        reply = self.get("/assets/big-def456.js")
        self.assertEqual(len(reads), -(-len(self.build.big) // (16 * 1024)))
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.header("Content-Length"), str(len(self.build.big)))
        self.assertEqual(reply.body, self.build.big)

    def test_small_files_are_cached(self) -> None:
        self.get("/sw.js")
        hits = self.ui.files.hits
        self.assertEqual(self.get("/sw.js").status, 200)
        self.assertEqual(self.ui.files.hits, hits + 1)
        # a changed file is read again
        (self.build.root / "sw.js").write_text("// v2\n")
        self.assertEqual(self.get("/sw.js").body, b"// v2\n")

    def test_routes_that_are_not_the_ui(self) -> None:
        # the reference's classifier: probes' namespaces, /api, /v1, /j, /plugins/<x>, and
        # anything but GET/HEAD fall through to the plain 404 (no UI headers)
        for method, path in (("POST", "/"), ("PUT", "/chat"), ("GET", "/v1/foo"),
                             ("GET", "/api/x"), ("GET", "/j/x"), ("GET", "/health/x"),
                             ("GET", "/plugins/x"), ("GET", "/__openclaw__/mcp-app/x")):
            reply = self.get(path, method)
            self.assert_404(reply)
            self.assertIsNone(reply.header("X-Frame-Options"), path)
            self.assertEqual(reply.header("X-Content-Type-Options"), "nosniff")
        ui = self.get("/ui/anything")  # /ui is reserved: a UI 404
        self.assert_404(ui)
        self.assert_ui_headers(ui)
        self.assert_index(self.get("/plugins"))
        self.assert_index(self.get("/settings/plugins", Accept="application/json"))
        self.assert_404(self.get("/share/x"))
        # probes keep their own answers
        self.assertEqual(self.get("/health").body, b'{"ok":true,"status":"live"}')

    def test_disabled_hot(self) -> None:
        self.gw.apply_settings(attrs.evolve(self.gw.settings, control_ui_enabled=False))
        for path in ("/", "/assets/app-abc123.js", "/control-ui-config.json"):
            reply = self.get(path)
            self.assert_404(reply)
            self.assertIsNone(reply.header("X-Frame-Options"))
        self.gw.apply_settings(attrs.evolve(self.gw.settings, control_ui_enabled=True))
        self.assert_index(self.get("/"))

    def test_bootstrap_config(self) -> None:
        denied = self.get("/control-ui-config.json")
        self.assertEqual(denied.status, 401)
        self.assertEqual(json.loads(denied.body),
                         {"error": {"message": "Unauthorized", "type": "unauthorized"}})
        self.assert_ui_headers(denied)
        for path in ("/control-ui-config.json", "/__openclaw__/control-ui-config.json",
                     "/__openclaw/control-ui-config.json"):
            reply = self.get(path, Authorization=f"Bearer {TOKEN}")
            self.assertEqual(reply.status, 200, path)
            self.assertEqual(reply.header("Cache-Control"), "no-cache")
            body = json.loads(reply.body)
            self.assertEqual((body["basePath"], body["serverVersion"], body["terminalEnabled"]),
                             ("", "2026.9.6", False))
            self.assertNotIn("serverBuildId", body)  # the build is not ours
        self.assert_404(self.get("/control-ui-config.json", "POST",
                                 Authorization=f"Bearer {TOKEN}"))

    def test_bootstrap_config_takes_a_device_token(self) -> None:
        """After hello-ok the app asks with its device token first (as with the real one)."""
        store = self.gw.devices.store
        for device_id, scopes in (("reader", ["operator.read"]),
                                  ("approver", ["operator.approvals"])):
            token, value = store.key.issue(device_id, "operator", scopes, 0)
            dev = PairedDevice(device_id, "pk", None, None, "openclaw-control-ui", "webchat",
                               ["operator"], scopes, "test", 0, 0)
            dev.tokens["operator"] = token
            store.devices[device_id] = dev
            reply = self.get("/control-ui-config.json", Authorization=f"Bearer {value}")
            self.assertEqual(reply.status, 200 if device_id == "reader" else 401, device_id)
            if device_id == "reader":  # revoked (the entry is kept): refused
                token.revoked_at = 1
                self.assertEqual(self.get("/control-ui-config.json",
                                          Authorization=f"Bearer {value}").status, 401)

    def test_csp_host_cannot_inject_directives(self) -> None:
        for host in ("evil; script-src *", "a b", "x:1:2", "[::1]:18789"):
            csp = self.get("/", Host=host).header("Content-Security-Policy") or ""
            self.assertNotIn("script-src *", csp)
            self.assertEqual(csp.count(";"), 11, host)
        csp = self.get("/", Host="gw.example:8443").header("Content-Security-Policy") or ""
        self.assertIn("http://gw.example:* https://gw.example:*", csp)


class Security(UiCase):
    """No request reads outside the build; every answer carries the UI's security headers."""

    def test_no_path_escapes_the_root(self) -> None:
        # (raw request target, what it must get: "404" or "index")
        vectors = [
            ("/../secret.txt", "404"),                       # resolved to /secret.txt
            ("/../../../../etc/passwd", "index"),            # -> /etc/passwd: just a UI route
            ("/%2e%2e/secret.txt", "404"),
            ("/.%2e/%2E%2e/secret.txt", "404"),
            ("/assets/..%2f..%2f..%2fsecret.txt", "404"),    # encoded separators
            ("/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt", "404"),
            ("/..%2f..%2fsecret.txt", "404"),
            ("/%252e%252e%252fsecret.txt", "404"),           # double encoding stays literal
            ("/..%5c..%5csecret.txt", "404"),                # encoded backslashes
            ("/..\\..\\secret.txt", "404"),                  # raw backslashes are slashes
            ("/C:%5cWindows%5cwin.ini", "404"),
            ("/%2fetc%2fpasswd", "404"),                     # absolute once decoded: refused
            ("/leak.txt", "404"),                            # symlink to a file outside
            ("/leakdir/secret.txt", "404"),                  # through a symlinked directory
            ("/leakdir/", "index"),
            ("/assets/app-abc123.js%00.txt", "404"),         # NUL
            ("/sw.js%00", "404"),
            ("/%00", "404"),
            ("/%ZZ", "404"),                                 # malformed escapes
            ("/%c0%ae%c0%ae/secret.txt", "404"),             # overlong UTF-8 for "."
            ("/" + "a" * 5000, "index"),                     # overlong paths: no disk access
            ("/" + "a/" * 3000 + "x.js", "404"),
            ("/" + "%2e%2e/" * 50 + "secret.txt", "404"),
        ]
        for target, expected in vectors:
            reply = self.get(target)
            self.assertNotIn(SECRET, reply.body, target)
            self.assert_ui_headers(reply)
            if expected == "404":
                self.assertEqual(reply.status, 404, target[:80])
            else:
                self.assertEqual(reply.status, 200, target[:80])
                self.assertIn(b"<openclaw-app>", reply.body, target[:80])

    def test_symlink_inside_the_root_is_served(self) -> None:
        reply = self.get("/alias.js")
        self.assertEqual((reply.status, reply.body), (200, APP_JS))

    def test_safe_relative(self) -> None:
        self.assertEqual(ui_routes.safe_relative("assets/a%20b.js"), "assets/a b.js")
        for bad in ("../x", "a/../../x", "%2e%2e/x", "/etc/passwd", "%2fetc", "a%00b",
                    "a%5cb", "C:/x", "%ZZ", "%c0%ae", ""):
            self.assertIsNone(ui_routes.safe_relative(bad), bad)
        self.assertEqual(ui_routes.normalize_path(b"/a/./b/../c/%2e%2E/d"), "/a/d")
        self.assertEqual(ui_routes.normalize_path(b"/a\\..\\b"), "/b")
        self.assertEqual(ui_routes.normalize_path(b"/../.."), "/")

    def test_nosniff_and_frame_policy_on_every_answer(self) -> None:
        targets = ["/", "/assets/app-abc123.js", "/sw.js", "/missing.js", "/chat/x",
                   "/control-ui-config.json", "/ui", "/assets/app-abc123.js.br", "/%ZZ"]
        for target in targets:
            reply = self.get(target)
            self.assert_ui_headers(reply)
        for method, target in (("POST", "/"), ("GET", "/v1/x"), ("GET", "/health")):
            self.assertEqual(self.get(target, method).header("X-Content-Type-Options"),
                             "nosniff")

    def test_configured_root_rejects_hard_links(self) -> None:
        self.ui.state = Discovery(attrs.evolve(self.ui.build, bundled=False))
        self.assert_404(self.get("/hard.js"))
        self.assertEqual(self.get("/alias.js").status, 200)


class ConfiguredRoot(UiCase):
    """``gateway.controlUi.root``: served as the real gateway serves a configured root."""

    configured = True

    def test_found_as_configured(self) -> None:
        build = self.found.build
        assert build is not None
        self.assertEqual((build.bundled, build.found_by), (False, "gateway.controlUi.root"))

    def test_no_immutable_no_precompressed(self) -> None:
        reply = self.get("/assets/app-abc123.js", Accept_Encoding="br, gzip")
        self.assertEqual(reply.header("Cache-Control"), "no-cache")
        self.assertIsNone(reply.header("Content-Encoding"))
        self.assertEqual(reply.body, APP_JS)
        direct = self.get("/assets/app-abc123.js.br")
        self.assertEqual((direct.status, direct.body), (200, APP_BR))
        self.assertEqual(direct.header("Content-Type"), "application/octet-stream")
        index = self.get("/").body.decode()
        self.assertNotIn("data-openclaw-control-ui-build-id", index)
        self.assertIn('href="/favicon.svg"', index)

    def test_hard_links_refused(self) -> None:
        self.assert_404(self.get("/hard.js"))

    def test_root_may_name_index_html(self) -> None:
        found = ui_build.discover(self.build.root / "index.html", {})
        self.assertEqual(found.build and found.build.root, self.build.root)


class BasePath(UiCase):
    ui_config = {"basePath": "openclaw/"}

    def test_mounted_under_the_base_path(self) -> None:
        self.assertEqual(self.ui.base, "/openclaw")
        redirect = self.get("/openclaw?x=1")
        self.assertEqual((redirect.status, redirect.header("Location")), (302, "/openclaw/?x=1"))
        self.assert_ui_headers(redirect)
        reply = self.get("/openclaw/")
        self.assert_index(reply)
        body = reply.body.decode()
        self.assertIn('data-openclaw-control-ui-base-path="/openclaw"', body)
        self.assertIn('src="/openclaw/assets/app-abc123.js"', body)
        self.assertIn(f'href="/openclaw/favicon.svg?v={BUILD_ID}"', body)
        self.assertEqual(self.get("/openclaw/assets/app-abc123.js").body, APP_JS)
        self.assert_index(self.get("/openclaw/chat/deep"))
        self.assertEqual(self.get("/openclaw/control-ui-config.json",
                                  Authorization=f"Bearer {TOKEN}").status, 200)
        # outside the base path nothing is the UI's
        for path in ("/", "/assets/app-abc123.js", "/openclawx"):
            reply = self.get(path)
            self.assert_404(reply)
            self.assertIsNone(reply.header("X-Frame-Options"))


class NoBuild(UiCase):
    """Without a build (and without the built-in dashboard's files: a broken install) the UI
    path explains itself (never a bare 404)."""

    def setUp(self) -> None:
        super().setUp()
        self.ui.dashboard_root = self.dir / "no-dashboard"
        self.found = self.discover({"PATH": str(self.dir / "empty-bin"),
                                    "OPENCLAW_REF_DIR": str(self.dir / "nowhere")})

    def test_page_says_how_to_get_one(self) -> None:
        self.assertIsNone(self.found.build)
        self.assertEqual(len(self.found.looked), 4)
        self.assertIn("the built-in dashboard: missing", self.found.looked[-1])
        page = self.get("/", Accept=HTML_ACCEPT)
        self.assertEqual(page.status, 503)
        self.assertEqual(page.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(page.header("Cache-Control"), "no-store")
        self.assertIn(b"gateway.controlUi.root", page.body)
        self.assertIn(b"npm install -g openclaw", page.body)
        self.assert_ui_headers(page)
        text = self.get("/assets/app.js", Accept="application/json")
        self.assertEqual((text.status, text.header("Content-Type")),
                         (503, "text/plain; charset=utf-8"))
        self.assertIn(b"No Control UI build was found", text.body)
        self.assertEqual(self.get("/v1/x").status, 404)

    def test_preparing_until_discovered(self) -> None:
        self.ui.state = control_ui.PREPARING
        reply = self.get("/")
        self.assertEqual((reply.status, reply.header("Retry-After")), (503, "1"))
        self.assertEqual(reply.body, control_ui.PREPARING_TEXT.encode())

    def test_configured_root_without_index(self) -> None:
        empty = self.dir / "empty-build"
        empty.mkdir()
        self.ui.configured_root = empty
        found = self.discover({})
        self.assertEqual(found.invalid_root, empty)
        reply = self.get("/")
        self.assertEqual(reply.status, 503)
        self.assertIn(str(empty).encode(), reply.body)


class Discover(SynchronousTestCase):
    """Where an installed openclaw package's build is found, in order."""

    def setUp(self) -> None:
        self.dir = fresh_dir(self)
        self.build: FakeBuild = make_build(self.dir)
        self.bin = self.dir / "bin"
        self.bin.mkdir()
        self.env = {"PATH": str(self.bin), "OPENCLAW_REF_DIR": str(self.dir / "noref")}

    def test_openclaw_on_path_symlink(self) -> None:
        os.symlink(self.build.package / "openclaw.mjs", self.bin / "openclaw")
        found = ui_build.discover(None, self.env)
        assert found.build is not None
        self.assertEqual(found.build.root, self.build.root)
        self.assertTrue(found.build.found_by.startswith("openclaw on PATH"))

    def test_openclaw_on_path_launcher_script(self) -> None:
        launcher = self.bin / "openclaw"
        launcher.write_text(f'#!/bin/sh\nexec "/usr/bin/node" "{self.build.package}/openclaw.mjs"'
                            ' "$@"\n')
        launcher.chmod(0o755)
        found = ui_build.discover(None, self.env)
        self.assertEqual(found.build and found.build.root, self.build.root)

    def test_npm_root_g(self) -> None:
        modules = self.dir / "npm-global"
        modules.mkdir()
        os.symlink(self.build.package, modules / "openclaw")
        npm = self.bin / "npm"
        npm.write_text(f"#!/bin/sh\necho {modules}\n")
        npm.chmod(0o755)
        found = ui_build.discover(None, self.env)
        assert found.build is not None
        self.assertEqual((found.build.found_by, found.looked),
                         ("npm root -g", ("openclaw on PATH: not installed",)))

    def test_npm_bounded_by_a_timeout(self) -> None:
        npm = self.bin / "npm"
        npm.write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 5\n")
        npm.chmod(0o755)
        started = time.monotonic()
        self.assertIsNone(ui_build.npm_global_root(self.env, timeout_s=0.3))
        self.assertLess(time.monotonic() - started, 3.0)

    def test_an_incomplete_build_is_skipped(self) -> None:
        os.symlink(self.build.package / "openclaw.mjs", self.bin / "openclaw")
        (self.build.root / "assets" / "app-abc123.css").unlink()
        found = ui_build.discover(None, self.env)
        assert found.build is not None  # the built-in dashboard instead
        self.assertTrue(found.build.builtin)
        self.assertIn("missing assets/app-abc123.css", found.looked[0])


class Settings(SynchronousTestCase):
    def resolve(self, ui: Any) -> config.GatewaySettings:
        return config.resolve_data({"token": "t"}, {"HOME": "/nonexistent"},
                                   {"gateway": {"controlUi": ui}})

    def test_keys(self) -> None:
        s = self.resolve({})
        self.assertEqual((s.control_ui_enabled, s.control_ui_base_path, s.control_ui_root),
                         (True, "", None))
        s = self.resolve({"enabled": False, "basePath": "/ui-base/", "root": "/srv/ui",
                          "allowedOrigins": ["https://a.example"]})
        self.assertEqual((s.control_ui_enabled, s.control_ui_base_path, s.control_ui_root,
                          s.allowed_origins),
                         (False, "/ui-base", Path("/srv/ui"), ("https://a.example",)))
        self.assertEqual(self.resolve({"basePath": "/"}).control_ui_base_path, "")
        self.assertEqual(self.resolve({"basePath": "x"}).control_ui_base_path, "/x")

    def test_invalid(self) -> None:
        for ui, where in (({"basePath": 3}, "gateway.controlUi.basePath"),
                          ({"root": ""}, "gateway.controlUi.root"),
                          ({"enabled": "yes"}, "gateway.controlUi.enabled")):
            issues = configfile.validate({"gateway": {"controlUi": ui}})
            self.assertEqual([i["path"] for i in issues], [where], ui)

    def test_reload_plan(self) -> None:
        self.assertEqual(configfile.reload_kind("gateway.controlUi.enabled"), "hot")
        self.assertEqual(configfile.reload_kind("gateway.controlUi.allowedOrigins"), "hot")
        self.assertEqual(configfile.reload_kind("gateway.controlUi.basePath"), "restart")
        self.assertEqual(configfile.reload_kind("gateway.controlUi.root"), "restart")

    def test_base_path_and_root_keep_running_values(self) -> None:
        app, _ = make_app()
        gw = app.hub
        in_force = gw.apply_settings(attrs.evolve(gw.settings, control_ui_base_path="/x",
                                                  control_ui_root=Path("/y"),
                                                  control_ui_enabled=False))
        self.assertEqual((in_force.control_ui_base_path, in_force.control_ui_root,
                          in_force.control_ui_enabled), ("", None, False))
