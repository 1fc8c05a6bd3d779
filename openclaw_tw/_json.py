"""JSON helpers: orjson for speed; one place that decides how we encode."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError
JSONEncodeError = orjson.JSONEncodeError  # a TypeError: depth > 255, int > 64 bits, …


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def pretty(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode("utf-8")
