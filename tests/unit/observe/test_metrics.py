"""Prometheus metrics (observe/metrics.py, web/metrics.py): scraped over HTTP from an
in-memory gateway and parsed with prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.observe.metrics import Metrics, NullMetrics, offered_auth
from openclaw_tw.web.root import GatewayRoot
from tests.support.helpers import TOKEN, WSClient, call, hello, make_app

BASE = "http://127.0.0.1:18789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(scraped: dict[Any, float], name: str, **labels: str) -> float | None:
    return scraped.get((name, frozenset(labels.items())))


class Scrape(SynchronousTestCase):
    options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.app, self.clock = make_app(**self.options)
        self.gw = self.app.hub
        self.stub = StubTreq(GatewayRoot(self.app))

    def fetch(self, path: str = "/metrics", headers: dict[str, str] | None = None,
              method: str = "GET") -> tuple[int, Any, bytes]:
        d = self.stub.request(method, BASE + path, headers=AUTH if headers is None else headers)
        fired: list[bool] = []
        d.addBoth(lambda r: (fired.append(True), r)[1])
        for _ in range(100):  # a wrong token is answered after the limiter's delay
            self.stub.flush()
            if fired:
                break
            self.clock.advance(0.05)
        response = self.successResultOf(d)
        return response.code, response.headers, self.successResultOf(response.content())

    def scrape(self) -> dict[Any, float]:
        code, headers, body = self.fetch()
        self.assertEqual(code, 200, body)
        self.assertEqual(headers.getRawHeaders("Content-Type"),
                         ["text/plain; version=0.0.4; charset=utf-8"])
        return samples(body.decode())


class TokenMode(Scrape):
    def test_requests_handshakes_connections(self) -> None:
        client = hello(self.gw, scopes=["operator.admin"])
        for _ in range(3):
            self.assertTrue(call(client, "last-heartbeat")["ok"])
        self.assertFalse(call(client, "no.such.method")["ok"])
        self.assertFalse(call(client, "logs.tail", {"bogus": 1})["ok"])
        bad = WSClient(self.gw)
        bad.connect(token="wrong")
        self.clock.advance(10)  # wrong credentials are answered after the limiter's delay
        self.assertIsNotNone(bad.closed())
        self.assertEqual(self.gw.broadcast_presence(), 1)
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_gateway_rpc_requests_total",
                               method="last-heartbeat", outcome="ok"), 3)
        self.assertEqual(value(s, "openclaw_gateway_rpc_duration_seconds_count",
                               method="last-heartbeat"), 3)
        self.assertEqual(value(s, "openclaw_gateway_rpc_requests_total",
                               method="unknown", outcome="INVALID_REQUEST"), 1)
        self.assertEqual(value(s, "openclaw_gateway_rpc_requests_total",
                               method="logs.tail", outcome="INVALID_REQUEST"), 1)
        self.assertEqual(value(s, "openclaw_gateway_handshakes_total",
                               outcome="ok", auth="token"), 1)
        self.assertEqual(value(s, "openclaw_gateway_handshakes_total",
                               outcome="INVALID_REQUEST", auth="token"), 1)
        self.assertEqual(value(s, "openclaw_gateway_connections", role="operator",
                               client="cli", mode="cli", state="open"), 1)
        self.assertEqual(value(s, "openclaw_gateway_rpc_inflight"), 0)
        self.assertIsNotNone(value(s, "openclaw_gateway_event_loop_lag_seconds",
                                   quantile="0.99"))
        self.assertGreater(value(s, "openclaw_sqlite_open_files") or 0, 0)
        self.assertGreater(value(s, "process_resident_memory_bytes") or 0, 0)
        self.assertEqual(value(s, "openclaw_gateway_events_sent_total",
                                      event="presence"), 1)

    def test_unknown_method_names_do_not_grow_the_series(self) -> None:
        client = hello(self.gw, scopes=["operator.admin"])
        call(client, "junk.0")
        before = len(self.scrape())
        for i in range(1, 300):
            call(client, f"junk.{i}")
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_gateway_rpc_requests_total",
                               method="unknown", outcome="INVALID_REQUEST"), 300)
        # the request and scrape series are the same ones (the scrapes add no method label)
        self.assertLessEqual(len(s), before + 25)
        self.assertFalse(any("junk" in str(k) for k in s))

    def test_overload_refusal(self) -> None:
        client = hello(self.gw)
        self.gw.max_inflight = 0
        res = call(client, "last-heartbeat")
        self.assertEqual(res["error"]["code"], "UNAVAILABLE")
        self.gw.max_inflight = 100
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_gateway_rpc_refused_total", reason="inflight"), 1)

    def test_slow_consumers(self) -> None:
        client = hello(self.gw)
        self.gw.max_buffered_bytes = 0
        self.gw.broadcast("presence", {"presence": []}, drop_if_slow=True)
        self.gw.broadcast("health", {})
        client.flush()
        self.gw.max_buffered_bytes = 50 << 20
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_gateway_events_dropped_total", event="presence"), 1)
        self.assertEqual(value(s, "openclaw_gateway_slow_consumer_closes_total"), 1)

    def test_agent_run_and_time_to_first_token(self) -> None:
        client = hello(self.gw, scopes=["operator.write"])
        res = call(client, "chat.send", {"sessionKey": "main", "message": "hi",
                                         "idempotencyKey": "k1"})
        self.assertTrue(res["ok"], res)
        for _ in range(400):
            self.clock.advance(0.01)
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_agent_runs_total", outcome="ok",
                               provider="offline"), 1)
        self.assertEqual(value(s, "openclaw_model_calls_total", provider="offline",
                               outcome="ok"), 1)
        self.assertEqual(value(s, "openclaw_model_time_to_first_token_seconds_count",
                               provider="offline"), 1)

    def test_auth(self) -> None:
        code, _, _ = self.fetch(headers={})
        self.assertEqual(code, 401)
        code, _, _ = self.fetch(headers={"Authorization": "Bearer nope"})
        self.assertEqual(code, 401)
        code, headers, _ = self.fetch(method="POST")
        self.assertEqual(code, 405)
        self.assertEqual(headers.getRawHeaders("Allow"), ["GET, HEAD"])
        code, _, body = self.fetch("/api/diagnostics/prometheus")
        self.assertEqual(code, 200)
        self.assertIn(b"openclaw_gateway_connections", body)

    def test_each_app_has_its_own_registry(self) -> None:
        other, _ = make_app()
        self.assertIsInstance(self.app.metrics, Metrics)
        self.assertIsNot(other.metrics.registry, self.app.metrics.registry)  # type: ignore


class LoopbackMode(Scrape):
    options = {"metrics": "loopback"}

    def test_loopback_without_token(self) -> None:
        code, _, body = self.fetch(headers={})
        self.assertEqual(code, 200)
        samples(body.decode())

    def test_forwarded_is_refused(self) -> None:
        code, _, _ = self.fetch(headers={"X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(code, 403)


class Off(Scrape):
    options = {"metrics": "off"}

    def test_not_served_and_no_counting(self) -> None:
        self.assertIsInstance(self.app.metrics, NullMetrics)
        self.assertIs(self.gw.metrics, self.app.metrics)
        code, _, _ = self.fetch()
        self.assertEqual(code, 404)
        client = hello(self.gw)
        self.assertTrue(call(client, "last-heartbeat")["ok"])


class OfferedAuth(SynchronousTestCase):
    def test_closed_set_whatever_the_params(self) -> None:
        cases = [(None, "none"), ([], "none"), ({"auth": "x"}, "none"),
                 ({"auth": {"token": "t"}}, "token"), ({"auth": {"password": "p"}}, "password"),
                 ({"device": {}, "auth": {"deviceToken": "d"}}, "device-token"),
                 ({"device": {"id": 1}}, "device")]
        for params, want in cases:
            self.assertEqual(offered_auth(params), want, params)


class Buckets(SynchronousTestCase):
    def test_latency_lands_in_the_le_bucket(self) -> None:
        m = Metrics({"health"}, ["tick"], process=False)
        m.request_done("health", "ok", 0.3)
        m.request_done("health", "ok", 0.25)  # le is inclusive
        m.request_done("health", "UNAVAILABLE", 100.0)
        m.events_sent("no-such-event", 4)
        s = samples(self.successResultOf(m.render()).decode())
        bucket = "openclaw_gateway_rpc_duration_seconds_bucket"
        self.assertEqual(value(s, bucket, method="health", le="0.1"), 0)
        self.assertEqual(value(s, bucket, method="health", le="0.25"), 1)
        self.assertEqual(value(s, bucket, method="health", le="0.5"), 2)
        self.assertEqual(value(s, bucket, method="health", le="60.0"), 2)
        self.assertEqual(value(s, bucket, method="health", le="+Inf"), 3)
        self.assertAlmostEqual(value(s, "openclaw_gateway_rpc_duration_seconds_sum",
                                     method="health") or 0, 100.55)
        self.assertEqual(value(s, "openclaw_gateway_rpc_requests_total", method="health",
                               outcome="UNAVAILABLE"), 1)
        self.assertEqual(value(s, "openclaw_gateway_events_sent_total", event="other"), 4)


class Reloads(SynchronousTestCase):
    def test_reload_outcomes_are_counted(self) -> None:
        import json

        from twisted.internet.testing import MemoryReactorClock

        from openclaw_tw import app as composition
        from openclaw_tw.config import settings as config
        from tests.support.tmp import scratch_dir

        state = scratch_dir("openclaw-metrics-")
        path = state / "openclaw.json"
        path.write_text(json.dumps({"gateway": {"mode": "local"}}))
        options = {"state-dir": str(state), "port": "0", "config": str(path), "token": TOKEN}
        env = {"HOME": str(state)}
        app = composition.build(
            config.resolve(options, env), MemoryReactorClock(),
            config_resolver=lambda data: config.resolve_data(options, env, data), env=env)
        watcher = app.config_watcher
        assert watcher is not None
        path.write_text(json.dumps({"gateway": {"mode": "local"},
                                    "logging": {"level": "info"}}))  # a hot path
        watcher.reload("test")
        path.write_text("{ gateway: { port: ")
        watcher.reload("test")
        path.write_text(json.dumps({"gateway": {"mode": "local", "port": 19999}}))
        watcher.reload("test")
        s = samples(self.successResultOf(app.metrics.render()).decode())  # type: ignore
        for outcome in ("applied", "rejected", "restart-required"):
            self.assertEqual(value(s, "openclaw_config_reloads_total", outcome=outcome), 1,
                             outcome)


class Channels(Scrape):
    def test_messages_in_and_refused_and_account_states(self) -> None:
        from twisted.internet.defer import Deferred, succeed

        from openclaw_tw.channels.manager import MAX_IN_FLIGHT, AccountService
        from openclaw_tw.channels.message import Inbound

        class Account(AccountService):
            channel = "irc"

            def connect(self) -> Deferred[Any]:
                return Deferred()

            def deliver(self, *args: Any, **kw: Any) -> Deferred[Any]:
                return succeed(None)

        ctx = self.app.channels.ctx
        account = Account("default", {}, ctx)
        self.patch(ctx.router, "handle", lambda acct, m: Deferred())  # turns never end
        for i in range(MAX_IN_FLIGHT + 3):
            account.inbound(Inbound("irc", "default", "dm", "x", "x", f"m{i}"))
        self.patch(self.app.channels, "accounts", lambda: [account])
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_channel_messages_total", channel="irc",
                               direction="in"), MAX_IN_FLIGHT)
        self.assertEqual(value(s, "openclaw_channel_messages_total", channel="irc",
                               direction="refused"), 3)
        self.assertEqual(value(s, "openclaw_channel_accounts", channel="irc", state="stopped"),
                         1)


class CronRuns(Scrape):
    def test_a_forced_agent_turn_run_is_counted(self) -> None:
        self.app.cron.startService()
        self.addCleanup(self.app.cron.stopService)
        client = hello(self.gw, scopes=["operator.admin"])
        job = call(client, "cron.add", {
            "name": "digest", "schedule": {"kind": "every", "everyMs": 3_600_000},
            "sessionTarget": "isolated", "wakeMode": "now", "delivery": {"mode": "none"},
            "payload": {"kind": "agentTurn", "message": "summarise"}})["payload"]
        self.assertTrue(call(client, "cron.run", {"id": job["id"], "mode": "force"})["ok"])
        for _ in range(500):
            self.clock.advance(0.01)
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_cron_runs_total", outcome="ok"), 1)
        self.assertEqual(value(s, "openclaw_agent_runs_total", outcome="ok",
                               provider="offline"), 1)


class NodeInvokes(Scrape):
    def test_ok_and_timeout_are_counted(self) -> None:
        from tests.support.nodes import Node, approve_node

        op = hello(self.gw, scopes=["operator.admin"])
        node = Node(self.gw)
        approve_node(self.app, node, op)
        node.ws.pop()
        op.pop()
        body = {"nodeId": node.id, "command": "system.which", "idempotencyKey": "k1",
                "params": {"bins": ["x"]}}
        rid = op.request("node.invoke", body)
        [req] = node.invoke_requests()
        self.assertTrue(node.call("node.invoke.result", {"id": req["id"], "nodeId": node.id,
                                                         "ok": True})["ok"])
        self.assertTrue(op.response(rid)["ok"])  # type: ignore[index]
        op.request("node.invoke", {**body, "idempotencyKey": "k2", "timeoutMs": 1000})
        self.clock.advance(1.1)
        s = self.scrape()
        self.assertEqual(value(s, "openclaw_node_invokes_total", outcome="ok"), 1)
        self.assertEqual(value(s, "openclaw_node_invokes_total", outcome="timeout"), 1)
        self.assertEqual(value(s, "openclaw_gateway_connections", role="node",
                               client="node-host", mode="node", state="open"), 1)
