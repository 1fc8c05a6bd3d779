"""The HTTP fuzz tier's wire: one generated request as exact bytes (``HttpInput``) and a
strict parser of what the gateway wrote back (``parse_responses``): every byte must belong to
a well-formed HTTP/1.x response framed by ``Content-Length``, chunked encoding, or the close
of the connection."""

from __future__ import annotations

import re

import attrs

from tests.support.ui_build import RawReply as Parsed  # one parsed answer

_STATUS = re.compile(rb"HTTP/1\.[01] ([1-5][0-9]{2}) ([^\r\n]*)")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?")


@attrs.frozen
class HttpInput:
    """One request as the wire carries it: ``head`` (request line and headers, up to and
    including the blank line), ``body`` (already framed), ``reads`` (the sizes the socket
    delivers it in; the rest in one read), ``framing`` (what the body's framing promises)."""

    route: str      # the route family, for the report and messages
    method: bytes
    target: bytes
    head: bytes
    body: bytes
    framing: str    # "complete" | "twice" (the request again) | "short" | "extra" | "broken"
    peer: str = "127.0.0.1"
    reads: tuple[int, ...] = ()
    payload: bytes = b""  # the body before its framing

    @property
    def data(self) -> bytes:
        return self.head + self.body

    def pieces(self) -> list[bytes]:
        data, out = self.data, []
        for size in self.reads:
            if not data:
                break
            out.append(data[:size])
            data = data[size:]
        return [*out, data] if data else out

    def show(self) -> str:
        data = self.data
        text = repr(data if len(data) <= 900 else data[:900]) + (
            f"… ({len(data)} bytes)" if len(data) > 900 else "")
        return f"{self.route} {self.framing} from {self.peer} reads={self.reads}: {text}"


class Malformed(AssertionError):
    """The gateway wrote bytes that are not a well-formed HTTP response."""


def parse_responses(data: bytes, closed: bool, heads: int = 0
                    ) -> tuple[list[Parsed], bytes]:
    """The complete responses in ``data`` and the bytes of an unfinished one (``b""`` when
    none).  ``closed``: the server closed, so a body without framing ends here.
    ``heads``: how many final responses answer a HEAD (no body whatever their headers say).
    After a 101 the socket speaks another protocol: parsing stops there."""
    out: list[Parsed] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if closed:
                raise Malformed(f"a response head cut short: {data[:200]!r}")
            return out, data
        lines = data[:end].split(b"\r\n")
        m = _STATUS.fullmatch(lines[0])
        if m is None:
            raise Malformed(f"not a status line: {lines[0][:200]!r}")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise Malformed(f"not a header line: {line[:200]!r}")
            headers.setdefault(name.decode().lower(), []).append(value.strip().decode("latin-1"))
        status, rest = int(m.group(1)), data[end + 4:]
        head_only = sum(not 100 <= r.status <= 199 for r in out) < heads
        body, rest, done = _body(status, headers, rest, closed, head_only)
        if not done:
            return out, data
        out.append(Parsed(status, m.group(2).decode("latin-1"), headers, body))
        if status == 101:
            return out, b""
        data = rest
    return out, b""


def _body(status: int, headers: dict[str, list[str]], rest: bytes, closed: bool,
          head_only: bool) -> tuple[bytes, bytes, bool]:
    """(body, what follows it, complete?)."""
    if head_only or status < 200 or status in (204, 304):
        return b"", rest, True
    lengths = headers.get("content-length")
    chunked = "chunked" in ",".join(headers.get("transfer-encoding", [])).lower()
    if chunked and lengths:
        raise Malformed("both Content-Length and chunked")
    if lengths:
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            raise Malformed(f"Content-Length {lengths}")
        n = int(lengths[0])
        if len(rest) < n:
            if closed:
                raise Malformed(f"a body of {len(rest)} bytes for Content-Length {n}")
            return b"", rest, False
        return rest[:n], rest[n:], True
    if chunked:
        return _chunks(rest, closed)
    if not closed:
        return b"", rest, False
    return rest, b"", True


def _chunks(rest: bytes, closed: bool) -> tuple[bytes, bytes, bool]:
    body = b""
    while True:
        eol = rest.find(b"\r\n")
        if eol < 0:
            break
        m = _CHUNK.fullmatch(rest[:eol])
        if m is None:
            raise Malformed(f"a chunk size line {rest[:eol][:100]!r}")
        size = int(m.group(1), 16)
        if size == 0:
            end = rest.find(b"\r\n", eol + 2)  # trailers (none expected), then the blank line
            if end < 0:
                break
            if end != eol + 2:
                raise Malformed(f"chunked trailers {rest[eol + 2:end][:100]!r}")
            return body, rest[end + 2:], True
        start = eol + 2
        if len(rest) < start + size + 2:
            break
        if rest[start + size:start + size + 2] != b"\r\n":
            raise Malformed("a chunk not followed by CRLF")
        body += rest[start:start + size]
        rest = rest[start + size + 2:]
    if closed:
        raise Malformed("a chunked body cut short by the close")
    return b"", rest, False
