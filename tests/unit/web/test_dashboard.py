"""The built-in dashboard (``web/dashboard/``), served by the Control UI's code when no build
is found or with ``OPENCLAW_TW_CONTROL_UI=builtin``: discovery, the same static-serving
guarantees (headers, CSP, cache policy, path containment), the 100 KB budget, text-only
rendering, and that every file ships as package data.  The pages themselves run in Chromium
in ``tests/browser/test_dashboard.py``."""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import re
import shutil
from pathlib import Path

from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw import tap
from openclaw_tw.web import control_ui, ui_build, ui_document
from openclaw_tw.web.ui_build import DASHBOARD_ROOT, Discovery
from tests.support.helpers import make_app
from tests.support.paths import REPO
from tests.support.tmp import fresh_dir
from tests.support.ui_build import RawReply, make_build, raw_request

BUDGET = 100 * 1024  # everything the dashboard loads, uncompressed (issue #18)
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_IMPORT_RE = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\./[^"']+)["']""")
_REF_RE = re.compile(r"""\s(?:src|href)="\./([^"]+)\"""")


def loaded_files(root: Path = DASHBOARD_ROOT) -> set[Path]:
    """What a browser loads: index.html, what it links, and the JS modules' import graph."""
    index = root / "index.html"
    seen = {index}
    todo = [root / ref for ref in _REF_RE.findall(index.read_text("utf-8"))]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.suffix == ".js":
            todo += [path.parent / m for m in _IMPORT_RE.findall(path.read_text("utf-8"))]
    return seen


class Budget(SynchronousTestCase):
    def test_everything_it_loads_fits_the_budget(self) -> None:
        files = loaded_files()
        for path in files:
            self.assertTrue(path.is_file(), f"{path} is referenced but missing")
        total = sum(p.stat().st_size for p in files)
        self.assertLessEqual(total, BUDGET, f"the dashboard loads {total} bytes")
        shipped = {p for p in DASHBOARD_ROOT.rglob("*") if p.is_file()}
        self.assertEqual(shipped - files, set(), "files shipped that nothing loads")

    def test_renders_text_only(self) -> None:
        """No API that parses HTML or evaluates strings appears in the dashboard's code
        (the browser test shows a message holding markup as text)."""
        banned = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|"
                            r"\beval\(|new Function|setTimeout\(\s*[\"'`]|DOMParser|"
                            r"createContextualFragment")
        for path in DASHBOARD_ROOT.rglob("*.js"):
            self.assertEqual(banned.findall(path.read_text("utf-8")), [], path.name)

    def test_no_inline_script_style_or_handlers(self) -> None:
        text = (DASHBOARD_ROOT / "index.html").read_text("utf-8")
        self.assertEqual(ui_document.inline_script_hashes(text), ())
        self.assertNotRegex(text, r"\son[a-z]+\s*=")
        self.assertNotIn("<style", text)
        self.assertNotRegex(text, r"(?:src|href)=\"(?:https?:)?//")  # no CDN

    def test_every_file_is_package_data(self) -> None:
        cfg = configparser.ConfigParser()
        cfg.read(REPO / "setup.cfg")
        globs = [g.strip() for g in cfg["options.package_data"]["openclaw_tw"].split(",")]
        package = REPO / "openclaw_tw"
        for path in DASHBOARD_ROOT.rglob("*"):
            if path.is_file():
                rel = path.relative_to(package).as_posix()
                self.assertTrue(any(fnmatch.fnmatchcase(rel, g) for g in globs), rel)


