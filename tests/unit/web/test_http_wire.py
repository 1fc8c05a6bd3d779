"""Requests the HTTP fuzz tier (``tests/fuzz/test_http.py``) found answered wrongly on the
wire, each named after what its fix prevents."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.limits import HTTP_BODY_TIMEOUT_S
from openclaw_tw.tap import build_site
from tests.support.helpers import make_app
from tests.support.http_harness import AUTH, BEARER, ENABLED, HOOKS, HttpCase, merge
from tests.unit.web.test_slowloris import Sock


class Wire(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.site = build_site(self.app)

    def send(self, data: bytes, ip: str = "127.0.0.1") -> Sock:
        sock = Sock(self.site, ip=ip)
        sock.send(data)
        return sock

    def test_an_overlong_request_line_or_header_is_answered_not_dropped(self) -> None:
        for data in (b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 17_000 + b"\r\n\r\n",
                     b"GET /health?q=" + b"q" * 20_000):  # not even a whole line yet
            sock = self.send(data)
            self.assertTrue(sock.closing(), data[:40])
            self.assertEqual(sock.status(), "HTTP/1.1 431 Request Header Fields Too Large")
            self.assertTrue(sock.transport.value().endswith(
                b"\r\n\r\nRequest Header Fields Too Large"))
            self.assertEqual(self.site.pending, {})

    def test_a_head_refused_by_the_channel_gets_no_body(self) -> None:
        """The channel's own answers (431, the header and body deadlines' 408s) carry their
        Content-Length but no body when they answer a HEAD."""
        for data, status, length in (
                (b"HEAD /" + b"a" * 17_000 + b" HTTP/1.1\r\n\r\n", "431", b"31"),
                (b"HEAD /health HTTP/1.1\r\nX-Big: " + b"b" * 17_000 + b"\r\n\r\n", "431",
                 b"31"),
                (b"HEAD /hea", "408", b"15"),                                 # headers late
                (b"HEAD /health HTTP/1.1\r\nHost: x\r\n", "408", b"15"),
                (b"HEAD /health HTTP/1.1\r\nContent-Length: 9\r\n\r\n{", "408", b"20")):
            sock = self.send(data, ip="10.0.0.9")
            if not sock.closing():
                self.clock.advance(HTTP_BODY_TIMEOUT_S)
            self.assertTrue(sock.closing())
            self.assertTrue(sock.status().startswith("HTTP/1.1 " + status), data[:30])
            self.assertTrue(sock.transport.value().endswith(
                b"Content-Length: " + length + b"\r\n\r\n"), sock.transport.value())
        get = self.send(b"GET /hea", ip="10.0.0.9")
        self.clock.advance(HTTP_BODY_TIMEOUT_S)
        self.assertTrue(get.transport.value().endswith(b"\r\n\r\nRequest Timeout"))

    def test_no_100_continue_after_a_413(self) -> None:
        sock = self.send(b"POST /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         b"Content-Length: 20971521\r\n\r\n")
        self.assertTrue(sock.closing())
        self.assertEqual(sock.status(), "HTTP/1.1 413 Payload Too Large")
        self.assertTrue(sock.transport.value().endswith(b"\r\n\r\nPayload Too Large"))
        fine = self.send(b"POST /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         b"Content-Length: 2\r\n\r\n")
        self.assertEqual(fine.transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")

    def test_a_head_refused_413_gets_no_body(self) -> None:
        for method, body in ((b"HEAD", b""), (b"POST", b"Payload Too Large")):
            sock = self.send(method + b" /health HTTP/1.1\r\nContent-Length: 20971521\r\n\r\n{")
            self.assertTrue(sock.closing())
            self.assertEqual(sock.status(), "HTTP/1.1 413 Payload Too Large")
            raw = sock.transport.value()
            self.assertIn(b"\r\nContent-Length: 17\r\n", raw)
            self.assertEqual(raw[raw.index(b"\r\n\r\n") + 4:], body, method)

    def test_a_transfer_encoding_other_than_chunked_is_refused_not_ignored(self) -> None:
        for value in (b"identity", b"gzip", b"chunked, gzip", b"x"):
            sock = self.send(b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + value
                             + b"\r\n\r\n0\r\n\r\n")
            self.assertEqual(sock.status(), "HTTP/1.1 400 Bad Request", value)
            self.assertEqual(sock.transport.value().count(b"HTTP/1.1"), 1, value)
            self.assertTrue(sock.closing())
        for value in (b"chunked", b"Chunked", b" chunked "):
            sock = self.send(b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                             + value + b"\r\n\r\n1\r\n{\r\n0\r\n\r\n")
            self.assertEqual(sock.status(), "HTTP/1.1 405 Method Not Allowed", value)


class Endpoints(HttpCase):
    config = merge(merge(ENABLED, HOOKS), {"hooks": {"mappings": [
        {"match": {"path": "mail"}, "action": "wake", "textTemplate": "Mail from {{from}}"}]}})

    def test_error_messages_do_not_echo_a_huge_client_string(self) -> None:
        big = "x" * 70_000
        shown = "x" * 64 + "…(70000 chars)"
        tool = self.post("/tools/invoke", {"tool": big})
        self.assertEqual((tool.code, tool.json()["error"]["message"]),
                         (404, f"Tool not available: {shown}"))
        hook = self.post("/hooks/agent", {"message": "m", "agentId": big}, headers=BEARER)
        self.assertEqual((hook.code, hook.json()["error"]), (400, f"unknown agentId: {shown}"))
        previous = self.post("/v1/responses", {"input": "hi", "previous_response_id": big})
        self.assert_openai_error(previous, 404,
                                 f"Previous response with id '{shown}' not found.")
        agent = "a" * 9000
        unknown = self.post("/v1/chat/completions", {"messages": [
            {"role": "user", "content": "hi"}]}, headers={**AUTH, "x-openclaw-agent-id": agent})
        self.assert_openai_error(unknown, 400, f"Unknown agent '{'a' * 64}…(9000 chars)'.")
        model = self.fetch("GET", "/v1/models/" + "m" * 9000)
        self.assert_openai_error(model, 404, f"The model '{'m' * 64}…(9000 chars)' does not "
                                 "exist")

    def test_a_body_javascript_reads_is_not_refused_as_invalid_json(self) -> None:
        """The reference reads a body with ``Buffer.toString("utf8")``, ``trim()`` and
        ``JSON.parse``: a lone surrogate, invalid UTF-8, a BOM or a number past a double
        are read, not answered 400 "Invalid JSON"."""
        for raw in (b'{"text":"wake \\ud83d"}', b'\xef\xbb\xbf{"text":"wake"}\xc2\xa0',
                    b'{"text":"wake \xff\xfe"}', b'{"text":"wake","n":1e999}'):
            reply = self.post("/hooks/wake", headers={**BEARER, "Content-Type":
                                                      "application/json"}, raw=raw)
            self.assertEqual((reply.code, reply.json()["ok"]), (200, True), raw)
        chat = self.post("/v1/chat/completions", raw=b'{"messages":[{"role":"user",'
                         b'"content":"hi \\udfff"}]}', headers={**AUTH, "Content-Type":
                                                              "application/json"})
        self.assertEqual(chat.code, 200, chat)
        self.assertIn("hi \ufffd", chat.json()["choices"][0]["message"]["content"])
        for raw in (b"{", b'{"text":NaN}', b"\xef\xbb\xbf", b'{"a":' * 1100 + b"1" + b"}" * 1100,
                    b'{"text":"x"} {}'):
            reply = self.post("/hooks/wake", headers=BEARER, raw=raw)
            self.assertEqual(reply.code, 400, raw[:20])
            self.assertIn(reply.json()["error"], ("Invalid JSON in request body.",
                                                  "Request body is empty; expected a JSON "
                                                  "object."))

    def test_a_body_nested_too_deep_to_write_back_is_refused_not_a_500(self) -> None:
        """orjson reads 1,024 levels but writes 255: a body between the two was read, then
        a 500 where a handler wrote part of it again (a function_call_output, tool call
        arguments, a hook template).  Bodies are bounded at the door, as params are."""
        deep, fine = b"[" * 300 + b"]" * 300, b"[" * 50 + b"]" * 50
        def responses(nested: bytes) -> bytes:
            return (b'{"input":[{"type":"function_call_output","call_id":"c","output":'
                    + nested + b'},{"role":"user","content":"hi"}]}')
        def chat(nested: bytes) -> bytes:
            return (b'{"messages":[{"role":"assistant","content":"x","tool_calls":[{"id":"a",'
                    b'"function":{"name":"f","arguments":' + nested + b'}}]},'
                    b'{"role":"user","content":"hi"}]}')
        json_type = {"Content-Type": "application/json"}
        for path, body in (("/v1/responses", responses), ("/v1/chat/completions", chat)):
            reply = self.post(path, headers={**AUTH, **json_type}, raw=body(deep))
            self.assert_openai_error(reply, 400)
            self.assertIn("must NOT be nested more than 64 levels deep",
                          reply.json()["error"]["message"])
            self.assertEqual(self.post(path, headers={**AUTH, **json_type},
                                       raw=body(fine)).code, 200, path)
        hook = self.post("/hooks/mail", headers={**BEARER, **json_type},
                         raw=b'{"from":' + deep + b"}")
        self.assertEqual((hook.code, hook.json()["ok"]), (400, False))
        self.assertEqual(self.post("/hooks/mail", headers={**BEARER, **json_type},
                                   raw=b'{"from":' + fine + b"}").code, 200)
        self.flushLoggedErrors()

    def test_an_integer_past_64_bits_read_leniently_is_a_double_not_a_500(self) -> None:
        """A body with a lone surrogate is read by the lenient parser, which kept a 20-digit
        integer past 64 bits as an int that orjson cannot write: a hook template rendering
        it was an internal error.  It is a double, as orjson itself reads it."""
        for number in (b"99999999999999999999", b"-9223372036854775809"):
            reply = self.post("/hooks/mail", headers={**BEARER, "Content-Type":
                                                      "application/json"},
                              raw=b'{"from":[' + number + b'],"x":"\\ud800"}')
            self.assertEqual((reply.code, reply.json()["ok"]), (200, True), number)
        self.flushLoggedErrors()
