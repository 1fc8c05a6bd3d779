"""Hypothesis strategies for method params: values a method's declared schema promises to
take, those values broken one field at a time, and type confusion (wrong types, huge and deep
values, unicode edge cases, integral floats, missing and extra keys).

Values too deep for orjson and JSON text no Python value encodes (escaped lone surrogates) are
carried as ``Raw`` JSON text; ``encode`` writes a request frame around them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from openclaw_tw import _json
from openclaw_tw.protocol.schema import (
    AnyValue,
    Arr,
    Bool,
    Int,
    Nullable,
    Num,
    Obj,
    OneOf,
    Record,
    Schema,
    Str,
)


class Raw:
    """JSON text sent as is (deep nesting, escaped lone surrogates)."""

    def __init__(self, text: str, label: str) -> None:
        self.text, self.label = text, label

    def __repr__(self) -> str:
        return f"Raw({self.label})"


def deep(depth: int, kind: str = "list", leaf: str = '"x"') -> Raw:
    if kind == "list":
        return Raw("[" * depth + leaf + "]" * depth, f"list nested {depth}")
    return Raw('{"a":' * depth + leaf + "}" * depth, f"object nested {depth}")


def encode(value: Any) -> str:
    """JSON text of a generated value (orjson for plain parts, ``Raw`` spliced in)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(_json.dumps(str(k)).decode() + ":" + encode(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # any size: the gateway must cope with what Node would parse
    return _json.dumps(value).decode()


def request_frame(req_id: str, method: str, params: Any) -> bytes:
    return ('{"type":"req","id":' + _json.dumps(req_id).decode() + ',"method":'
            + _json.dumps(method).decode() + ',"params":' + encode(params) + "}").encode()


# -- the building blocks ------------------------------------------------------------------------

EDGE_TEXT = st.sampled_from([
    "", " ", "\x00", "\u2028\u2029", "\u200b\u200d\ufeff", "e\u0301", "\U0001f600" * 3,
    "\u202eRTL", "../../etc/passwd", "agent:main:main", "session:", "session:x", "main",
    "global", "*", "%s%n{0}", "<script>", "null", "true", "0", "-1", "1e308", "NaN",
    "a" * 257, "\U0010ffff", "\ud7ff\ue000",
])
HUGE_TEXT = st.sampled_from([5_000, 20_000, 70_000]).map(lambda n: "x" * n)
LONE_SURROGATES = st.sampled_from([
    Raw('"\\udfff"', "lone low surrogate"), Raw('"\\ud800"', "lone high surrogate"),
    Raw('"a\\ud83dz"', "surrogate mid-string"), Raw('"\\udc00\\ud800"', "reversed pair"),
])
TEXT = st.one_of(st.text(max_size=40), EDGE_TEXT, HUGE_TEXT, LONE_SURROGATES)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1,
                     5.0, -0.0, 0.5, 1e308, -1e308, 1e-300, 1.5, 8.64e15, 9e15]),
    st.floats(allow_nan=False, allow_infinity=False),
)
DEEP = st.sampled_from([
    deep(100), deep(300), deep(1000), deep(300, "object"), deep(1000, "object"),
    deep(255, leaf="{}"),
])
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
BIG = st.one_of(
    st.sampled_from([1_000, 10_001]).map(lambda n: [0] * n),
    st.sampled_from([500, 10_001]).map(lambda n: {f"k{i}": i for i in range(n)}),
    DEEP,
)
CONFUSED = st.one_of(SCALARS, JSON, BIG, st.just({}), st.just([]))
# What an untyped (accepted) field gets while the rest of a valid value is drawn: cheap, since
# wide schemas have dozens of them; the confusion strategies put the big values in.
LOOSE = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=6),
                  st.lists(st.integers(0, 3), max_size=2))


def from_schema(schema: Schema | None, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the schema accepts (mostly; bounds are approached from both sides)."""
    if schema is None or isinstance(schema, AnyValue) or depth > 4:
        return LOOSE
    if isinstance(schema, Str):
        if schema.enum is not None:
            return st.sampled_from(sorted(schema.enum))
        lo, hi = schema.min_len or 0, schema.max_len
        return st.one_of(st.text(min_size=lo, max_size=hi if hi is not None else 30),
                         EDGE_TEXT.filter(lambda s: len(s) >= lo
                                          and (hi is None or len(s) <= hi)))
    if isinstance(schema, Int):
        lo, hi = schema.minimum, schema.maximum
        near = [v for v in (lo, hi, 0, 1, 50, 2**53, 2**63) if v is not None
                and (lo is None or v >= lo) and (hi is None or v <= hi)]
        return st.one_of(st.integers(min_value=lo, max_value=hi), st.sampled_from(near),
                         st.sampled_from(near).map(float))
    if isinstance(schema, Num):
        return NUMBERS
    if isinstance(schema, Bool):
        return st.booleans()
    if isinstance(schema, Arr):
        return st.lists(from_schema(schema.items, depth + 1), max_size=min(schema.max_items or 4, 4))
    if isinstance(schema, Record):
        return st.dictionaries(st.text(max_size=10), from_schema(schema.values, depth + 1),
                               max_size=3)
    if isinstance(schema, OneOf):
        return st.one_of(*(from_schema(o, depth + 1) for o in schema.options))
    if isinstance(schema, Nullable):
        return st.one_of(st.none(), from_schema(schema.inner, depth + 1))
    if isinstance(schema, Obj):
        return _object(schema, depth)
    return LOOSE


def _object(schema: Obj, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    required = {k: from_schema(v, depth + 1) for k, v in schema.required.items()}
    optional = {k: from_schema(v, depth + 1) for k, v in schema.optional.items()}
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def broken(draw: st.DrawFn, schema: Schema | None) -> Any:
    """A valid value with one thing wrong: a field confused, a required key dropped, an extra
    key added, or the whole params replaced."""
    value = draw(from_schema(schema))
    if not isinstance(value, dict):
        return draw(CONFUSED)
    how = draw(st.sampled_from(["confuse", "confuse", "drop", "extra", "whole"]))
    value = dict(value)
    keys = sorted(value) or (sorted(schema.fields) if isinstance(schema, Obj) else [])
    if how == "confuse" and keys:
        value[draw(st.sampled_from(keys))] = draw(CONFUSED)
    elif how == "drop" and value:
        del value[draw(st.sampled_from(sorted(value)))]
    elif how == "extra":
        value[draw(st.one_of(st.text(max_size=12), st.just("x" * 5000), EDGE_TEXT))] = \
            draw(CONFUSED)
    else:
        return draw(CONFUSED)
    return value


def params_for(schema: Schema | None) -> st.SearchStrategy[Any]:
    return st.one_of(from_schema(schema), broken(schema), broken(schema))
