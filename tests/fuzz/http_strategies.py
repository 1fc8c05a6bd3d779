"""Hypothesis strategies for HTTP requests on the gateway port: methods (and junk), targets
(each route, traversal, ``%2e%2e``, ``%00``, very long paths, query strings, unicode),
headers (Authorization right, wrong and malformed, Content-Type, Host, Origin, forwarding,
duplicates), body framing (Content-Length right, short, long, huge or malformed; chunked,
with broken chunks; both at once), and bodies: for the JSON endpoints, objects shaped like
what each accepts with type-confused fields (``strategies.CONFUSED``), plus broken JSON, deep
nesting, huge strings and escaped lone surrogates.

``request(route, paths, body)`` draws one ``HttpInput``; the per-route body strategies are
``CHAT``, ``RESPONSES``, ``HOOK_AGENT``, ``HOOK_WAKE``, ``HOOK_MAPPED`` and ``TOOLS``.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from tests.fuzz import strategies as fs
from tests.fuzz.http_harness import HOOK_TOKEN
from tests.fuzz.http_wire import HttpInput
from tests.support.helpers import TOKEN
from tests.support.ui_build import BUILD_ID


def shaped(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Objects an endpoint accepts (``confused`` breaks them)."""
    return st.fixed_dictionaries(required, optional=optional)


SHORT = st.one_of(st.text(max_size=20), fs.EDGE_TEXT)
# JSON a parser reads (orjson: 1024 levels) but an encoder may not write again (orjson: 255)
NESTED = st.sampled_from([fs.deep(60), fs.deep(300), fs.deep(300, "object"),
                          fs.deep(255, leaf="{}")])
TEXT = st.one_of(st.sampled_from(["hi", "count to 3", "/help", "count to 100"]),
                 st.text(min_size=1, max_size=20))
MESSAGE_TEXT = st.one_of(TEXT, TEXT, TEXT, SHORT, fs.LONE_SURROGATES, fs.HUGE_TEXT)
MODELS = st.sampled_from(["openclaw", "openclaw/default", "openclaw/main", "openclaw:ops",
                          "agent:ops", "OPENCLAW", " openclaw ", "openclaw/nope", "gpt-4o"])
ROLES = st.sampled_from(["user", "system", "developer", "assistant", "tool", "function"])
PART = st.one_of(
    shaped({"type": st.sampled_from(["text", "input_text", "output_text"]), "text": TEXT}, {}),
    shaped({"type": st.just("image_url"), "image_url": st.one_of(
        st.sampled_from(["https://x/y.png", "data:image/png;base64,AAAA", "file:///etc"]),
        shaped({"url": st.just("http://x/i.png")},
               {"detail": st.sampled_from(["low", "x"])}))}, {}),
    shaped({"type": st.just("input_image"), "image_url": st.just("https://x/y.png")}, {}))
CONTENT = st.one_of(MESSAGE_TEXT, st.lists(PART, min_size=1, max_size=3))
TOOL_NAMES = st.sampled_from(["get_time", "a-b_c", "bad name", "x" * 65])
PARAMETERS = st.just({"type": "object", "properties": {"q": {"type": "string"}}})
CHAT_TOOL = shaped({"type": st.just("function"), "function": shaped(
    {"name": TOOL_NAMES}, {"description": SHORT, "parameters": PARAMETERS})}, {})
RESPONSES_TOOL = shaped({"type": st.just("function"), "name": TOOL_NAMES},
                        {"description": SHORT, "parameters": PARAMETERS})
TOOL_CALL = shaped({"id": SHORT, "type": st.just("function"), "function": shaped(
    {"name": SHORT}, {"arguments": st.one_of(NESTED, SHORT, st.just({"a": 1}))})}, {})
CHAT_MESSAGE = shaped({"role": ROLES, "content": CONTENT}, {
    "name": SHORT, "tool_call_id": SHORT, "tool_calls": st.lists(TOOL_CALL, max_size=2)})
