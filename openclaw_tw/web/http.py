"""HTTP plumbing for the API resources: answers, body limits, the error type, the one error
mapper, async handlers and client addresses.

Every API handler is ``async def handle(request) -> bytes | None`` wrapped by ``serve``: it
returns ``NOT_DONE_YET`` to twisted.web, and whatever the handler raises is answered by
``write_error`` (an ``HttpError`` as itself, anything else as a 500 in the endpoint's style).
A handler that returns ``None`` has answered (or is streaming) on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from openclaw_tw import _json
from openclaw_tw.auth.peer import UntrustedProxy, client_address, web_header
from openclaw_tw.httpwire import JSON_TYPE, PROXY_ATTRIBUTION, SECURITY_HEADERS, TEXT_TYPE
from openclaw_tw.protocol.frames import FrameDecodeError
from openclaw_tw.protocol.frames import decode as decode_json
from openclaw_tw.protocol.limits import MAX_PARAMS_DEPTH
from openclaw_tw.protocol.schema import bounds_problem

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_log = Logger(namespace="gateway/http")



class HttpError(Exception):
    """An answer that ends the request: a JSON object (``body`` a dict) or plain text."""

    def __init__(self, status: int, body: dict[str, Any] | str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body!r}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def openai_error(status: int, message: str, type_: str = "invalid_request_error",
                 **extra: Any) -> HttpError:
    """``{"error": {"message", "type", ...}}`` as the OpenAI-compatible endpoints send it."""
    return HttpError(status, {"error": {"message": message, "type": type_, **extra}})


def text_error(status: int, text: str, headers: dict[str, str] | None = None) -> HttpError:
    return HttpError(status, text, headers)


NOT_FOUND = "Not Found"
METHOD_NOT_ALLOWED = "Method Not Allowed"


def method_not_allowed(allow: str) -> HttpError:
    return text_error(405, METHOD_NOT_ALLOWED, {"Allow": allow})


# -- writing answers -------------------------------------------------------------------------


def gone(request: Request) -> bool:
    """The client went away, or the answer is complete: nothing more may be written."""
    return bool(request.finished or getattr(request, "_disconnected", False))


def json_body(request: Request, status: int, body: Any, no_store: bool = False) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON_TYPE)
    if no_store:
        request.setHeader(b"Cache-Control", b"no-store")
    return _json.dumps(body)


def text_body(request: Request, status: int, text: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", TEXT_TYPE)
    return text.encode("utf-8")


def error_body(request: Request, err: HttpError) -> bytes:
    for name, value in err.headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    if isinstance(err.body, str):
        return text_body(request, err.status, err.body)
    return json_body(request, err.status, err.body)


def finish(request: Request, data: bytes) -> None:
    """Write ``data`` (with its length) and finish, unless the client is gone."""
    if gone(request):
        return
    if request.method == b"HEAD":
        data = b""
    request.setHeader(b"Content-Length", str(len(data)).encode())
    request.write(data)
    request.finish()


Handler = Callable[[Request], Awaitable[bytes | None]]
InternalError = Callable[[], HttpError]


def serve(request: Request, handler: Handler, internal: InternalError) -> Any:
    """Run an async handler; its result or its error answers the request."""

    def done(data: bytes | None) -> None:
        if data is not None:
            finish(request, data)

    def failed(failure: Failure) -> None:
        write_error(request, failure, internal)

    ensureDeferred(handler(request)).addCallbacks(done, failed)
    return NOT_DONE_YET


def write_error(request: Request, failure: Failure, internal: InternalError) -> None:
    """The one error mapper: ``HttpError`` as itself; anything else logged, then a 500."""
    err = failure.value
    if not isinstance(err, HttpError):
        _log.failure("HTTP {method} {path} failed", failure,
                     method=request.method.decode("latin-1"),
                     path=request.path.decode("latin-1"))
        err = internal()
    if gone(request):
        return
    if request.startedWriting:  # a stream already under way: end it
        request.finish()
        return
    finish(request, error_body(request, err))


# -- request bodies ----------------------------------------------------------------------------

MAX_REQUEST_BODY = 20 * 1024 * 1024  # the largest API limit (/v1/chat/completions)
_TOO_LARGE_HEAD = (b"HTTP/1.1 413 Payload Too Large\r\n"
                   + b"".join(n + b": " + v + b"\r\n" for n, v in SECURITY_HEADERS)
                   + b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n"
                   b"Connection: close\r\n\r\n")
_TOO_LARGE = _TOO_LARGE_HEAD + b"Payload Too Large"


class CappedRequest(Request):
    """The site's request: a body over ``MAX_REQUEST_BODY`` (declared, or counted as chunks
    arrive) is answered 413 and the connection closed, before the rest is read or spooled to
    disk.  Each endpoint then applies its own, smaller limit (``read_body``)."""

    _received = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:
        super().gotLength(length if length is None or length <= MAX_REQUEST_BODY else 0)
        if length is not None and length > MAX_REQUEST_BODY:
            # answered already: twisted.web's "100 Continue" must not follow the 413
            self.requestHeaders.removeHeader(b"expect")
            self._refuse()

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > MAX_REQUEST_BODY:
            self._refuse()
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        if not self._refused:
            super().process()

    def _refuse(self) -> None:
        self._refused = True
        # the method is the channel's until the body is in (a HEAD answer has no body)
        head = getattr(self.channel, "_command", None) == b"HEAD"
        self.channel.transport.write(_TOO_LARGE_HEAD if head else _TOO_LARGE)
        self.channel.loseConnection()



def read_body(request: Request, limit: int, too_large: HttpError) -> bytes:
    """The request body, or ``too_large`` (413) when it is over ``limit`` bytes."""
    declared = request.getHeader(b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            pass
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    data = content.read(limit + 1)
    if len(data) > limit:
        raise too_large
    return data


#: What JavaScript's ``String.prototype.trim`` strips (the reference trims a body first).
JS_SPACE = ("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
            "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")


class EmptyBody(ValueError):
    """Nothing but JavaScript space in the body."""


def read_json(raw: bytes) -> Any:
    """A request body as the reference reads one (``Buffer.toString("utf8")``, ``trim()``,
    ``JSON.parse``): invalid UTF-8 is U+FFFD, a leading BOM or other JavaScript space is
    trimmed, an escaped lone surrogate is U+FFFD and a number past a double ``null``
    (``frames.decode``).  ``EmptyBody`` or ``ValueError`` when there is no JSON value."""
    try:
        return decode_json(raw)  # orjson on the bytes as they came: the common case
    except FrameDecodeError:
        text = raw.decode("utf-8", "replace").strip(JS_SPACE)
    if not text:
        raise EmptyBody("empty")
    again = text.encode("utf-8")
    if again == raw:
        raise ValueError("not JSON")
    try:
        return decode_json(again)
    except FrameDecodeError:
        raise ValueError("not JSON") from None


def parse_json_object(raw: bytes, invalid: Callable[[str], HttpError]) -> dict[str, Any]:
    """The body as a JSON object (``read_json``) nested at most ``MAX_PARAMS_DEPTH`` deep;
    ``invalid(message)`` (a 400) otherwise."""
    try:
        value = read_json(raw)
    except EmptyBody:
        raise invalid("Request body is empty; expected a JSON object.") from None
    except ValueError:
        raise invalid("Invalid JSON in request body.") from None
    if not isinstance(value, dict):
        raise invalid("Request body must be a JSON object.")
    # as WebSocket params are: nothing deeper than orjson writes back (255) is ever kept
    problem = bounds_problem(value, MAX_PARAMS_DEPTH, max_items=sys.maxsize)
    if problem is not None:
        raise invalid(f"Request body {problem}.")
    return value


# -- headers and clients ---------------------------------------------------------------------


def header(request: Request, name: str) -> str | None:
    """A request header as text, stripped; ``None`` when absent or blank."""
    raw = request.getHeader(name.encode("latin-1"))
    if raw is None:
        return None
    value = raw.decode("utf-8", "replace").strip()
    return value or None


def bearer_token(request: Request) -> str | None:
    auth = header(request, "authorization")
    if auth is None or auth[:7].lower() != "bearer ":
        return None
    return auth[7:].strip() or None


def client_ip(request: Request, gw: Gateway) -> str:
    """The caller's address: the peer, or the client behind a trusted proxy.  Forwarded
    headers from an untrusted peer are refused (403 ``proxy_attribution_required``)."""
    peer_ip = getattr(request.getClientAddress(), "host", "") or ""
    try:
        return client_address(peer_ip, web_header(request), gw.is_trusted_proxy)[0]
    except UntrustedProxy:
        raise HttpError(403, PROXY_ATTRIBUTION) from None
