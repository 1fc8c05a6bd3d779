"""A small declarative schema for closed JSON params, with the real gateway's error wording.

The real gateway validates params with JSON Schema (AJV) and reports the first problem as
``at /client/id: must be equal to one of the allowed values``, ``at root: unexpected property
'bogus'`` or ``must have required property 'idempotencyKey'``.  Clients display these strings,
so we produce the same wording.  Schemas are plain objects built once at import time; ``check``
walks a decoded JSON value and returns ``None`` or the message of the first problem.

``normalize`` also returns the value a handler gets: JSON has one number type, so ``5.0``
where an integer is expected is the integer 5 (as the real gateway's validator takes it) and
reaches the handler as ``int``; ``5.5`` is refused ("must be integer").  Containers are
copied only when something inside them changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from openclaw_tw.errors import clip
from openclaw_tw.protocol.limits import (
    INT64_MAX,
    MAX_ERROR_NAME_CHARS,
    MAX_PARAMS_DEPTH,
    MAX_PARAMS_ITEMS,
)


class SchemaError(Exception):
    """``path`` is relative to the schema that raised it until the error reaches the top:
    each container prepends its own segment as the error passes through it, so a value that
    validates never builds a path string."""

    def __init__(self, path: str, message: str, root_prefix: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.root_prefix = root_prefix

    def render(self) -> str:
        if self.path:
            return f"at {self.path}: {self.message}"
        if self.root_prefix:
            return f"at root: {self.message}"
        return self.message


class Schema:
    def validate(self, value: Any, path: str) -> Any:
        """The value as a handler should see it, or raise ``SchemaError``."""
        raise NotImplementedError

    def check(self, value: Any) -> str | None:
        return self.normalize(value)[1]

    def normalize(self, value: Any) -> tuple[Any, str | None]:
        """(the normalized value, None) or (the value, the first problem's message)."""
        try:
            return self.validate(value, ""), None
        except SchemaError as e:
            return value, e.render()


class AnyValue(Schema):
    def validate(self, value: Any, path: str) -> Any:
        return value


class Str(Schema):
    def __init__(
        self,
        min_len: int | None = None,
        max_len: int | None = None,
        enum: Sequence[str] | None = None,
        pattern: str | None = None,
    ) -> None:
        self.min_len = min_len
        self.max_len = max_len
        self.enum = frozenset(enum) if enum is not None else None
        self.pattern = pattern
        self._pattern = re.compile(pattern) if pattern is not None else None

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise SchemaError(path, "must be string")
        if self.enum is not None and value not in self.enum:
            raise SchemaError(path, "must be equal to one of the allowed values")
        if self.min_len is not None and len(value) < self.min_len:
            raise SchemaError(path, f"must NOT have fewer than {self.min_len} characters")
        if self.max_len is not None and len(value) > self.max_len:
            raise SchemaError(path, f"must NOT have more than {self.max_len} characters")
        if self._pattern is not None and self._pattern.search(value) is None:
            raise SchemaError(path, f'must match pattern "{self.pattern}"')
        return value


class Int(Schema):
    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def validate(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(path, "must be integer")
        if isinstance(value, float) and not value.is_integer():
            raise SchemaError(path, "must be integer")
        if self.minimum is not None and value < self.minimum:
            raise SchemaError(path, f"must be >= {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise SchemaError(path, f"must be <= {self.maximum}")
        if isinstance(value, float):
            value = int(value)
        # AJV takes 1e308 as an integer; past int64 no offset, limit or duration differs from
        # int64's largest, and SQLite and orjson stop there.
        return max(-INT64_MAX, min(INT64_MAX, value))


class Num(Schema):
    def validate(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(path, "must be number")
        return value


class Bool(Schema):
    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise SchemaError(path, "must be boolean")
        return value


class Arr(Schema):
    def __init__(self, items: Schema, max_items: int | None = None,
                 min_items: int | None = None) -> None:
        self.items = items
        self.max_items = max_items
        self.min_items = min_items

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise SchemaError(path, "must be array")
        if self.min_items is not None and len(value) < self.min_items:
            raise SchemaError(path, f"must NOT have fewer than {self.min_items} items")
        if self.max_items is not None and len(value) > self.max_items:
            raise SchemaError(path, f"must NOT have more than {self.max_items} items")
        out: list[Any] | None = None
        items = self.items
        for i, item in enumerate(value):
            try:
                new = items.validate(item, "")
            except SchemaError as e:
                e.path = f"{path}/{i}{e.path}"
                raise
            if new is not item:
                out = out if out is not None else list(value)
                out[i] = new
        return value if out is None else out


class Record(Schema):
    def __init__(self, values: Schema) -> None:
        self.values = values

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(path, "must be object")
        out: dict[str, Any] | None = None
        schema = self.values
        for key, item in value.items():
            new = _field(schema, key, item, path)
            if new is not item:
                out = out if out is not None else dict(value)
                out[key] = new
        return value if out is None else out


class Obj(Schema):
    """A closed object (unknown keys rejected) unless ``closed=False``."""

    def __init__(
        self,
        required: Mapping[str, Schema] | None = None,
        optional: Mapping[str, Schema] | None = None,
        closed: bool = True,
    ) -> None:
        self.required = dict(required or {})
        self.optional = dict(optional or {})
        self.closed = closed
        self.fields = {**self.required, **self.optional}
        self._required_keys = self.required.keys()

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(path, "must be object")
        keys = value.keys()
        if not self._required_keys <= keys:  # set operations first, the first miss in order
            for name in self.required:
                if name not in value:
                    raise SchemaError(path, f"must have required property '{name}'")
        fields = self.fields
        if self.closed and not keys <= fields.keys():
            for name in value:
                if name not in fields:
                    raise SchemaError(path, f"unexpected property '{short(name)}'",
                                      root_prefix=True)
        out: dict[str, Any] | None = None
        for key, item in value.items():
            schema = fields.get(key)
            if schema is None:
                continue
            new = _field(schema, key, item, path)
            if new is not item:
                out = out if out is not None else dict(value)
                out[key] = new
        return value if out is None else out


class OneOf(Schema):
    def __init__(self, *options: Schema) -> None:
        self.options = options

    def validate(self, value: Any, path: str) -> Any:
        for option in self.options:
            try:
                return option.validate(value, path)
            except SchemaError:
                continue
        raise SchemaError(path, "must match a schema in anyOf")


class Nullable(Schema):
    def __init__(self, inner: Schema) -> None:
        self.inner = inner

    def validate(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.validate(value, path)


def _field(schema: Schema, key: str, item: Any, path: str) -> Any:
    """One member of an object, its segment added to the path of an error only."""
    try:
        return schema.validate(item, "")
    except SchemaError as e:
        e.path = f"{path}/{_escape(key)}{e.path}"
        raise


def _escape(key: str) -> str:
    return short(key).replace("~", "~0").replace("/", "~1")


def short(name: str) -> str:
    """A client-chosen name as an error message quotes it: never unbounded."""
    return clip(name, MAX_ERROR_NAME_CHARS)


def bounds_problem(value: Any, max_depth: int = MAX_PARAMS_DEPTH,
                   max_items: int = MAX_PARAMS_ITEMS) -> str | None:
    """The first place ``value`` nests deeper than ``max_depth`` or holds more than
    ``max_items`` in one array or object, as an AJV-style message; else ``None``.

    Iterative, so a value nested 1,000 deep costs no recursion."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        where = f"at {path if len(path) <= 256 else path[:256] + '…'}: " if path else ""
        if depth >= max_depth:
            return f"{where}must NOT be nested more than {max_depth} levels deep"
        if len(node) > max_items:
            unit = "properties" if isinstance(node, dict) else "items"
            return f"{where}must NOT have more than {max_items} {unit}"
        for key, item in items:
            if isinstance(item, dict | list):
                segment = _escape(key) if isinstance(key, str) else str(key)
                stack.append((item, f"{path}/{segment}", depth + 1))
    return None


EMPTY = Obj()
NONEMPTY = Str(min_len=1)


def closed(required: dict[str, Schema] | None = None, optional: dict[str, Schema] | None = None,
           accepted: str = "") -> Obj:
    """A closed object whose ``accepted`` (space-separated) extra fields are allowed untyped.

    For the reference's wide params schemas: the fields we act on are typed, the rest of the
    reference's field names are accepted so real clients are never refused, and anything
    else is still an unknown key.
    """
    extra = {name: AnyValue() for name in accepted.split() if name}
    extra.update(optional or {})
    return Obj(required=required, optional=extra)