USER_MESSAGE = shaped({"role": st.just("user"), "content": CONTENT}, {})
CHAT = shaped({"messages": st.tuples(st.lists(CHAT_MESSAGE, min_size=1, max_size=3), USER_MESSAGE).map(
    lambda t: [*t[0], t[1]])}, {
    "model": MODELS, "stream": st.booleans(),
    "stream_options": shaped({}, {"include_usage": st.booleans()}),
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "max_tokens": st.integers(1, 9),
    "seed": st.integers(-(2**63), 2**63), "stop": st.one_of(SHORT, st.lists(SHORT, max_size=4)),
    "user": SHORT, "tools": st.lists(CHAT_TOOL, max_size=2), "tool_choice": SHORT,
    "frequency_penalty": st.floats(-2, 2), "n": st.integers(0, 3)})
RESPONSE_ITEM = st.one_of(
    shaped({"type": st.just("function_call_output"), "call_id": SHORT},
           {"output": st.one_of(NESTED, SHORT, st.just({"ok": 1}))}),
    shaped({"type": st.just("function_call"), "call_id": SHORT, "name": SHORT},
           {"arguments": SHORT}),
    shaped({"type": st.just("message"), "role": ROLES, "content": CONTENT}, {}),
    shaped({"role": ROLES, "content": CONTENT}, {}),
    shaped({"type": st.sampled_from(["reasoning", "item_reference", "input_file"])}, {}))
RESPONSES = shaped({"input": st.one_of(st.tuples(
    st.lists(RESPONSE_ITEM, min_size=1, max_size=3), USER_MESSAGE).map(lambda t: [*t[0], t[1]]),
    MESSAGE_TEXT)}, {
    "model": MODELS, "stream": st.booleans(), "instructions": SHORT, "user": SHORT,
    "previous_response_id": st.sampled_from(["", "", "", "resp_missing"]),
    "tools": st.lists(RESPONSES_TOOL, max_size=2), "max_output_tokens": st.integers(1, 9),
    "temperature": st.floats(0, 2)})
SESSION_KEYS = st.sampled_from(["hook:x", "agent:main:hook:y", "main", "agent:ops:hook:z",
                                "cron:x", "subagent:x", "agent:main:cron:x", "hook:", ""])
HOOK_AGENT = shaped({"message": MESSAGE_TEXT}, {
    "name": SHORT, "agentId": st.sampled_from(["main", "ops", "OPS", " main ", "nope"]),
    "sessionKey": SESSION_KEYS, "sessionMode": st.sampled_from(["isolated", "persistent"]),
    "waitForCompletion": st.booleans(), "model": st.sampled_from(["offline/offline", "x/y"]),
    "timeoutSeconds": st.one_of(st.integers(1, 600), st.floats(0.001, 1e9)),
    "idempotencyKey": st.sampled_from(["k1", "k2", ""]), "deliver": st.booleans(),
    "channel": SHORT, "thinking": SHORT})
HOOK_WAKE = shaped({"text": MESSAGE_TEXT}, {
    "mode": st.sampled_from(["now", "next-heartbeat"]),
    "agentId": st.sampled_from(["main", "ops", "nope"]), "sessionKey": SESSION_KEYS})
HOOK_MAPPED = shaped({}, {
    "source": st.sampled_from(["github", "gitlab"]), "action": SHORT, "repo": SHORT,
    "pull_request": shaped({}, {"number": st.integers(), "title": st.one_of(
        NESTED, MESSAGE_TEXT)}),
    "from": st.one_of(NESTED, SHORT), "events": st.lists(st.one_of(
        shaped({"id": st.integers(0, 9)}, {}), fs.SCALARS), max_size=5),
    "model": st.sampled_from(["offline/offline", "x/y", "{{model}}"])})
TOOLS = shaped({"tool": st.sampled_from(["cron", "exec", "sessions_list", "web_search",
                                         " cron ", ""])}, {
    "name": SHORT, "args": st.dictionaries(st.text(max_size=5), fs.SCALARS, max_size=3),
    "action": SHORT, "sessionKey": SESSION_KEYS, "agentId": SHORT, "dryRun": st.booleans(),
    "idempotencyKey": SHORT})
EMBEDDINGS = shaped({"model": MODELS, "input": st.one_of(TEXT, st.lists(TEXT, max_size=3))}, {
    "encoding_format": st.sampled_from(["float", "base64"]), "dimensions": st.integers(1, 9),
    "user": SHORT})


