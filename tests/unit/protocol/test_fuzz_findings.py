"""Regression tests for the method-layer findings of the fuzzing pass (issue #21, part A),
each named after what it prevents.  The fuzz tier (tests/fuzz) keeps looking for more."""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol import frames
from openclaw_tw.protocol.schema import Int, Obj, bounds_problem
from tests.support.helpers import call, hello, make_app, ok

ADMIN = ["operator.admin"]
CRON_JOB: dict[str, Any] = {
    "name": "j", "schedule": {"kind": "every", "everyMs": 60_000}, "sessionTarget": "main",
    "wakeMode": "next-heartbeat", "payload": {"kind": "systemEvent", "text": "hi"}}


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def raw_request(client: Any, req_id: str, method: str, params_json: str) -> dict[str, Any]:
    client.send_raw(('{"type":"req","id":"' + req_id + '","method":"' + method +
                     '","params":' + params_json + "}").encode())
    res = client.response(req_id)
    assert res is not None, f"no response to {method}"
    return res


class Case(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.admin = hello(self.gw, scopes=ADMIN)

    def assertRefused(self, res: dict[str, Any], message: str) -> None:
        self.assertFalse(res["ok"], res)
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        self.assertEqual(res["error"]["message"], message)


class SessionsSubscribe(Case):
    """Finding 1: a read-scope client's string ``activeMinutes`` reached ``* 60_000``."""

    def test_a_string_active_minutes_cannot_reach_the_arithmetic(self) -> None:
        reader = hello(self.gw, scopes=["operator.read"])
        res = call(reader, "sessions.subscribe", {"activeMinutes": "9" * 20_000})
        self.assertRefused(res, "invalid sessions.subscribe params: at /activeMinutes: "
                                "must be integer")

    def test_other_wrong_types_are_refused_not_internal_errors(self) -> None:
        reader = hello(self.gw, scopes=["operator.read"])
        for field, value, why in [("activeMinutes", [1], "must be integer"),
                                  ("activeMinutes", 0, "must be >= 1"),
                                  ("limit", {"a": 1}, "must be integer"),
                                  ("offset", "1", "must be integer"),
                                  ("includeGlobal", "yes", "must be boolean"),
                                  ("label", "x" * 513, "must NOT have more than 512 characters")]:
            res = call(reader, "sessions.subscribe", {field: value})
            self.assertRefused(res, f"invalid sessions.subscribe params: at /{field}: {why}")
        self.assertEqual(ok(reader, "sessions.subscribe",
                                    {"activeMinutes": 5.0})["list"]["count"], 0)
        self.assertEqual(ok(reader, "sessions.subscribe", {}), {"subscribed": True})


class CronPoisoning(Case):
    """Finding 2: a payload nested 300 deep was stored, never answered, and closed every later
    ``cron.list`` (and every restart's) with 1011; a schedule 1,000 deep raised RecursionError."""

    def test_a_payload_nested_300_deep_is_refused_before_it_is_stored(self) -> None:
        params = json.dumps(CRON_JOB)[:-1] + ',"delivery":' + nested(300) + "}"
        res = raw_request(self.admin, "deep1", "cron.add", params)
        self.assertFalse(res["ok"], res)
        self.assertIn("must NOT be nested more than 64 levels deep", res["error"]["message"])
        self.assertLess(len(res["error"]["message"]), 400)
        self.assertEqual(ok(self.admin, "cron.list", {"includeDisabled": True})["total"], 1)

    def test_a_schedule_nested_1000_deep_is_refused_without_recursion(self) -> None:
        params = json.dumps({**CRON_JOB, "schedule": None})
        params = params.replace('"schedule": null', '"schedule": ' + nested(1000))
        res = raw_request(self.admin, "deep2", "cron.add", params)
        self.assertFalse(res["ok"], res)
        self.assertIn("at /schedule/a/a/", res["error"]["message"])
        self.assertIsNone(self.admin.closed())

    def test_a_job_stored_too_deep_earlier_does_not_poison_cron_list(self) -> None:
        job = ok(self.admin, "cron.add", CRON_JOB)
        poisoned = json.dumps({**job, "id": "poisoned"})[:-1] + ',"delivery":' + \
            nested(300) + "}"
        self.app.cron_db.run_now(lambda conn: conn.execute(
            "INSERT INTO jobs VALUES (?, ?)", ("poisoned", poisoned)))
        self.app.cron.load()  # what a restart does
        listed = ok(self.admin, "cron.list", {"includeDisabled": True})
        self.assertNotIn("poisoned", [j["id"] for j in listed["jobs"]])
        self.assertIn(job["id"], [j["id"] for j in listed["jobs"]])
        self.assertIsNone(self.admin.closed())

    def test_params_bounds_walk_iteratively(self) -> None:
        value = json.loads("[" * 900 + "]" * 900)
        self.assertEqual(bounds_problem(value, max_depth=1000), None)
        self.assertIn("nested more than 64", bounds_problem(value) or "")
        self.assertEqual(bounds_problem({"k": list(range(10_001))}),
                         "at /k: must NOT have more than 10000 items")


class IntegralFloats(Case):
    """Finding 3: ``cron.runs {"offset": 1e308}`` reached SQLite as a 309-digit integer."""

    def test_cron_runs_offset_1e308_is_an_empty_page(self) -> None:
        res = raw_request(self.admin, "big", "cron.runs", '{"offset":1e308,"limit":5.0}')
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["payload"]["entries"], [])
        self.assertEqual(res["payload"]["limit"], 5)

    def test_integers_past_int64_are_int64s_largest(self) -> None:
        schema = Obj(optional={"n": Int(minimum=0)})
        self.assertEqual(schema.normalize({"n": 1e308}), ({"n": 2**63 - 1}, None))
        self.assertEqual(schema.normalize({"n": 10**30}), ({"n": 2**63 - 1}, None))
        self.assertEqual(schema.normalize({"n": 1e308 / 3 + 0.5})[1], None)


