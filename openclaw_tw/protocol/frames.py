"""Frame codec: ``req`` / ``res`` / ``event`` envelopes, one JSON object per text frame.

No Twisted imports: this module is pure and fast.  Events are encoded once and the per-socket
``seq`` is spliced onto the end of the encoded bytes, so a broadcast to N sockets costs one
JSON encode (see ``EncodedEvent``).
"""

from __future__ import annotations

from typing import Any

from openclaw_tw import _json
from openclaw_tw.protocol.schema import AnyValue, Obj, Str

REQUEST_FRAME = Obj(
    required={"type": Str(enum=["req"]), "id": Str(min_len=1), "method": Str(min_len=1)},
    optional={
        "params": AnyValue(),
        "traceparent": Str(max_len=128),
        "expectedProfileId": Str(min_len=1, max_len=128),
    },
)


class FrameDecodeError(Exception):
    """The bytes were not one JSON value."""


def decode(payload: bytes) -> Any:
    try:
        return _json.loads(payload)
    except _json.JSONDecodeError as e:
        raise FrameDecodeError(str(e)) from None


_REQUEST_KEYS = frozenset({"type", "id", "method", "params", "traceparent", "expectedProfileId"})


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
    return _json.dumps({"type": "res", "id": req_id, "ok": True, "payload": payload})


def encode_error(req_id: str, error: dict[str, Any], payload: Any = None) -> bytes:
    frame: dict[str, Any] = {"type": "res", "id": req_id, "ok": False, "error": error}
    if payload is not None:
        frame["payload"] = payload
    return _json.dumps(frame)


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