def _places(value: Any, depth: int = 0) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside ``value``, down to 4 levels."""
    out: list[tuple[Any, Any]] = []
    if depth > 4:
        return out
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, inner in items:
        out.append((value, key))
        out += _places(inner, depth + 1)
    return out


@st.composite
def confused(draw: st.DrawFn, shape: st.SearchStrategy[Any]) -> Any:
    """An accepted value with one thing wrong anywhere in it: a value confused or nested
    deep, a key dropped, a stray key added; or the whole of it confused."""
    value = copy.deepcopy(draw(shape))  # st.just values are shared between draws
    places = _places(value)
    how = draw(st.sampled_from(["confuse", "confuse", "confuse", "deep", "drop", "extra",
                                "whole"]))
    if how == "whole" or not places:
        return draw(fs.CONFUSED)
    container, key = draw(st.sampled_from(places))
    if how == "drop":
        del container[key]
    elif how == "deep":  # parsed, then too deep for what encodes it again (orjson: 255)
        container[key] = draw(st.sampled_from([fs.deep(300), fs.deep(300, "object"),
                                               fs.deep(1000), fs.deep(255, leaf="{}")]))
    elif how == "extra" and isinstance(container, dict):
        container[draw(st.one_of(st.text(max_size=10), fs.EDGE_TEXT))] = draw(fs.CONFUSED)
    else:
        container[key] = draw(fs.CONFUSED)
    return value


# -- raw bodies ------------------------------------------------------------------------------

JUNK_BODIES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([
        b"", b" ", b"\r\n", b"null", b"[]", b"0", b'"x"', b"{", b'{"a":1,}', b"{'a':1}",
        b'{"a":NaN}', b'{"a":Infinity}', b'{"a":1e999}', b"\xef\xbb\xbf{}", b'{"a":"\xff"}',
        b'{"a":1}{"b":2}', b'{"__proto__":{"x":1},"constructor":1}', b'{"a":1,"a":[2]}',
        b'{"messages":[{"role":"user","content":"\\ud800"}]}',
        b'{"message":"\\udfff x","text":"a\\ud83dz"}', b'{"input":"\\u0000"}',
        b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b'{"messages":' + b"[" * 300 + b"]" * 300 + b"}",
        b'{"message":"m","x":' + b"[" * 256 + b"]" * 256 + b"}",
        b'{"text":"' + b"t" * 300_000 + b'"}', b'{"tool":"' + b"n" * 100_000 + b'"}',
        b'{"previous_response_id":"' + b"p" * 100_000 + b'","input":"hi"}',
        b'{"agentId":"' + b"a" * 100_000 + b'","message":"m","text":"t"}',
        b'{"model":"' + b"m" * 100_000 + b'"}', b'{"n":' + b"9" * 5000 + b"}",
    ]),
)


def truncated(body: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, max(len(body) - 1, 0)).map(lambda n: body[:n])


def json_body(shape: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Accepted values, values with one thing wrong, broken JSON (3:2:2)."""
    valid = shape.map(lambda v: fs.encode(v).encode())
    wrong = confused(shape).map(lambda v: fs.encode(v).encode())
    return st.one_of(valid, valid, valid, wrong, wrong, valid.flatmap(truncated),
                     JUNK_BODIES)


# -- the request line and headers --------------------------------------------------------------

JUNK_METHODS = st.sampled_from([b"PATCH", b"TRACE", b"CONNECT", b"PROPFIND", b"get", b"Post",
                                b"G\x00T", b"X" * 300, b"GET\t", b"\xff\xfe", b"-"])


def method(usual: bytes) -> st.SearchStrategy[bytes]:
    common = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"HEAD"])
    return st.one_of(st.just(usual), st.just(usual), st.just(usual), common, JUNK_METHODS)


TRAVERSAL = st.sampled_from([
    "/../", "/%2e%2e/", "/..%2f", "/%2e%2e%2f..%2f", "/.%2e/", "/..\\", "/%5c..%5c",
    "/./", "//", "/%00", "/%2500", "/;/", "/..;/", "/%c0%ae%c0%ae/", "/%252e%252e/",
])