class Discover(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = fresh_dir(self)
        self.empty = {"PATH": str(self.dir / "bin"), "OPENCLAW_REF_DIR": str(self.dir / "no")}

    def test_served_when_no_build_is_found(self) -> None:
        found = ui_build.discover(None, self.empty)
        assert found.build is not None
        self.assertEqual((found.build.builtin, found.build.bundled, found.build.root,
                          found.build.found_by),
                         (True, False, DASHBOARD_ROOT, "no Control UI build found"))
        self.assertEqual(len(found.looked), 3)

    def test_the_switch_skips_discovery(self) -> None:
        build = make_build(self.dir)
        env = {**self.empty, "OPENCLAW_REF_DIR": str(self.dir / "ref"),
               ui_build.CONTROL_UI_ENV: "builtin"}
        ref = self.dir / "ref" / "pkg" / "node_modules"
        ref.mkdir(parents=True)
        os.symlink(build.package, ref / "openclaw")
        for configured in (None, build.root):
            found = ui_build.discover(configured, env)
            self.assertTrue(found.build and found.build.builtin)
            self.assertEqual(found.looked, ("nothing: OPENCLAW_TW_CONTROL_UI=builtin",))
        env[ui_build.CONTROL_UI_ENV] = "auto"  # any other value: discovery as usual
        self.assertFalse(ui_build.discover(None, env).build.builtin)  # type: ignore[union-attr]

    def test_a_broken_configured_root_is_still_reported(self) -> None:
        found = ui_build.discover(self.dir / "nothing-here", self.empty)
        self.assertIsNone(found.build)
        self.assertEqual(found.invalid_root, self.dir / "nothing-here")


class Served(SynchronousTestCase):
    """The dashboard through the real ``Site``, with the Control UI's guarantees."""

    base_path = ""

    def setUp(self) -> None:
        self.dir = fresh_dir(self)
        cfg = self.dir / "openclaw.json"
        cfg.write_text(json.dumps({"gateway": {"controlUi": {"basePath": self.base_path}}}))
        self.app, self.clock = make_app(config=str(cfg))
        self.site = tap.build_site(self.app)
        self.ui: control_ui.ControlUi = self.site.resource.control_ui
        with capturedLogs() as events:
            self.found: Discovery = self.successResultOf(
                self.ui.discover({ui_build.CONTROL_UI_ENV: "builtin"}))
        self.log = [formatEvent(e) for e in events]

    def get(self, target: str, method: str = "GET", **headers: str) -> RawReply:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        return raw_request(self.site, method, target, hdrs, clock=self.clock)

    def assert_ui_headers(self, reply: RawReply) -> None:
        self.assertEqual(reply.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(reply.header("X-Frame-Options"), "DENY")
        self.assertEqual(reply.header("Referrer-Policy"), "no-referrer")
        self.assertIn("frame-ancestors 'none'", reply.header("Content-Security-Policy") or "")

    def test_startup_log_says_so(self) -> None:
        self.assertTrue(any("serving the built-in dashboard on /" in line
                            for line in self.log), self.log)

    def test_index(self) -> None:
        reply = self.get("/", Accept=HTML_ACCEPT)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(reply.header("Cache-Control"), "no-cache")
        self.assert_ui_headers(reply)
        policy = dict(d.strip().split(" ", 1) for d in
                      (reply.header("Content-Security-Policy") or "").split(";"))
        # what the dashboard needs: same-origin module scripts only, its WebSocket, no inline
        self.assertEqual(policy["script-src"], "'self'")
        self.assertIn("ws:", policy["connect-src"].split())
        self.assertIn("'self'", policy["style-src"].split())
        body = reply.body.decode()
        self.assertIn('<script type="module" src="/assets/app.js"></script>', body)
        self.assertIn('data-openclaw-control-ui-base-path=""', body)
        self.assertEqual(self.get("/chat", Accept=HTML_ACCEPT).body, reply.body)  # SPA fallback

    def test_assets(self) -> None:
        for name, ctype in (("app.js", "application/javascript; charset=utf-8"),
                            ("dashboard.css", "text/css; charset=utf-8")):
            reply = self.get(f"/assets/{name}", Accept_Encoding="gzip, br")
            self.assertEqual((reply.status, reply.header("Content-Type")), (200, ctype))
            self.assertEqual(reply.header("Cache-Control"), "no-cache")
            self.assertIsNone(reply.header("Content-Encoding"))
            self.assertEqual(reply.body, (DASHBOARD_ROOT / "assets" / name).read_bytes())
            self.assert_ui_headers(reply)
            again = self.get(f"/assets/{name}",
                             If_Modified_Since=reply.header("Last-Modified") or "")
            self.assertEqual(again.status, 304)
        self.assertEqual(self.get("/assets/missing.js").status, 404)

    def test_paths_stay_inside(self) -> None:
        shell = self.get("/").body
        for target in ("/assets/../../control_ui.py", "/%2e%2e/ui_build.py",
                       "/assets/%2e%2e/%2e%2e/http.py", "/..%2fcontrol_ui.py",
                       "/assets/..%5c..%5ccontrol_ui.py", "/%00.js", "/assets/%zz.js",
                       "//etc/passwd", "/assets/" + "a" * 5000 + ".js"):
            reply = self.get(target)  # a 404, or the app shell (the SPA fallback)
            self.assertIn((reply.status, reply.body), ((404, b"Not Found"), (200, shell)),
                          target)

    def test_symlinks_out_refused_hard_links_allowed(self) -> None:
        copy = self.dir / "dashboard"
        shutil.copytree(DASHBOARD_ROOT, copy)
        secret = self.dir / "secret.txt"
        secret.write_bytes(b"TOP-SECRET")
        os.symlink(secret, copy / "assets" / "out.js")
        os.link(copy / "assets" / "dom.js", copy / "assets" / "hard.js")
        self.ui.state = Discovery(ui_build.dashboard("test", copy))
        self.assertEqual(self.get("/assets/out.js").status, 404)
        hard = self.get("/assets/hard.js")
        self.assertEqual((hard.status, hard.body), (200, (copy / "assets/dom.js").read_bytes()))


class ServedUnderBasePath(Served):
    base_path = "/openclaw"

    def get(self, target: str, method: str = "GET", **headers: str) -> RawReply:
        return super().get(self.base_path + target if target.startswith("/") else target,
                           method, **headers)

    def test_startup_log_says_so(self) -> None:
        self.assertTrue(any("serving the built-in dashboard on /openclaw/" in line
                            for line in self.log), self.log)

    def test_index(self) -> None:
        reply = self.get("/", Accept=HTML_ACCEPT)
        self.assertEqual(reply.status, 200)
        body = reply.body.decode()
        self.assertIn('src="/openclaw/assets/app.js"', body)
        self.assertIn('href="/openclaw/assets/dashboard.css"', body)
        self.assertIn('data-openclaw-control-ui-base-path="/openclaw"', body)
        outside = raw_request(self.site, "GET", "/assets/app.js", {}, clock=self.clock)
        self.assertEqual(outside.status, 404)
