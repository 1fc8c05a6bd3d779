"""Frame codec round trips (hypothesis) and the AJV wording of the params schema."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw import _json
from openclaw_tw.protocol import frames
from openclaw_tw.protocol.handshake import CONNECT_PARAMS
from openclaw_tw.protocol.schema import Arr, Bool, Int, Nullable, Obj, OneOf, Record, Str

HYPO = settings(max_examples=150, deadline=None, database=None)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
names = st.text(min_size=1, max_size=40)
seqs = st.integers(min_value=1, max_value=2**53)
state_versions = st.none() | st.fixed_dictionaries(
    {"presence": st.integers(min_value=0, max_value=2**31),
     "health": st.integers(min_value=0, max_value=2**31)}
)


class EncodedEventRoundTrip(SynchronousTestCase):
    @HYPO
    @given(event=names, payload=json_values, seq=seqs, sv=state_versions)
    def test_with_seq_decodes_to_event_plus_seq(
        self, event: str, payload: Any, seq: int, sv: dict[str, int] | None
    ) -> None:
        encoded = frames.EncodedEvent(event, payload, sv)
        frame = _json.loads(encoded.with_seq(seq))
        expected: dict[str, Any] = {"type": "event", "event": event, "payload": payload,
                                    "seq": seq}
        if sv is not None:
            expected["stateVersion"] = sv
        self.assertEqual(frame, expected)
        self.assertEqual(encoded.event, event)

    @HYPO
    @given(payload=json_values, a=seqs, b=seqs)
    def test_one_encoding_serves_many_sockets(self, payload: Any, a: int, b: int) -> None:
        encoded = frames.EncodedEvent("presence", payload, {"presence": 1, "health": 1})
        first, second = _json.loads(encoded.with_seq(a)), _json.loads(encoded.with_seq(b))
        self.assertEqual((first["seq"], second["seq"]), (a, b))
        first.pop("seq")
        second.pop("seq")
        self.assertEqual(first, second)

    def test_seq_is_the_last_key_and_plain_events_have_none(self) -> None:
        raw = frames.EncodedEvent("tick", {"ts": 1}).with_seq(7)
        self.assertTrue(raw.endswith(b',"seq":7}'), raw)
        plain = _json.loads(frames.encode_plain_event("connect.challenge", {"nonce": "n"}))
        self.assertEqual(plain, {"type": "event", "event": "connect.challenge",
                                 "payload": {"nonce": "n"}})


class ResponseRoundTrip(SynchronousTestCase):
    @HYPO
    @given(req_id=names, payload=json_values)
    def test_encode_response(self, req_id: str, payload: Any) -> None:
        frame = _json.loads(frames.encode_response(req_id, payload))
        self.assertEqual(frame, {"type": "res", "id": req_id, "ok": True, "payload": payload})

    @HYPO
    @given(req_id=names, code=names, message=names, details=json_values,
           payload=json_values)
    def test_encode_error(self, req_id: str, code: str, message: str, details: Any,
                          payload: Any) -> None:
        error = {"code": code, "message": message, "details": details}
        frame = _json.loads(frames.encode_error(req_id, error, payload))
        expected: dict[str, Any] = {"type": "res", "id": req_id, "ok": False, "error": error}
        if payload is not None:
            expected["payload"] = payload
        self.assertEqual(frame, expected)

    def test_encode_error_without_payload_has_no_payload_key(self) -> None:
        frame = _json.loads(frames.encode_error("r1", {"code": "X", "message": "m"}))
        self.assertNotIn("payload", frame)


class RequestFrame(SynchronousTestCase):
    def test_valid_and_invalid_frames(self) -> None:
        self.assertIsNone(frames.request_problem({"type": "req", "id": "1", "method": "health"}))
        self.assertIsNone(frames.request_problem(
            {"type": "req", "id": "1", "method": "health", "params": [1, {"a": None}]}))
        # captured: {"code":"INVALID_REQUEST","message":"invalid request frame: must have
        # required property 'id'"}
        self.assertEqual(frames.request_problem({"type": "req", "method": "health"}),
                         "must have required property 'id'")
        self.assertEqual(frames.request_problem({"type": "res", "id": "1", "method": "x"}),
                         "at /type: must be equal to one of the allowed values")
        self.assertEqual(frames.request_problem({"type": "req", "id": "", "method": "x"}),
                         "at /id: must NOT have fewer than 1 characters")
        self.assertEqual(frames.request_problem([]), "must be object")
        self.assertEqual(
            frames.request_problem({"type": "req", "id": "1", "method": "x", "bogus": 1}),
            "at root: unexpected property 'bogus'")

    def test_decode_rejects_non_json(self) -> None:
        self.assertRaises(frames.FrameDecodeError, frames.decode, b"{not json")
        self.assertEqual(frames.decode(b'{"a":1}'), {"a": 1})


class SchemaWording(SynchronousTestCase):
    """The strings clients display are AJV's, as the real gateway formats them."""

    def test_required_property(self) -> None:
        self.assertEqual(Obj(required={"text": Str()}).check({}),
                         "must have required property 'text'")

    def test_required_property_nested(self) -> None:
        schema = Obj(required={"client": Obj(required={"id": Str()})})
        self.assertEqual(schema.check({"client": {}}),
                         "at /client: must have required property 'id'")

    def test_unexpected_property_at_root(self) -> None:
        # captured: "invalid connect params: at root: unexpected property 'bogus'"
        self.assertEqual(Obj().check({"x": 1}), "at root: unexpected property 'x'")

    def test_unexpected_property_nested_has_path(self) -> None:
        schema = Obj(optional={"a": Obj()})
        self.assertEqual(schema.check({"a": {"x": 1}}), "at /a: unexpected property 'x'")

    def test_enum_at_path(self) -> None:
        schema = Obj(required={"a": Obj(required={"b": Str(enum=["p", "q"])})})
        self.assertEqual(schema.check({"a": {"b": "z"}}),
                         "at /a/b: must be equal to one of the allowed values")
        self.assertIsNone(schema.check({"a": {"b": "q"}}))

    def test_connect_client_id_enum(self) -> None:
        params = {"minProtocol": 4, "maxProtocol": 4,
                  "client": {"id": "nope", "version": "1", "platform": "linux", "mode": "cli"}}
        self.assertEqual(CONNECT_PARAMS.check(params),
                         "at /client/id: must be equal to one of the allowed values")

    def test_must_be_object(self) -> None:
        for value in ([], "x", 1, None, True):
            self.assertEqual(Obj().check(value), "must be object")
        self.assertEqual(Obj(optional={"a": Obj()}).check({"a": []}), "at /a: must be object")
        self.assertEqual(Record(Bool()).check([]), "must be object")

    def test_string_lengths(self) -> None:
        self.assertEqual(Str(min_len=1).check(""), "must NOT have fewer than 1 characters")
        self.assertEqual(Str(max_len=3).check("abcd"), "must NOT have more than 3 characters")
        self.assertEqual(Str().check(1), "must be string")

    def test_other_types(self) -> None:
        self.assertEqual(Bool().check(1), "must be boolean")
        self.assertEqual(Arr(Str()).check({}), "must be array")
        self.assertEqual(Arr(Str()).check(["a", 2]), "at /1: must be string")
        self.assertEqual(Arr(Str(), max_items=1).check(["a", "b"]),
                         "must NOT have more than 1 items")
        self.assertIsNone(Nullable(Str()).check(None))
        self.assertEqual(Nullable(Str()).check(2), "must be string")

    def test_json_pointer_escaping(self) -> None:
        self.assertEqual(Record(Bool()).check({"a/b~c": 1}), "at /a~1b~0c: must be boolean")

    def test_first_problem_wins_required_before_unexpected(self) -> None:
        schema = Obj(required={"text": Str()})
        self.assertEqual(schema.check({"bogus": 1}), "must have required property 'text'")

    def test_deep_paths_and_the_order_of_problems(self) -> None:
        """Paths are assembled on the way out of a failure (nothing is built for a value
        that validates); the first problem in document order still wins."""
        inner = Obj(required={"id": Str()}, optional={"n": Int()})
        schema = Obj(required={"a": Arr(Record(OneOf(inner, Bool())))},
                     optional={"z": Str(), "b/c": Obj(optional={"d": Nullable(inner)})})
        ok = {"a": [{"k": {"id": "x", "n": 2.0}}, {"k": True}]}
        self.assertEqual(schema.normalize(ok), ({"a": [{"k": {"id": "x", "n": 2}},
                                                       {"k": True}]}, None))
        self.assertEqual(schema.check({"a": [{}, {"x~y": 3}]}),
                         "at /a/1/x~0y: must match a schema in anyOf")
        self.assertEqual(schema.check({"a": [], "b/c": {"d": {"n": 1}}}),
                         "at /b~1c/d: must have required property 'id'")
        self.assertEqual(schema.check({"a": [], "b/c": {"d": {"id": "x", "q": 1}}}),
                         "at /b~1c/d: unexpected property 'q'")
        self.assertEqual(schema.check({"z": 1, "a": [], "bogus": 1, "other": 2}),
                         "at root: unexpected property 'bogus'")
        self.assertEqual(schema.check({"z": 1, "a": "x"}), "at /z: must be string")
        self.assertEqual(schema.check({"a": [{"k": {"id": 1}}]}),
                         "at /a/0/k: must match a schema in anyOf")


class IntSchema(SynchronousTestCase):
    @HYPO
    @given(st.integers(min_value=-(2**63), max_value=2**63))
    def test_accepts_integers(self, n: int) -> None:
        self.assertIsNone(Int().check(n))

    @HYPO
    @given(st.integers(min_value=-(2**52), max_value=2**52))
    def test_accepts_integral_floats(self, n: int) -> None:
        self.assertIsNone(Int().check(float(n)))  # JSON 2.0 is an integer for AJV

    @HYPO
    @given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()))
    def test_rejects_non_integral_floats(self, f: float) -> None:
        self.assertEqual(Int().check(f), "must be integer")

    def test_rejects_booleans_and_other_types(self) -> None:
        for value in (True, False, "1", None, [1], {"a": 1}):
            self.assertEqual(Int().check(value), "must be integer", value)

    def test_bounds(self) -> None:
        schema = Int(minimum=1, maximum=5000)
        self.assertEqual(schema.check(0), "must be >= 1")
        self.assertEqual(schema.check(5001), "must be <= 5000")
        self.assertIsNone(schema.check(1))
        self.assertIsNone(schema.check(5000))
        self.assertEqual(Obj(optional={"limit": schema}).check({"limit": 0}),
                         "at /limit: must be >= 1")
