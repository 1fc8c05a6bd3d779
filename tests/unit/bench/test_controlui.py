"""The control-ui scenario's pure parts (``bench/controlui.py``): targets, the served-page
check, the settle rule, the run's row, ``VmHWM`` parsing and the table's rows.

No browser and no gateway here; ``make bench`` runs the scenario.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench.procstat import TreeSample, parse_hwm
from bench.report import FIGURES, Recorder, table

try:
    from bench import controlui
except ImportError:  # bench.servers needs websockets (the bench extra)
    controlui = None  # type: ignore[assignment]

MiB = 2**20


def needs_bench(case: SynchronousTestCase) -> None:
    if controlui is None:
        raise case.skipTest("websockets not installed (pip install '.[bench]')")


def tree(rss: int, pids: tuple[int, ...] = (1,)) -> TreeSample:
    return TreeSample(cpu_s=0.0, rss=rss, root_rss=rss, pids=pids, threads=1, tasks={})


class TargetTests(SynchronousTestCase):
    def setUp(self) -> None:
        needs_bench(self)

    def test_control_ui_on_each_gateway_and_the_dashboard_on_its_own_instance(self) -> None:
        ts = controlui.targets(["ours", "theirs"], None)
        self.assertEqual([(t.server, t.variant) for t in ts],
                         [("ours", "control-ui"), ("theirs", "control-ui"),
                          ("ours", "dashboard")])
        self.assertEqual({t.ready for t in ts[:2]}, {controlui.READY_CONTROL_UI})
        self.assertIsNone(ts[2].missing)
        self.assertEqual((ts[2].path, ts[2].gateway), ("/", controlui.DASHBOARD_GATEWAY))
        self.assertEqual(ts[0].marker, controlui.CONTROL_UI_MARKER)

    def test_dashboard_path_given(self) -> None:
        (dash,) = [t for t in controlui.targets(["ours"], "dash/") if t.variant == "dashboard"]
        self.assertIsNone(dash.missing)
        self.assertEqual(dash.path, "/dash/")
        self.assertEqual(dash.ready, controlui.READY_DASHBOARD)
        self.assertIn("dataset.ready === 'chat'", dash.ready)

    def test_only_theirs_has_no_dashboard_row(self) -> None:
        self.assertEqual([t.variant for t in controlui.targets(["theirs"], "/d")],
                         ["control-ui"])

    def test_url_carries_the_token_in_the_fragment(self) -> None:
        class Gw:
            port = 19401
            token = "T0k"
        t = controlui.targets(["ours"], None)[0]
        self.assertEqual(t.url(Gw()), "http://127.0.0.1:19401/#token=T0k")  # type: ignore[arg-type]

    def test_stamp_ready_wraps_the_condition(self) -> None:
        js = controlui.stamp_ready(" document.title === 'x' \n")
        self.assertTrue(js.startswith("() => {"))
        self.assertIn("(document.title === 'x')", js)
        self.assertIn("b.readyAt = performance.now(); b.reqAtReady = b.req", js)
        self.assertIn('textarea[aria-label="Chat composer"]', controlui.READY_CONTROL_UI)
        self.assertIn("b.hello !== null && b.open > 0", controlui.READY_CONTROL_UI)


class DocumentProblemTests(SynchronousTestCase):
    def setUp(self) -> None:
        needs_bench(self)

    def test_the_ui_build(self) -> None:
        body = '<html data-openclaw-control-ui-build-id="x">'
        check = controlui.document_problem
        self.assertIsNone(check(200, "text/html; charset=utf-8", body, controlui.CONTROL_UI_MARKER))
        self.assertEqual(check(404, "text/html", "", None), "HTTP 404")
        self.assertIn("no answer", check(None, "", "Connection refused", None) or "")
        self.assertIn("not an HTML page", check(200, "application/json", "{}", None) or "")
        self.assertIn("not the UI build",
                      check(200, "text/html", "<p>no build</p>", controlui.CONTROL_UI_MARKER)
                      or "")

    def test_the_control_ui_is_not_the_dashboard(self) -> None:
        body = '<html data-openclaw-control-ui-build-id="x">'
        self.assertIn("real Control UI", controlui.document_problem(
            200, "text/html", body, None, controlui.CONTROL_UI_MARKER) or "")
        self.assertIsNone(controlui.document_problem(
            200, "text/html", "<body data-ready>", None, controlui.CONTROL_UI_MARKER))


class SettleTests(SynchronousTestCase):
    def setUp(self) -> None:
        needs_bench(self)

    def test_quiet_after_the_last_new_request(self) -> None:
        s = controlui.Settle(10.0, 5, quiet=1.0, limit=15.0)
        self.assertFalse(s.feed(10.5, 5))
        self.assertFalse(s.feed(10.9, 7))   # a new request restarts the quiet window
        self.assertFalse(s.feed(11.8, 7))
        self.assertTrue(s.feed(11.9, 7))
        self.assertEqual(s.last_change, 10.9)
        self.assertFalse(s.capped)

    def test_capped_when_requests_never_stop(self) -> None:
        s = controlui.Settle(0.0, 0, quiet=1.0, limit=3.0)
        done, t, n = False, 0.0, 0
        while not done and t < 100:
            t += 0.5
            n += 1
            done = s.feed(t, n)
        self.assertTrue(done)
        self.assertEqual(t, 3.0)
        self.assertTrue(s.capped)


class RunRowTests(SynchronousTestCase):
    def setUp(self) -> None:
        needs_bench(self)

    def page(self) -> dict:
        return {"readyAt": 2500.0, "reqAtReady": 22, "req": 38, "hello": 1200.0,
                "sockets": 1, "errors": 1, "failed": [f"m{i}: X" for i in range(30)],
                "dcl": 900.0, "lastReq": 4000.0, "lat": [[4.0, "a"], [1.0, "b"], [2.0, "c"], [30.0, "d"], [3.0, "e"],
                                [0.5, "f"]], "unanswered": 2}

    def test_row(self) -> None:
        row = controlui.run_row(self.page(), window_s=5.5, capped=False,
                                http_requests=93, before=tree(60 * MiB),
                                end=tree(62 * MiB, (1, 2)), cpu_s=0.12,
                                sampled_peak=70 * MiB, root_peak=71 * MiB)
        self.assertEqual(row["ready_s"], 2.5)
        self.assertEqual(row["hello_s"], 1.2)
        self.assertEqual(row["dcl_s"], 0.9)
        self.assertEqual((row["burst_s"], row["window_s"]), (4.0, 5.5))
        self.assertEqual((row["requests_ready"], row["requests_burst"]), (22, 38))
        self.assertEqual(row["rss_peak"], 70 * MiB)
        self.assertEqual(row["rss_spike"], 10 * MiB)
        self.assertEqual(row["rss_after"], 62 * MiB)
        self.assertEqual(row["root_peak"], 71 * MiB)
        self.assertEqual(row["processes"], 2)
        self.assertEqual(len(row["failed"]), controlui.MAX_FAILED_LISTED)
        self.assertEqual(row["ws_rtt_p50"], 0.002)
        self.assertEqual(row["slowest"], ["d 30 ms", "a 4 ms", "e 3 ms", "c 2 ms", "b 1 ms"])
        self.assertEqual(row["ws_rtt_max"], 0.030)
        self.assertEqual(row["unanswered"], 2)

    def test_peak_is_never_below_the_end_points(self) -> None:
        # no sample landed (sampler slower than the load): the peak is the larger end point
        page = {**self.page(), "hello": None, "dcl": None, "lat": [], "lastReq": None}
        row = controlui.run_row(page, 1.5, True, 0, tree(50 * MiB), tree(55 * MiB), 0.0,
                                0, None)
        self.assertEqual(row["rss_peak"], 55 * MiB)
        self.assertEqual(row["rss_spike"], 5 * MiB)
        self.assertIsNone(row["hello_s"])
        self.assertIsNone(row["root_peak"])
        self.assertIsNone(row["ws_rtt_p50"])
        self.assertIsNone(row["ws_rtt_max"])
        self.assertTrue(row["settle_capped"])
        self.assertEqual(row["burst_s"], 2.5)  # no request at all: the burst ends at ready


class HwmTests(SynchronousTestCase):
    def test_parse(self) -> None:
        status = "Name:\tpython\nVmPeak:\t  200 kB\nVmHWM:\t   67912 kB\nVmRSS:\t 60000 kB\n"
        self.assertEqual(parse_hwm(status), 67912 * 1024)
        self.assertIsNone(parse_hwm("Name:\tkthreadd\n"))
        self.assertIsNone(parse_hwm("VmHWM:\n"))


class TableTests(SynchronousTestCase):
    def test_rows_and_the_dashboard_against_their_control_ui(self) -> None:
        rec = Recorder(None)
        for rep, (ours, theirs) in enumerate([(1.0, 2.0), (1.2, 2.2), (1.4, 2.4)]):
            rec.add("control-ui", "control-ui", "ours", rep, ready_s=ours, rss_peak=70 * MiB)
            rec.add("control-ui", "control-ui", "theirs", rep, ready_s=theirs,
                    rss_peak=1000 * MiB)
        rec.na("control-ui", "dashboard", "ours", "no built-in dashboard on this branch")
        md = table(rec.rows)
        rows = {r.split(" | ")[0].lstrip("| "): r for r in md.splitlines()[2:]}
        ready = rows["Control UI cold load: navigation → composer usable"]
        self.assertIn("1.20 s (1.00–1.40)", ready)
        self.assertIn("2.20 s (2.00–2.40)", ready)
        self.assertIn("0.55×", ready)
        self.assertIn("0.070×", rows["Control UI cold load: gateway RSS peak (tree)"])
        dash = [r for r in rows if r.startswith("our dashboard")]
        # an absent dashboard is one row with its reason, beside their Control UI's figure
        self.assertEqual(dash, ["our dashboard vs their Control UI cold load: navigation → "
                                "composer usable"])
        self.assertIn("n/a: no built-in dashboard on this branch", rows[dash[0]])
        self.assertIn("2.20 s (2.00–2.40)", rows[dash[0]])

    def test_dashboard_present_compares_with_their_control_ui(self) -> None:
        rec = Recorder(None)
        rec.add("control-ui", "control-ui", "theirs", 0, ready_s=2.0, cpu_s=1.0)
        rec.add("control-ui", "dashboard", "ours", 0, ready_s=0.5, cpu_s=0.01)
        md = table(rec.rows)
        rows = {r.split(" | ")[0].lstrip("| "): r for r in md.splitlines()[2:]}
        self.assertIn("0.25×", rows["our dashboard vs their Control UI cold load: navigation → "
                                    "composer usable"])
        self.assertIn("0.010×", rows["our dashboard vs their Control UI cold load: gateway CPU, "
                                     "navigation → settled"])
        # ours has no Control UI row: that figure shows theirs alone, without a ratio
        ready = rows["Control UI cold load: navigation → composer usable"]
        self.assertIn("| — | 2.00 s | — |", ready)

    def test_control_ui_figures(self) -> None:
        cui = [f for f in FIGURES if f.scenario == "control-ui"]
        self.assertTrue({"ready_s", "requests_ready", "requests_burst", "cpu_s", "rss_peak",
                         "rss_after"} <= {f.metric for f in cui})
        self.assertTrue(all(f.theirs_variant == "control-ui" for f in cui
                            if f.variant == "dashboard"))


class ParamsTests(SynchronousTestCase):
    def setUp(self) -> None:
        needs_bench(self)

    def test_quick_and_cli(self) -> None:
        from bench import scenarios
        from bench.__main__ import parse
        full, quick = scenarios.Params(), scenarios.Params.quick()
        self.assertLess(quick.ui_runs, full.ui_runs)
        self.assertLessEqual(quick.ui_settle_max_s, full.ui_settle_max_s)
        self.assertGreater(quick.ui_ready_timeout, 0)
        self.assertIn("control-ui", scenarios.ORDER)
        args = parse(["--scenarios", "control-ui", "--ui-runs", "3", "--dashboard-path", "/d"])
        self.assertEqual(args.names, ["control-ui"])
        self.assertEqual((args.ui_runs, args.dashboard_path), (3, "/d"))
        self.assertIn("control-ui", parse([]).names)  # part of make bench
