"""JSON has one number type: ``5.0`` where an integer is expected is the integer 5, as the
real gateway's validator takes it, and handlers get an ``int`` (they used to get the float
and crash on it: ``logs.tail {"limit": 5.0}`` was an internal error)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.schema import Arr, Int, Nullable, Obj, OneOf, Record, Str
from tests.support.helpers import call, hello, make_gateway, ok


class Normalize(SynchronousTestCase):
    def test_integral_floats_become_ints_and_nothing_else_changes(self) -> None:
        schema = Obj({"limit": Int(minimum=1)}, {
            "ids": Arr(Int()), "by": Record(Int()), "maybe": Nullable(Int()),
            "either": OneOf(Str(), Int()), "name": Str()})
        params = {"limit": 5.0, "ids": [1, 2.0], "by": {"a": 3.0}, "maybe": 4.0,
                  "either": 6.0, "name": "x"}
        value, problem = schema.normalize(params)
        self.assertIsNone(problem)
        self.assertEqual(value, {"limit": 5, "ids": [1, 2], "by": {"a": 3}, "maybe": 4,
                                 "either": 6, "name": "x"})
        for v in (value["limit"], value["ids"][1], value["by"]["a"], value["maybe"],
                  value["either"]):
            self.assertIs(type(v), int)
        self.assertEqual(params["limit"], 5.0)  # the request's own dict is not touched

    def test_unchanged_values_are_not_copied(self) -> None:
        params = {"limit": 5, "ids": [1, 2]}
        value, problem = Obj({"limit": Int()}, {"ids": Arr(Int())}).normalize(params)
        self.assertIsNone(problem)
        self.assertIs(value, params)

    def test_a_fraction_is_refused(self) -> None:
        self.assertEqual(Obj({"limit": Int()}).normalize({"limit": 5.5})[1],
                         "at /limit: must be integer")


class Methods(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, _ = make_gateway()
        self.client = hello(self.gw, scopes=["operator.admin", "operator.read"])

    def test_limits_given_as_floats(self) -> None:
        self.assertIn("lines", ok(self.client, "logs.tail", {"limit": 5.0}))
        self.assertIn("messages", ok(self.client, "chat.history",
                                     {"sessionKey": "main", "limit": 3.0}))
        self.assertIn("sessions", ok(self.client, "sessions.list", {"limit": 2.0}))
        res = call(self.client, "logs.tail", {"limit": 5.5})
        self.assertEqual(res["error"]["message"],
                         "invalid logs.tail params: at /limit: must be integer")
