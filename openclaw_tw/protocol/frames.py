"""Frame codec: ``req`` / ``res`` / ``event`` envelopes, one JSON object per text frame.

No Twisted imports: this module is pure and fast.  Events are encoded once and the per-socket
``seq`` is spliced onto the end of the encoded bytes, so a broadcast to N sockets costs one
JSON encode (see ``EncodedEvent``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple

from twisted.logger import Logger

from openclaw_tw import _json
from openclaw_tw.protocol.limits import MAX_FRAME_DEPTH
from openclaw_tw.protocol.schema import AnyValue, Obj, Str

REQUEST_FRAME = Obj(
    required={"type": Str(enum=["req"]), "id": Str(min_len=1), "method": Str(min_len=1)},
    optional={
        "params": AnyValue(),
        "traceparent": Str(max_len=128),
        "expectedProfileId": Str(min_len=1, max_len=128),
    },
)

_log = Logger()


class FrameDecodeError(Exception):
    """The bytes were not one JSON value."""


class FrameTooDeep(FrameDecodeError):
    """JSON nested past the parser's depth limit; ``req_id`` is the request's id when the
    frame names it before anything nested (as every client writes a request), else None."""

    def __init__(self, message: str, req_id: str | None) -> None:
        super().__init__(message)
        self.req_id = req_id


# "id" among the leading string members of the frame object (type, method, id, in any order)
_LEADING_ID = re.compile(
    rb'\s*\{\s*(?:"(?:type|method)"\s*:\s*"(?:[^"\\]|\\.){0,256}"\s*,\s*){0,2}'
    rb'"id"\s*:\s*("(?:[^"\\]|\\.){1,256}")')


def leading_id(payload: bytes) -> str | None:
    """The request id of a frame too deep to parse, read from its first bytes alone."""
    found = _LEADING_ID.match(payload, 0, 2048)
    if found is None:
        return None
    try:
        value = json.loads(found.group(1))
    except ValueError:
        return None
    return value if isinstance(value, str) and value else None


def decode(payload: bytes) -> Any:
    """One JSON value, as Node's ``JSON.parse`` reads it.

    orjson refuses two things Node accepts: an escaped lone surrogate (``"\\udfff"``) and a
    number too large for a double (``1e400``, Infinity in Node).  For those frames alone the
    standard library parses again: a lone surrogate becomes U+FFFD (every string we hold
    stays encodable) and a non-finite number becomes ``null`` (what Node would send back).
    """
    try:
        return _json.loads(payload)
    except _json.JSONDecodeError as e:
        message = str(e)
        if "surrogate" in message or "infinity" in message:
            return _lenient(payload, message)
        if "depth limit" in message:
            raise FrameTooDeep(message, leading_id(payload)) from None
        raise FrameDecodeError(message) from None


def _lenient(payload: bytes, message: str) -> Any:
    try:
        value = json.loads(payload, parse_float=_finite, parse_int=_int,
                           parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise FrameDecodeError(message) from None
    return _replace_surrogates(value)


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _int(text: str) -> int | float | None:
    """An integer as orjson reads one: past 64 bits (either sign) a double, which orjson can
    write again (it cannot write such an int)."""
    if len(text) <= 20:
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
    return _finite(text)


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _clean(text: str) -> str:
    # json.loads already joined every escaped pair, so any surrogate left is a lone one.
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate replaced (iterative: it may be ~1000 deep)."""
    if isinstance(value, str):
        return _clean(value)
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = _clean(item)
                elif isinstance(item, list | dict):
                    stack.append(item)
        elif isinstance(node, dict):
            for key in [k for k in node if _SURROGATE.search(k)]:
                node[_clean(key)] = node.pop(key)
            for key, item in node.items():
                if isinstance(item, str):
                    node[key] = _clean(item)
                elif isinstance(item, list | dict):
                    stack.append(item)
    return value


_REQUEST_KEYS = frozenset({"type", "id", "method", "params", "traceparent", "expectedProfileId"})


class BadRequest(NamedTuple):
    """A request frame to answer with an error: its id (or "invalid") and the message."""

    req_id: str
    message: str


def read_request(payload: bytes) -> dict[str, Any] | BadRequest | None:
    """A text frame after hello: the valid request, a ``BadRequest`` to answer, or None for
    what is not JSON (ignored, as the real gateway does)."""
    try:
        frame = decode(payload)
    except FrameTooDeep as e:  # JSON all the same: a request with an id gets an answer
        if e.req_id is None:
            return None
        return BadRequest(e.req_id, "invalid request frame: must NOT be nested more than "
                                    f"{MAX_FRAME_DEPTH} levels deep")
    except FrameDecodeError:
        return None
    problem = request_problem(frame)
    if problem is not None:
        req_id = frame.get("id") if isinstance(frame, dict) else None
        if not isinstance(req_id, str) or not req_id:
            req_id = "invalid"
        return BadRequest(req_id, f"invalid request frame: {problem}")
    return frame  # type: ignore[no-any-return]


def request_problem(frame: Any) -> str | None:
    """``None`` for a valid request frame, else the schema message.

    The common well-formed frame is recognised without walking the schema (hot path); any
    doubt falls through to the schema, which produces the exact message.
    """
    if (type(frame) is dict and frame.get("type") == "req"
            and type(frame.get("id")) is str and frame["id"]
            and type(frame.get("method")) is str and frame["method"]
            and "traceparent" not in frame and "expectedProfileId" not in frame
            and _REQUEST_KEYS.issuperset(frame)):
        return None
    return REQUEST_FRAME.check(frame)


def encode_response(req_id: str, payload: Any) -> bytes:
    try:
        return _json.dumps({"type": "res", "id": req_id, "ok": True, "payload": payload})
    except _json.JSONEncodeError:
        return _unencodable(req_id)


def encode_error(req_id: str, error: dict[str, Any], payload: Any = None) -> bytes:
    frame: dict[str, Any] = {"type": "res", "id": req_id, "ok": False, "error": error}
    if payload is not None:
        frame["payload"] = payload
    try:
        return _json.dumps(frame)
    except _json.JSONEncodeError:
        return _unencodable(req_id)


def _unencodable(req_id: str) -> bytes:
    """A result orjson cannot encode (deeper than 255 levels, an integer past 64 bits) is a
    bug, logged as one; the caller still gets an answer rather than silence."""
    _log.failure("response to {req_id} could not be encoded", req_id=req_id[:64])
    return _json.dumps({"type": "res", "id": req_id, "ok": False,
                        "error": {"code": "UNAVAILABLE", "message": "response not encodable"}})


def encode_plain_event(event: str, payload: Any) -> bytes:
    """An event with no ``seq`` (``connect.challenge``, node-targeted frames)."""
    return _json.dumps({"type": "event", "event": event, "payload": payload})


class EncodedEvent:
    """A broadcast event encoded once; ``with_seq`` adds the per-socket sequence number."""

    __slots__ = ("event", "_head", "size")

    def __init__(self, event: str, payload: Any, state_version: dict[str, int] | None = None):
        frame: dict[str, Any] = {"type": "event", "event": event, "payload": payload}
        if state_version is not None:
            frame["stateVersion"] = state_version
        encoded = _json.dumps(frame)
        self.event = event
        self._head = encoded[:-1] + b',"seq":'
        self.size = len(encoded) + 12

    def with_seq(self, seq: int) -> bytes:
        return self._head + str(seq).encode("ascii") + b"}"