class Silence(Case):
    """Finding 7: an escaped lone surrogate (Node's parser takes it) got no answer at all."""

    def test_a_lone_surrogate_gets_an_answer(self) -> None:
        res = raw_request(self.admin, "sur", "sessions.resolve", '{"key":"\\udfff"}')
        self.assertIn("ok", res)
        res = raw_request(self.admin, "sur2", "sessions.list", '{"label":"a\\ud800b"}')
        self.assertTrue(res["ok"], res)

    def test_a_number_past_a_double_gets_an_answer(self) -> None:
        res = raw_request(self.admin, "inf", "logs.tail", '{"limit":1e400}')
        self.assertRefused(res, "invalid logs.tail params: at /limit: must be integer")

    def test_decode_reads_what_node_reads(self) -> None:
        self.assertEqual(frames.decode(b'{"a\\udfff":["\\ud800x","\\ud83d\\ude00",1e999]}'),
                         {"a\ufffd": ["\ufffdx", "\U0001f600", None]})
        for bad in (b'[NaN, "\\udfff"]', b'{"a": Infinity, "b": "\\udfff"}', b'"\\udfff'):
            self.assertRaises(frames.FrameDecodeError, frames.decode, bad)

    def test_a_frame_nested_past_the_parser_limit_gets_an_answer(self) -> None:
        deep = "[" * 3000 + "]" * 3000
        res = raw_request(self.admin, "deep", "cron.add", '{"payload":' + deep + "}")
        self.assertRefused(res, "invalid request frame: must NOT be nested more than 1024 "
                                "levels deep")
        self.admin.send_raw(('{"params":' + deep + ',"type":"req","id":"late"}').encode())
        self.assertIsNone(self.admin.response("late"))  # no id before the nesting: no answer
        self.assertEqual(frames.leading_id(b' { "method" : "x", "type":"req", "id":"a\\"b"'),
                         'a"b')
        self.assertTrue(ok(self.admin, "health", {}))  # the connection still serves

    def test_an_unknown_provider_does_not_echo_a_megabyte(self) -> None:
        req_id = self.admin.request("agent", {"message": "hi", "model": "m" * 1_000_000,
                                              "idempotencyKey": "k1"})
        self.clock.advance(1)
        frames_ = [f for f in self.admin.pop() if isinstance(f, dict)]
        self.assertLess(max(len(json.dumps(f)) for f in frames_), 4096)
        final = [f for f in frames_ if f.get("id") == req_id and not f["ok"]]
        self.assertEqual(len(final), 1, frames_)
        self.assertTrue(final[0]["error"]["message"].startswith(
            "Unknown model provider: mmm"), final)
        self.assertTrue(final[0]["error"]["message"].endswith("…(1000000 chars)"), final)

    def test_an_unexpected_property_name_is_clipped(self) -> None:
        res = call(self.admin, "health", {"k" * 100_000: 1})
        self.assertLess(len(res["error"]["message"]), 200, res)
        self.assertIn("(100000 chars)", res["error"]["message"])

    def test_an_unencodable_response_is_answered_and_logged(self) -> None:
        logged: list[Any] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        encoded = json.loads(frames.encode_response("r1", {"n": 2**70}))
        self.assertEqual(encoded["error"]["message"], "response not encodable")
        self.assertEqual(encoded["id"], "r1")
        self.assertTrue(any(e.get("log_failure") for e in logged))
        self.flushLoggedErrors()


class FoundByTheFuzzTier(Case):
    """Internal errors the fuzz tier found in this pass."""

    def test_an_exec_approval_plan_that_is_not_an_object_is_refused(self) -> None:
        res = call(self.admin, "exec.approval.request", {"command": "ls", "systemRunPlan": -5})
        self.assertRefused(res, "invalid exec.approval.request params: at /systemRunPlan: "
                                "must be object")
        res = call(self.admin, "exec.approval.request",
                   {"command": "ls", "systemRunPlan": {"argv": "ls"}})
        self.assertRefused(res, "invalid exec.approval.request params: "
                                "at /systemRunPlan/argv: must be array")

    def test_an_unknown_id_is_not_echoed_whole(self) -> None:
        res = call(self.admin, "cron.get", {"jobId": "x" * 36_000})
        self.assertFalse(res["ok"], res)
        # the real message's advice (~230 chars) and the id clipped, twice
        self.assertLess(len(json.dumps(res["error"])), 600, res)
        self.assertEqual(res["error"]["details"]["code"], "CRON_JOB_NOT_FOUND")
        for method, params in [("device.pair.remove", {"deviceId": "d" * 50_000}),
                               ("node.describe", {"nodeId": "n" * 50_000})]:
            res = call(self.admin, method, params)
            self.assertFalse(res["ok"], res)
            self.assertLess(len(json.dumps(res["error"])), 400, res)