@st.composite
def target(draw: st.DrawFn, paths: list[str]) -> bytes:
    path = draw(st.sampled_from(paths))
    how = draw(st.sampled_from(["as is"] * 4 + ["traverse", "prefix", "long", "unicode",
                                                 "encode", "absolute", "case"]))
    if how == "traverse":
        at = draw(st.integers(0, len(path)))
        path = path[:at] + draw(TRAVERSAL) + draw(st.sampled_from(
            ["", "secret.txt", "../secret.txt", "outside/secret.txt", "leak.txt",
             "../../etc/passwd", "hard.js", "leakdir/secret.txt", "assets/out.js",
             "../secret.txt%00.js"])) + path[at:]
    elif how == "prefix":
        path = draw(TRAVERSAL).rstrip("/") + path
    elif how == "long":
        path = path + "/" + "a" * draw(st.sampled_from([255, 256, 4097, 9000, 70_000]))
    elif how == "unicode":
        path = path + draw(st.sampled_from(["/é", "/%C3%A9", "/\u202e", "/%ED%A0%80", "/%FF",
                                            "/\U0001f600", "/%"]))
    elif how == "encode":
        path = "".join(f"%{ord(c):02X}" if c.isalnum() and draw(st.booleans()) else c
                       for c in path[:200])
    elif how == "absolute":
        path = draw(st.sampled_from(["http://127.0.0.1:18789", "http://evil.example",
                                     "https://[::1]"])) + path
    elif how == "case":
        path = path.upper()
    query = draw(st.one_of(st.just(""), st.sampled_from([
        "?token=x", "?limit=5", "?limit=0", "?limit=abc", "?limit=99999999999999999999",
        f"?v={BUILD_ID}", "?v=x&v=y", "?q=%FF", "?q=" + "q" * 5000, "?a=%", "?=&&=",
        "?q=\u00e9", "#frag", "?token"])))
    return (path + query).encode("utf-8", "surrogatepass")


def _auth(route: str) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    right = HOOK_TOKEN if route == "hooks" else TOKEN
    values = st.sampled_from([
        f"Bearer {right}", f"Bearer {right}", f"Bearer {right}", f"bearer  {right} ",
        f"Bearer {TOKEN}", f"Bearer {HOOK_TOKEN}", "Bearer wrong", "Bearer", "Bearer ",
        f"Basic {right}", f"Bearer {right}\x00", "Bearer " + "t" * 9000, "Bearer é"])
    auth = values.map(lambda v: [(b"Authorization", v.encode("utf-8"))])
    other = st.sampled_from([
        [], [(b"X-OpenClaw-Token", right.encode())], [(b"X-OpenClaw-Token", b"nope")],
        [(b"Authorization", b"Bearer wrong"), (b"Authorization", right.encode())],
        [(b"Authorization", f"Bearer {right}".encode()), (b"Authorization", b"Bearer x")],
        [(b"Authorization", "Bearer caf\u00e9".encode("latin-1"))],
        [(b"Authorization", b"Bearer \xff\xfe")]])
    return st.one_of(auth, auth, auth, other)


