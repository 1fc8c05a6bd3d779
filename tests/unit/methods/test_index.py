"""The API index (``openclaw-tw methods``) and the honesty of the scope table behind it."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from twisted.trial import unittest

from openclaw_tw.client import cli
from openclaw_tw.methods.index import build_index, scope_source
from tests.support.helpers import make_gateway


class ApiIndex(unittest.SynchronousTestCase):
    def test_no_method_falls_back_to_the_default_admin_scope(self) -> None:
        """Every registered method's scope comes from the reference's method table or a
        reserved admin prefix; an unclassified method would silently require admin."""
        gw, _ = make_gateway()
        unclassified = sorted(m for m in gw.methods.names() if scope_source(m) == "default")
        self.assertEqual(unclassified, [])

    def test_the_index_lists_every_method_with_its_handler(self) -> None:
        gw, _ = make_gateway()
        index = build_index()
        self.assertEqual([r["method"] for r in index], sorted(gw.methods.names()))
        for row in index:
            path, _, line = row["handler"].rpartition(":")
            self.assertTrue(path.startswith("openclaw_tw/methods/"), row)
            self.assertGreater(int(line), 0, row)
        health = next(r for r in index if r["method"] == "health")
        self.assertEqual((health["scope"], health["optional"]), ("operator.read", ["probe"]))

    def test_the_command_prints_it(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(cli.main(["methods", "--json"]), 0)
        rows = json.loads(out.getvalue())
        self.assertIn("chat.send", [r["method"] for r in rows])
        out = io.StringIO()
        with redirect_stdout(out):
            cli.main(["methods"])
        self.assertIn("sessions.list", out.getvalue())
