"""``logs.tail`` cursor reads and the JSON-lines log file (reference §6.1)."""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.daemon import logfile
from openclaw_tw.methods.logs import tail
from tests.support.helpers import hello, make_gateway
from tests.support.tmp import fresh_dir

BIG = 1_000_000


def lines(n: int, start: int = 0) -> bytes:
    return b"".join(b"line-%02d\n" % i for i in range(start, start + n))  # 8 bytes each


class Tail(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = fresh_dir(self) / "openclaw.log"
        self.path.write_bytes(lines(10))
        self.size = 80

    def append(self, data: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(data)

    def test_tail_without_cursor_returns_last_lines(self) -> None:
        out = tail(self.path, None, 3, BIG)
        self.assertEqual(out["lines"], ["line-07", "line-08", "line-09"])
        self.assertEqual(out["cursor"], self.size)
        self.assertEqual(out["size"], self.size)
        self.assertEqual(out["file"], str(self.path))
        self.assertTrue(out["truncated"])  # older lines exist
        self.assertFalse(out["reset"])

    def test_tail_of_whole_file_is_not_truncated(self) -> None:
        out = tail(self.path, None, 200, BIG)
        self.assertEqual(len(out["lines"]), 10)
        self.assertEqual(out["lines"][0], "line-00")
        self.assertFalse(out["truncated"])

    def test_cursor_read_returns_only_new_lines(self) -> None:
        cursor = tail(self.path, None, 200, BIG)["cursor"]
        self.assertEqual(tail(self.path, cursor, 200, BIG)["lines"], [])
        self.append(lines(2, start=10))
        out = tail(self.path, cursor, 200, BIG)
        self.assertEqual(out["lines"], ["line-10", "line-11"])
        self.assertEqual(out["cursor"], self.size + 16)
        self.assertFalse(out["truncated"])
        self.assertFalse(out["reset"])

    def test_partial_trailing_line_is_held_back(self) -> None:
        self.append(b"line-10\npart")
        out = tail(self.path, self.size, 200, BIG)
        self.assertEqual(out["lines"], ["line-10"])
        self.assertEqual(out["cursor"], self.size + 8)  # stops before "part"
        self.assertEqual(out["size"], self.size + 12)
        from_tail = tail(self.path, None, 200, BIG)
        self.assertEqual(from_tail["lines"][-1], "line-10")
        self.assertEqual(from_tail["cursor"], self.size + 8)
        self.append(b"ial\n")
        out = tail(self.path, out["cursor"], 200, BIG)
        self.assertEqual(out["lines"], ["partial"])

    def test_cursor_past_end_resets(self) -> None:
        out = tail(self.path, self.size + 1000, 2, BIG)
        self.assertTrue(out["reset"])
        self.assertEqual(out["lines"], ["line-08", "line-09"])
        self.assertEqual(out["cursor"], self.size)

    def test_max_bytes_bounds_a_cursor_read(self) -> None:
        out = tail(self.path, 0, 200, 20)
        self.assertEqual(out["lines"], ["line-00", "line-01"])  # 16 of 20 bytes: whole lines
        self.assertEqual(out["cursor"], 16)
        self.assertTrue(out["truncated"])
        out = tail(self.path, out["cursor"], 200, 20)
        self.assertEqual(out["lines"], ["line-02", "line-03"])

    def test_max_bytes_bounds_a_tail_read(self) -> None:
        out = tail(self.path, None, 200, 20)
        self.assertEqual(out["lines"], ["line-08", "line-09"])  # the cut first line is dropped
        self.assertEqual(out["cursor"], self.size)
        self.assertTrue(out["truncated"])

    def test_limit_bounds_a_cursor_read(self) -> None:
        out = tail(self.path, 0, 3, BIG)
        self.assertEqual(out["lines"], ["line-00", "line-01", "line-02"])
        self.assertEqual(out["cursor"], 24)
        self.assertTrue(out["truncated"])

    def test_missing_file(self) -> None:
        out = tail(self.path.with_name("nope.log"), None, 10, BIG)
        self.assertEqual((out["lines"], out["cursor"], out["size"], out["reset"]),
                         ([], 0, 0, False))
        self.assertTrue(tail(self.path.with_name("nope.log"), 50, 10, BIG)["reset"])

    def test_utf8_lines(self) -> None:
        self.append("héllo · wörld\n".encode())
        self.assertEqual(tail(self.path, self.size, 10, BIG)["lines"], ["héllo · wörld"])


class TailOverWebSocket(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, _ = make_gateway()
        self.client = hello(self.gw, scopes=["operator.read"])

    def call(self, params: Any) -> dict[str, Any]:
        res = self.client.response(self.client.request("logs.tail", params))
        assert res is not None
        return res

    def test_limit_zero_is_invalid(self) -> None:
        res = self.call({"limit": 0})
        self.assertEqual(res["error"], {
            "code": "INVALID_REQUEST",
            "message": "invalid logs.tail params: at /limit: must be >= 1"})

    def test_param_bounds(self) -> None:
        self.assertEqual(self.call({"limit": 5001})["error"]["message"],
                         "invalid logs.tail params: at /limit: must be <= 5000")
        self.assertEqual(self.call({"maxBytes": 0})["error"]["message"],
                         "invalid logs.tail params: at /maxBytes: must be >= 1")
        self.assertEqual(self.call({"cursor": -1})["error"]["message"],
                         "invalid logs.tail params: at /cursor: must be >= 0")
        self.assertEqual(self.call({"limit": True})["error"]["message"],
                         "invalid logs.tail params: at /limit: must be integer")
        self.assertEqual(self.call({"follow": True})["error"]["message"],
                         "invalid logs.tail params: at root: unexpected property 'follow'")

    def test_reads_the_gateway_log_file(self) -> None:
        path = self.gw.log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lines(5))
        res = self.call({"limit": 2})
        self.assertTrue(res["ok"], res)
        payload = res["payload"]
        self.assertEqual(payload["lines"], ["line-03", "line-04"])
        self.assertEqual((payload["cursor"], payload["size"]), (40, 40))
        self.assertEqual(payload["file"], str(path))
        with open(path, "ab") as f:
            f.write(lines(1, start=5))
        again = self.call({"cursor": payload["cursor"]})["payload"]
        self.assertEqual(again["lines"], ["line-05"])

    def test_requires_read(self) -> None:
        probe = hello(self.gw, scopes=[])
        res = probe.response(probe.request("logs.tail", {}))
        assert res is not None
        self.assertEqual(res["error"]["message"], "missing scope: operator.read")


class Redaction(SynchronousTestCase):
    def test_redact_nested(self) -> None:
        value = {"token": "t", "password": "p", "user": "bob",
                 "nested": {"secret": "s", "deviceToken": "d", "keep": 1},
                 "list": [{"authorization": "Bearer x", "n": 2}],
                 "auth": {"token": "inner"}}
        self.assertEqual(logfile.redact(value), {
            "token": "[redacted]", "password": "[redacted]", "user": "bob",
            "nested": {"secret": "[redacted]", "deviceToken": "[redacted]", "keep": 1},
            "list": [{"authorization": "[redacted]", "n": 2}],
            "auth": "[redacted]"})

    def test_record_redacts_top_level_fields(self) -> None:
        record = logfile.event_to_record({
            "log_format": "connect from {ip}", "ip": "127.0.0.1", "token": "secret123",
            "params": {"auth": {"password": "pw"}, "ok": True},
            "log_level": LogLevel.warn, "log_namespace": "gateway/ws", "log_time": 0.5})
        self.assertEqual(record["message"], "connect from 127.0.0.1")
        self.assertEqual(record["token"], "[redacted]")
        self.assertEqual(record["params"], {"auth": "[redacted]", "ok": True})
        self.assertEqual((record["level"], record["subsystem"]), ("warn", "gateway/ws"))
        self.assertEqual(record["time"], "1970-01-01T00:00:00.500Z")
        self.assertNotIn("secret123", json.dumps(record))

    def test_secret_not_leaked_through_the_message(self) -> None:
        # The module promises redaction before anything is written; a format string that
        # names a secret field must not smuggle it into "message".
        record = logfile.event_to_record({
            "log_format": "auth {token} for {who}", "token": "secret123", "who": "bob",
            "log_level": LogLevel.info, "log_namespace": "test", "log_time": 0.0})
        self.assertNotIn("secret123", json.dumps(record))
        self.assertEqual(record["message"], "auth [redacted] for bob")


class JsonLinesFile(SynchronousTestCase):
    def test_one_json_line_per_event(self) -> None:
        directory = fresh_dir(self)
        observer = logfile.JsonLinesFileObserver(directory)
        observer({"log_format": "hello {who}", "who": "world", "log_level": LogLevel.info,
                  "log_namespace": "test", "log_time": 1_795_000_000.25})
        observer({"log_format": "auth failed", "token": "secret123",
                  "log_level": LogLevel.error, "log_namespace": "test",
                  "log_time": 1_795_000_001.0})
        observer.stop()
        files = sorted(directory.glob("openclaw-*.log"))
        self.assertEqual(len(files), 1)
        raw = files[0].read_bytes()
        self.assertTrue(raw.endswith(b"\n"))
        records = [json.loads(line) for line in raw.splitlines()]
        self.assertEqual(len(records), 2)
        self.assertEqual(records[0]["message"], "hello world")
        self.assertEqual(records[0]["who"], "world")
        self.assertEqual(records[0]["level"], "info")
        self.assertEqual(records[0]["subsystem"], "test")
        self.assertEqual(records[1]["level"], "error")
        self.assertEqual(records[1]["token"], "[redacted]")
        self.assertNotIn(b"secret123", raw)
        # the file is what logs.tail serves
        out = tail(files[0], None, 10, BIG)
        self.assertEqual([json.loads(x)["message"] for x in out["lines"]][0], "hello world")

    def test_stop_without_events_is_harmless(self) -> None:
        directory = fresh_dir(self)
        observer = logfile.JsonLinesFileObserver(directory)
        observer.stop()
        self.assertEqual(list(directory.glob("openclaw-*.log")), [])