ODD_HEADERS = st.sampled_from([
    (b"Host", b""), (b"Host", b"evil.example"), (b"Host", b"[::1]:99999"),
    (b"Host", b"h" * 5000), (b"Host", "h\u00e9".encode()), (b"Host", b"x; script-src *"),
    (b"Host", b"x:1 'unsafe-inline'"), (b"Origin", b"null"),
    (b"Origin", b"http://evil.example"), (b"Origin", b"\xff"),
    (b"X-Forwarded-For", b"1.2.3.4"), (b"X-Forwarded-For", b"127.0.0.1, 10.0.0.1"),
    (b"X-Forwarded-For", b"garbage, , ::1"), (b"X-Real-IP", b"8.8.8.8"),
    (b"Forwarded", b"for=1.2.3.4;proto=https"), (b"X-Forwarded-Proto", b"https"),
    (b"Content-Type", b"text/plain"), (b"Content-Type", b"application/json; charset=latin-1"),
    (b"Content-Type", b"multipart/form-data; boundary=x"), (b"Content-Type", b"\x00"),
    (b"Accept", b"text/html"), (b"Accept", b"*/*;q=abc, text/html;q=0"),
    (b"Accept-Encoding", b"gzip;q=0, identity;q=0"), (b"Accept-Encoding", b"br, *;q=0"),
    (b"If-Modified-Since", b"Thu, 01 Jan 2099 00:00:00 GMT"), (b"If-Modified-Since", b"junk"),
    (b"If-None-Match", b"*"), (b"Range", b"bytes=0-10"), (b"Range", b"bytes=-1"),
    (b"Expect", b"100-continue"), (b"Connection", b"keep-alive"), (b"Connection", b"close"),
    (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Upgrade", b"h2c"),
    (b"Sec-WebSocket-Version", b"13"), (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"X-OpenClaw-Agent-Id", b"ops"), (b"X-OpenClaw-Agent-Id", b"No Such!"),
    (b"X-OpenClaw-Agent", b"nope"), (b"X-OpenClaw-Session-Key", b"cron:x"),
    (b"X-OpenClaw-Session-Key", b"agent:main:fuzz"), (b"X-OpenClaw-Session-Key", b"\xff"),
    (b"X-OpenClaw-Model", b"offline/offline"), (b"X-OpenClaw-Model", b"nope/x"),
    (b"X-OpenClaw-Model", b"/"), (b"X-Sender", b"ann"), (b"X-Long", b"v" * 12_000),
    (b"X-Empty", b""), (b"X-Space", b"  padded  "), (b"Cookie", b"a=b; c"),
])
UPGRADE = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
           (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="), (b"Sec-WebSocket-Version", b"13")]
PEERS = st.sampled_from(["::1", "10.0.0.7", "192.168.1.20"])

# -- framing -------------------------------------------------------------------------------


@st.composite
def framed(draw: st.DrawFn, body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes, str]:
    """(framing headers, the bytes after the head, what the framing promises)."""
    how = draw(st.sampled_from(["length"] * 6 + ["chunked"] * 2 + [
        "none", "short", "long", "huge", "bad-length", "dup-length", "bad-chunks",
        "te+length", "te-other"]))
    n = len(body)
    if how == "length" or (how in ("long", "none") and not body):
        return [(b"Content-Length", str(n).encode())], body, "complete"
    if how == "chunked":
        return [(b"Transfer-Encoding", b"chunked")], _chunked(draw, body), "complete"
    if how == "none":
        return [], body, "extra"  # no framing: the body reads as the next request
    if how == "short":
        more = draw(st.sampled_from([1, 100, 5000]))
        return [(b"Content-Length", str(n + more).encode())], body, "short"
    if how == "long":
        return [(b"Content-Length", str(draw(st.integers(0, n - 1))).encode())], body, "extra"
    if how == "huge":
        size = draw(st.sampled_from([20 * 1024 * 1024 + 1, 10**12, 2**64, 10**40]))
        return [(b"Content-Length", str(size).encode())], body, "short"
    if how == "bad-length":
        value = draw(st.sampled_from([b"-1", b"abc", b"1e3", b" ", b"0x10", b"+5", b"1,1",
                                      b"\xff", b"99999999999999999999999999999"]))
        return [(b"Content-Length", value)], body, "broken"
    if how == "dup-length":
        other = draw(st.sampled_from([n, n + 1, 0]))
        return [(b"Content-Length", str(n).encode()), (b"Content-Length",
                                                      str(other).encode())], body, "broken"
    if how == "te+length":
        return [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", str(n).encode())], \
            _chunked(draw, body), "broken"
    if how == "te-other":
        value = draw(st.sampled_from([b"gzip", b"chunked, gzip", b"gzip, chunked", b"identity",
                                      b"CHUNKED", b" chunked", b"chunked\x00"]))
        return [(b"Transfer-Encoding", value)], _chunked(draw, body), "broken"
    if draw(st.integers(0, 9)) == 0:  # a whole chunked body, then junk: the next request
        return [(b"Transfer-Encoding", b"chunked")], _chunked(draw, body) + \
            b"trailer-junk\r\n\r\n", "extra"
    return [(b"Transfer-Encoding", b"chunked")], _broken_chunks(draw, body), "broken"


def _chunked(draw: st.DrawFn, body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size = draw(st.sampled_from([1, 7, 100, 4096, len(rest)]))
        piece, rest = rest[:size], rest[size:]
        ext = draw(st.sampled_from([b"", b"", b";name=value"]))
        out += b"%x" % len(piece) + ext + b"\r\n" + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def _broken_chunks(draw: st.DrawFn, body: bytes) -> bytes:
    good = _chunked(draw, body)
    return draw(st.sampled_from([
        b"zz\r\n" + body + b"\r\n0\r\n\r\n",                     # not hex
        b"%x\r\n" % (len(body) + 5) + body + b"\r\n0\r\n\r\n",  # size longer than the data
        b"-1\r\n" + body + b"\r\n0\r\n\r\n",
        b"ffffffffffffffffff\r\n" + body,                         # overflowing size
        b"%x\r\n" % len(body) + body + b"XX0\r\n\r\n",            # no CRLF after the data
        good[:-2],                                                # no final CRLF
        good[:-5],                                                # no last chunk
        b"%x;" % len(body) + b"e" * 5000 + b"\r\n" + body + b"\r\n0\r\n\r\n",
        b"%x\n" % len(body) + body + b"\n0\n\n",                  # bare LF
    ]))


DIMENSIONS = ("method", "target", "auth", "headers", "framing", "version", "reads", "peer")


@st.composite
def request(draw: st.DrawFn, route: str, paths: list[str], usual: bytes = b"POST",
            body: st.SearchStrategy[bytes] | None = None) -> HttpInput:
    """A request the route serves (the usual method, its path, the right token, a framed
    body from ``body``), with none, one, a few or all of ``DIMENSIONS`` fuzzed."""
    count = draw(st.sampled_from([0, 0, 0, 0, 1, 1, 1, 2, 3, len(DIMENSIONS)]))
    odd = set(draw(st.permutations(DIMENSIONS))[:count])
    verb = draw(method(usual)) if "method" in odd else usual
    tgt = draw(target(paths)) if "target" in odd else \
        draw(st.sampled_from(paths)).encode("utf-8")
    headers: list[tuple[bytes, bytes]] = []
    if "headers" not in odd or draw(st.integers(0, 9)):
        headers.append((b"Host", b"127.0.0.1:18789"))
    right = HOOK_TOKEN if route == "hooks" else TOKEN
    headers += draw(_auth(route)) if "auth" in odd else \
        [(b"Authorization", f"Bearer {right}".encode())]
    data = draw(body) if body is not None else \
        draw(st.one_of(st.just(b""), st.just(b""), JUNK_BODIES))
    if data and ("headers" not in odd or draw(st.integers(0, 5))):
        headers.append((b"Content-Type", b"application/json"))
    if "headers" in odd:
        headers += draw(st.lists(ODD_HEADERS, min_size=1, max_size=3))
        if draw(st.integers(0, 5)) == 0:
            headers += UPGRADE
    if "framing" in odd:
        framing_headers, sent, promise = draw(framed(data))
    elif data or verb not in (b"GET", b"HEAD"):
        framing_headers, sent, promise = [(b"Content-Length", str(len(data)).encode())], \
            data, "complete"
    else:
        framing_headers, sent, promise = [], b"", "complete"
    headers += framing_headers
    if "headers" in odd:
        headers = draw(st.permutations(headers))
    version = draw(st.sampled_from([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/0.9",
                                    b""])) if "version" in odd else b"HTTP/1.1"
    line = verb + b" " + tgt + (b" " + version if version else b"")
    head = line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"
    if "framing" in odd and promise == "complete" and draw(st.integers(0, 4)) == 0:
        sent, promise = sent + head + sent, "twice"  # pipelined: the same request again
    reads = draw(st.sampled_from([(1,), (len(line) // 2,), (len(head) - 1,), (len(head) + 1,),
                                  (3, 5)])) if "reads" in odd else ()
    peer = draw(PEERS) if "peer" in odd else "127.0.0.1"
    return HttpInput(route, verb, tgt, head, sent, promise, peer, reads, data)
