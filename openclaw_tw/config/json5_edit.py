"""Edit a JSON5 document in place: only what changed is rewritten.

``config.patch`` used to re-serialise the whole file as JSON, dropping the user's comments,
key order, quoting and layout.  ``apply_changes(text, old, new)`` instead finds, in the
original text, the span of every object member and value (a small scanner over JSON5:
comments, single/double-quoted strings, identifier keys, trailing commas), diffs ``old``
against ``new`` and splices the text:

* a value that changed is replaced where it stands (objects are descended into, so a change
  deep inside keeps its siblings' text);
* a member that went away is cut with its comma and its own line's trailing comment;
* a new member is appended to its object, indented like its siblings, keys quoted like them.

New values are written as JSON (valid JSON5).  The result is parsed again and compared with
``new``; anything unexpected (an array edited inside, a duplicate key, text the scanner does
not understand) returns ``None`` and the caller writes the whole document instead, so an edit
is never wrong, at worst not minimal.  No library round-trips JSON5 with its comments
(pyjson5 and json5 parse to plain values), hence this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pyjson5

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
_SCALAR_END = set(",}]/ \t\r\n")


class _Unsupported(Exception):
    pass


class _Member:
    __slots__ = ("key", "key_start", "quoted", "value", "comma_end")

    def __init__(self, key: str, key_start: int, quoted: bool) -> None:
        self.key, self.key_start, self.quoted = key, key_start, quoted
        self.value: _Node | None = None
        self.comma_end: int | None = None  # just past the comma that follows the value


class _Node:
    __slots__ = ("start", "end", "members")

    def __init__(self, start: int) -> None:
        self.start, self.end = start, start
        self.members: list[_Member] | None = None  # for an object


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip(self) -> None:
        """Whitespace and comments."""
        t, n = self.text, len(self.text)
        while self.pos < n:
            c = t[self.pos]
            if c in " \t\r\n\ufeff\u00a0\u2028\u2029":
                self.pos += 1
            elif t.startswith("//", self.pos):
                end = t.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif t.startswith("/*", self.pos):
                end = t.find("*/", self.pos + 2)
                if end < 0:
                    raise _Unsupported("unterminated comment")
                self.pos = end + 2
            else:
                return

    def string(self) -> str:
        t, quote = self.text, self.text[self.pos]
        start = self.pos
        self.pos += 1
        while self.pos < len(t):
            c = t[self.pos]
            if c == "\\":
                self.pos += 2
            elif c == quote:
                self.pos += 1
                value = pyjson5.loads(t[start:self.pos])
                assert isinstance(value, str)
                return value
            else:
                self.pos += 1
        raise _Unsupported("unterminated string")

    def value(self, depth: int = 0) -> _Node:
        if depth > 64:
            raise _Unsupported("too deep")
        self.skip()
        node = _Node(self.pos)
        if self.pos >= len(self.text):
            raise _Unsupported("missing value")
        c = self.text[self.pos]
        if c == "{":
            node.members = self._object(depth)
        elif c == "[":
            self._array(depth)
        elif c in "\"'":
            self.string()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1
            if self.pos == node.start:
                raise _Unsupported(f"unexpected {c!r}")
        node.end = self.pos
        return node

    def _object(self, depth: int) -> list[_Member]:
        self.pos += 1
        members: list[_Member] = []
        while True:
            self.skip()
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return members
            start = self.pos
            if self.text[self.pos:self.pos + 1] in ("'", '"'):
                member = _Member(self.string(), start, True)
            else:
                m = re.compile(r"[^\s:/,{}\[\]]+").match(self.text, self.pos)
                if m is None:
                    raise _Unsupported("bad key")
                self.pos = m.end()
                member = _Member(m.group(0), start, False)
            self.skip()
            if not self.text.startswith(":", self.pos):
                raise _Unsupported("missing colon")
            self.pos += 1
            member.value = self.value(depth + 1)
            members.append(member)
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                member.comma_end = self.pos
            elif not self.text.startswith("}", self.pos):
                raise _Unsupported("missing comma")

    def _array(self, depth: int) -> None:
        self.pos += 1
        while True:
            self.skip()
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return
            self.value(depth + 1)
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif not self.text.startswith("]", self.pos):
                raise _Unsupported("missing comma")


def apply_changes(text: str, old: Any, new: Any,
                  parse: Callable[[str], Any]) -> str | None:
    """``text`` (which parses to ``old``) edited so that it parses to ``new``; ``None`` when
    an in-place edit cannot be made (the caller writes the whole document)."""
    try:
        scanner = _Scanner(text)
        root = scanner.value()
        scanner.skip()
        if scanner.pos != len(text) or root.members is None:
            return None
        edits: list[tuple[int, int, str]] = []
        _diff(text, root, old, new, edits)
    except (_Unsupported, ValueError, IndexError):
        return None
    for start, end, replacement in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + replacement + text[end:]
    try:
        return text if parse(text) == new else None
    except Exception:
        return None


def _diff(text: str, node: _Node, old: Any, new: Any,
          edits: list[tuple[int, int, str]]) -> None:
    if old == new:
        return
    if node.members is None or not isinstance(old, dict) or not isinstance(new, dict):
        edits.append((node.start, node.end, _render(new, _indent_of(text, node.start))))
        return
    by_key: dict[str, _Member] = {}
    for m in node.members:
        if m.key in by_key:
            raise _Unsupported("duplicate key")
        by_key[m.key] = m
    for key, member in by_key.items():
        if key not in new:
            edits.append(_cut(text, member))
        elif member.value is not None:
            _diff(text, member.value, old.get(key), new[key], edits)
    added = [k for k in new if k not in by_key]
    if added:
        kept = [m for m in node.members if m.key in new]
        if node.members and not kept:
            raise _Unsupported("every member replaced")  # written whole instead
        edits.append(_append(text, node, kept, [(k, new[k]) for k in added]))


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _indent_of(text: str, pos: int) -> str:
    line = text[_line_start(text, pos):pos]
    return line[:len(line) - len(line.lstrip(" \t"))]


def _cut(text: str, member: _Member) -> tuple[int, int, str]:
    """The member's text, its comma and a comment closing its line; its whole line when it
    stood alone on it."""
    assert member.value is not None
    end = member.comma_end if member.comma_end is not None else member.value.end
    rest = re.compile(r"[ \t]*(//[^\n]*)?").match(text, end)
    end = rest.end() if rest else end
    start = member.key_start
    line_start = _line_start(text, start)
    if not text[line_start:start].strip() and (end == len(text) or text[end] == "\n"):
        return line_start, min(end + 1, len(text)), ""
    return start, end, ""


def _append(text: str, node: _Node, members: list[_Member],
            items: list[tuple[str, Any]]) -> tuple[int, int, str]:
    """New members after the last member that stays (or into an empty object)."""
    if members:
        last = members[-1]
        assert last.value is not None
        indent = _indent_of(text, last.key_start)
        quoted = last.quoted
        multiline = "\n" in text[node.start:last.key_start]
        at = last.comma_end if last.comma_end is not None else last.value.end
        lead = "" if last.comma_end is not None else ","
    else:
        outer = _indent_of(text, node.start)
        indent, quoted, multiline = outer + "  ", True, True
        at, lead = node.start + 1, ""
    sep = ("\n" + indent) if multiline else " "
    parts = [f"{_key(k, quoted)}: {_render(v, indent)}" for k, v in items]
    body = lead + sep + ("," + sep).join(parts)
    if not members:
        body += "\n" + _indent_of(text, node.start)
        return at, node.end - 1, body  # replaces whatever stood between the braces
    return at, at, body


def _key(key: str, quoted: bool) -> str:
    return key if not quoted and _IDENT.match(key) else json.dumps(key, ensure_ascii=False)


def _render(value: Any, indent: str) -> str:
    out = json.dumps(value, indent=2, ensure_ascii=False)
    return out.replace("\n", "\n" + indent)
