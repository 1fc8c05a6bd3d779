"""``config.patch`` keeps the user's JSON5 comments and layout where the patch did not touch
them (issue #20): the in-place editor, then the RPC writing the file."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.config import document as configfile
from openclaw_tw.config.json5_edit import apply_changes
from tests.support.helpers import hello, ok
from tests.unit.config.test_reload import Harness

DOC = """// openclaw config -- hand-written
{
  /* the gateway */
  gateway: {
    port: 18789, // keep this port
    bind: 'loopback',
    http: { endpoints: { chatCompletions: { enabled: true } } },
  },
  "hooks": {
    "enabled": true,
    "token": "s3cret",  // rotate monthly
    "path": "/hooks"
  },
  agents: {},
}
"""


def edit(text: str, patch: dict[str, Any]) -> str:
    old = configfile.parse(text)
    new = configfile.merge_patch(old, patch)
    out = apply_changes(text, old, new, configfile.parse)
    assert out is not None, "fell back to a whole rewrite"
    assert configfile.parse(out) == new
    return out


class InPlace(SynchronousTestCase):
    def test_a_changed_value_is_replaced_where_it_stands(self) -> None:
        out = edit(DOC, {"gateway": {"port": 19000}})
        self.assertEqual(out, DOC.replace("port: 18789,", "port: 19000,"))

    def test_a_deep_change_keeps_the_siblings_text(self) -> None:
        out = edit(DOC, {"gateway": {"http": {"endpoints": {"chatCompletions":
                                                           {"enabled": False}}}}})
        self.assertEqual(out, DOC.replace("{ enabled: true }", "{ enabled: false }"))

    def test_a_removed_member_goes_with_its_comma_and_comment(self) -> None:
        out = edit(DOC, {"gateway": {"port": None}})
        self.assertNotIn("port", out)
        self.assertNotIn("keep this port", out)
        self.assertEqual(out, DOC.replace("    port: 18789, // keep this port\n", ""))

    def test_the_last_member_removed(self) -> None:
        out = edit(DOC, {"hooks": {"path": None}})
        self.assertIn('"token": "s3cret",  // rotate monthly\n  },', out)
        self.assertNotIn("/hooks", out)

    def test_a_new_member_is_indented_and_quoted_like_its_siblings(self) -> None:
        out = edit(DOC, {"hooks": {"allowRequestSessionKey": True},
                         "gateway": {"reload": {"mode": "hot"}}})
        self.assertIn('    "path": "/hooks",\n    "allowRequestSessionKey": true\n  },', out)
        self.assertIn("    bind: 'loopback',", out)
        self.assertIn('    reload: {\n      "mode": "hot"\n    }\n  },', out)
        for kept in ("// openclaw config -- hand-written", "/* the gateway */",
                     "// keep this port", "// rotate monthly"):
            self.assertIn(kept, out)

    def test_into_an_empty_object_and_a_new_top_level_key(self) -> None:
        out = edit(DOC, {"agents": {"defaults": {"model": {"primary": "mock/m1"}}},
                         "cron": {"enabled": False}})
        self.assertIn('  agents: {\n    "defaults": {\n      "model": {', out)
        self.assertIn('  cron: {\n    "enabled": false\n  }\n}\n', out)  # unquoted, as `agents`
        self.assertTrue(out.startswith("// openclaw config -- hand-written\n{\n"))

    def test_replacing_every_member_and_adding_writes_whole(self) -> None:
        old = configfile.parse("{a: 1}")
        self.assertIsNone(apply_changes("{a: 1}", old, {"b": 2}, configfile.parse))

    def test_text_it_cannot_read_is_left_to_a_whole_rewrite(self) -> None:
        for text in ("[1, 2]", "{a: 1, a: 2}", "{a: /* open"):
            with self.subTest(text=text):
                try:
                    old = configfile.parse(text)
                except Exception:
                    old = {}
                self.assertIsNone(apply_changes(text, old, {"a": 3}, configfile.parse))

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(st.dictionaries(
        st.sampled_from(["gateway", "hooks", "agents", "cron", "x y", "port"]),
        st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5),
                  st.dictionaries(st.sampled_from(["port", "bind", "enabled", "q"]),
                                  st.one_of(st.none(), st.booleans(), st.integers(0, 9)),
                                  max_size=3)),
        max_size=4))
    def test_any_patch_gives_exactly_the_patched_document(self, patch: dict[str, Any]) -> None:
        old = configfile.parse(DOC)
        new = configfile.merge_patch(old, patch)
        out = apply_changes(DOC, old, new, configfile.parse)
        if out is not None:  # None: written whole, which is always right
            self.assertEqual(configfile.parse(out), new)


class PatchKeepsComments(Harness):
    def test_config_patch_rewrites_only_what_changed(self) -> None:
        text = ("// my gateway\n{\n  // proxies I trust\n  gateway: {trustedProxies: "
                "['127.0.0.1'], http: {endpoints: {chatCompletions: {enabled: true}}}},\n"
                "  hooks: {enabled: true, token: 'hook-secret-1', path: '/hooks'}, // hooks\n}\n")
        self.write(None, text)
        self.settle()
        admin = hello(self.gw, scopes=["operator.admin"])
        base = ok(admin, "config.get", {})["hash"]
        ok(admin, "config.patch", {"raw": json.dumps({"hooks": {"path": "/in"}}),
                                   "baseHash": base})
        self.assertEqual(self.path.read_text(), text.replace("path: '/hooks'", 'path: "/in"'))
