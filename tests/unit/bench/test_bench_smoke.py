"""The benchmark harness's pure parts (``bench/``): the table, device signing, the parameters
(/proc sampling of live processes is in tests/loopback/test_procstat.py).

No gateway is started here; ``make bench`` is what runs the scenarios.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bench.device import DeviceKey, v3_payload
from bench.report import FIGURES, Recorder, cell, fmt, percentile, ratio, table
from openclaw_tw.devices import proof
from openclaw_tw.errors import GatewayError

try:
    import websockets  # noqa: F401
except ImportError:  # the bench extra is not installed
    HAVE_WEBSOCKETS = False
else:
    HAVE_WEBSOCKETS = True


class ReportTests(SynchronousTestCase):
    def test_percentile(self) -> None:
        values = [float(i) for i in range(1, 101)]
        self.assertEqual(percentile(values, 50), 50.0)
        self.assertEqual(percentile(values, 99), 99.0)
        self.assertEqual(percentile(values, 100), 100.0)
        self.assertEqual(percentile([3.0], 99), 3.0)
        self.assertIsNone(percentile([], 50))

    def test_units(self) -> None:
        self.assertEqual(fmt(0.000044, "us"), "44.0 µs")
        self.assertEqual(fmt(0.00178, "ms"), "1.78 ms")
        self.assertEqual(fmt(950 * 2**20, "MiB"), "950.0 MiB")
        self.assertEqual(fmt(23483.4, "rate"), "23\u202f483/s")
        self.assertEqual(fmt(83.0, "pct"), "83.0%")
        self.assertEqual(fmt(None, "ms"), "—")
        self.assertEqual(cell([0.001, 0.003, 0.002], "ms"), "2.00 ms (1.00–3.00)")
        self.assertEqual(ratio([1.0], [4.0]), "0.25×")
        self.assertEqual(ratio([1.0], []), "—")
        self.assertEqual(ratio([-1.0], [2.0]), "—")

    def test_table_and_jsonl(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "r.jsonl"
            rec = Recorder(path, {"machine": "test"})
            for rep, (ours, theirs) in enumerate([(20e-6, 44e-6), (22e-6, 46e-6)]):
                rec.add("rpc", "last-heartbeat-8x8", "ours", rep, cpu_per_op=ours, rate=30000)
                rec.add("rpc", "last-heartbeat-8x8", "theirs", rep, cpu_per_op=theirs,
                        rate=23000)
            rec.add("chat", "offline", "ours", 0, first_delta_p50=0.0015)
            rec.na("chat", "offline", "theirs", "no offline model")
            rec.close()
            lines = [json.loads(x) for x in path.read_text().splitlines()]
        self.assertEqual(len(lines), 7)
        self.assertEqual(lines[0]["scenario"], "meta")
        self.assertEqual(lines[-1]["na"], "no offline model")
        md = table(rec.rows)
        rows = {r.split(" | ")[0].lstrip("| "): r for r in md.splitlines()[2:]}
        cpu = rows["rpc `last-heartbeat` 8×8: server CPU/op"]
        self.assertIn("21.0 µs (20.0–22.0)", cpu)
        self.assertIn("45.0 µs (44.0–46.0)", cpu)
        self.assertIn("0.47×", cpu)
        self.assertIn("≤ 33 µs", cpu)
        chat = rows["chat (offline model): chat.send → first delta p50"]
        self.assertIn("1.50 ms", chat)
        self.assertIn("n/a: no offline model", chat)
        self.assertNotIn("fanout", md)  # figures without any value are left out

    def test_figures_are_unique(self) -> None:
        keys = [(f.scenario, f.variant, f.metric) for f in FIGURES]
        self.assertEqual(len(keys), len(set(keys)))


class DeviceSigningTests(SynchronousTestCase):
    def params(self) -> dict:
        return {"minProtocol": 4, "maxProtocol": 4,
                "client": {"id": "cli", "version": "1", "platform": " Linux ", "mode": "cli",
                           "deviceFamily": "Desktop"},
                "role": "operator", "scopes": ["operator.admin", "operator.read"],
                "auth": {"token": "secret123"}}

    def test_signature_verifies_as_v3(self) -> None:
        key = DeviceKey()
        params = self.params()
        now_ms = int(time.time() * 1000)
        params["device"] = key.sign_connect(params, "nonce-1", now_ms)
        verified = proof.verify(params, "nonce-1", now_ms + 5)
        self.assertEqual(verified.device_id, key.device_id)
        self.assertEqual(verified.public_key, key.public_key)
        self.assertEqual(verified.payload_version, "v3")
        self.assertEqual(len(key.device_id), 64)
        self.assertNotIn("=", params["device"]["signature"])

    def test_payload_layout(self) -> None:
        self.assertEqual(
            v3_payload("id", "cli", "cli", "operator", ["a", "b"], 5, "tok", "n", " LiNux ",
                       None),
            b"v3|id|cli|cli|operator|a,b|5|tok|n|linux|")

    def test_wrong_nonce_and_tampering_fail(self) -> None:
        key = DeviceKey()
        params = self.params()
        now_ms = int(time.time() * 1000)
        params["device"] = key.sign_connect(params, "nonce-1", now_ms)
        self.assertRaises(GatewayError, proof.verify, params, "nonce-2", now_ms)
        params["scopes"] = ["operator.read"]  # signed scopes no longer match
        self.assertRaises(GatewayError, proof.verify, params, "nonce-1", now_ms)


class ParamsTests(SynchronousTestCase):
    def setUp(self) -> None:
        if not HAVE_WEBSOCKETS:
            raise self.skipTest("websockets not installed (pip install '.[bench]')")

    def test_quick_is_smaller_and_bounded(self) -> None:
        from bench import scenarios
        full, quick = scenarios.Params(), scenarios.Params.quick()
        self.assertLessEqual(quick.hs_n, full.hs_n)
        self.assertLessEqual(quick.soak_n, full.soak_n)
        self.assertLessEqual(quick.chat_turns, full.chat_turns)
        for variant, (_m, _c, _w, total) in quick.rpc.items():
            self.assertLessEqual(total, full.rpc[variant][3])
        self.assertGreater(quick.run_timeout, 0)
        self.assertEqual(scenarios.reps_for("soak", full), 3)

    def test_cli_parsing(self) -> None:
        from bench.__main__ import parse
        args = parse(["--quick", "--scenarios", "idle,rpc"])
        self.assertTrue(args.quick)
        self.assertEqual(args.names, ["startup", "rpc"])


class StateScaleTests(SynchronousTestCase):
    def test_generated_state_is_what_the_store_reads(self) -> None:
        """``bench.stategen`` writes through the store's schema: the gateway's store opens it
        without a migration and counts, lists and reads it like state it wrote itself."""
        from bench.stategen import generate, sessions_file
        from openclaw_tw.app import SESSIONS_FILE_SCHEMA
        from openclaw_tw.db import Database
        from openclaw_tw.sessions.listing import ListQuery
        from openclaw_tw.sessions.store import SessionStore

        state = Path(self.mktemp())
        out = generate(state, 60, 4)
        self.assertEqual((out["sessions"], out["entries"]), (60, 60 * 4 + 10 * 400))
        db = Database(sessions_file(state), SESSIONS_FILE_SCHEMA, inline=True)
        db.open()
        self.addCleanup(db.close)
        store = SessionStore(db, lambda: 1)
        store.load()
        self.assertEqual((store.count, store.interrupted_at_start), (60, []))
        rows, total = self.successResultOf(store.page(ListQuery(agent_id="ops", limit=5)))
        # every tenth session is agent ops (i % 10 == 9), but not the ten big ones (main)
        self.assertEqual((total, len(rows)), (5, 5))
        history = self.successResultOf(store.history("agent:main:big-0", 200))
        self.assertEqual(len(history), 200)

    def test_state_table(self) -> None:
        from bench.state_scale import table as state_table

        rec = Recorder(None)
        rec.add("state-scale", "10k/start", "ours", 0, first_hello_s=0.8, idle_rss=60 * 2**20)
        rec.add("state-scale", "10k/list-50", "ours", 0, p50_ms=1.5, cpu_ms_per_call=0.9)
        rec.add("chat", "state-10k", "ours", 0, cpu_per_turn=0.005)
        text = state_table(rec.rows)
        line = next(x for x in text.splitlines() if x.startswith("| ours | 10k"))
        self.assertIn("| 0.80 | 60.0 | 1.50 |", line)
        self.assertTrue(line.endswith("| 5.00 |"))
