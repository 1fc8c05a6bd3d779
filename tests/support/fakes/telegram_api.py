"""A fake Telegram Bot API server (twisted.web) following the public contract: ``/bot<token>/
<method>`` with JSON bodies, ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code",
"description", "parameters": {"retry_after"}}``; ``getUpdates`` long-polls until an update
arrives or its ``timeout`` passes, returns at most ``limit`` updates, and ``offset`` confirms
earlier updates.  ``drop_polls`` makes the next polls lose their connection (a network drop);
``sendChatAction`` is recorded in ``actions``."""

from __future__ import annotations

import json
import re
from typing import Any

from twisted.internet import defer, reactor
from twisted.web import server
from twisted.web.resource import Resource

BOT = {"id": 999, "is_bot": True, "first_name": "Claw", "username": "claw_bot"}


class FakeBotAPI(Resource):
    isLeaf = True

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.next_update = 1
        self.next_message = 100
        self.sent: defer.DeferredQueue[dict[str, Any]] = defer.DeferredQueue()
        self.offsets: list[int | None] = []
        self.poll_errors: list[tuple[int, str, dict[str, Any] | None]] = []
        self.send_errors: list[tuple[int, str, dict[str, Any] | None]] = []
        self.polled: defer.DeferredQueue[None] = defer.DeferredQueue()
        self.limits: list[int | None] = []
        self.actions: defer.DeferredQueue[dict[str, Any]] = defer.DeferredQueue()
        self.drop_polls = 0  # the next N getUpdates lose their connection (a network drop)
        self._waiting: list[tuple[server.Request, int | None, Any, int]] = []

    # -- the test's side ---------------------------------------------------------------------------

    def push(self, message: dict[str, Any]) -> int:
        update = {"update_id": self.next_update, "message": message}
        self.next_update += 1
        self.updates.append(update)
        waiting, self._waiting = self._waiting, []
        for request, offset, timer, limit in waiting:
            if timer.active():
                timer.cancel()
            self._answer(request, offset, limit)
        return int(update["update_id"])

    def release_all(self) -> None:
        waiting, self._waiting = self._waiting, []
        for request, _, timer, _ in waiting:
            if timer.active():
                timer.cancel()
            if not request.finished and not request._disconnected:
                self._ok(request, [])

    # -- HTTP ------------------------------------------------------------------------------------

    def render_POST(self, request: server.Request) -> bytes | int:
        match = re.match(r"^/bot([^/]+)/(\w+)$", request.path.decode())
        if match is None or match[1] != self.token:
            return self._error(request, 401, "Unauthorized")
        body = json.loads(request.content.read() or b"{}")
        method = match[2]
        if method == "getMe":
            return self._ok(request, BOT, now=True)
        if method == "sendMessage":
            if self.send_errors:
                return self._error(request, *self.send_errors.pop(0))
            self.next_message += 1
            self.sent.put(body)
            return self._ok(request, {"message_id": self.next_message, "text": body["text"],
                                      "chat": {"id": body["chat_id"]}, "from": BOT}, now=True)
        if method == "sendChatAction":
            self.actions.put(body)
            return self._ok(request, True, now=True)
        if method == "getUpdates":
            offset = body.get("offset")
            self.offsets.append(offset)
            self.limits.append(body.get("limit"))
            self.polled.put(None)
            if self.drop_polls:
                self.drop_polls -= 1
                request.channel.transport.abortConnection()
                return server.NOT_DONE_YET
            if self.poll_errors:
                return self._error(request, *self.poll_errors.pop(0))
            if offset is not None:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            limit = int(body.get("limit") or 100)
            if self.updates or not body.get("timeout"):
                return self._answer(request, offset, limit, now=True)
            timer = reactor.callLater(float(body["timeout"]), self._timeout, request)
            self._waiting.append((request, offset, timer, limit))
            request.notifyFinish().addErrback(lambda _: self._forget(request))
            return server.NOT_DONE_YET
        return self._error(request, 404, "Not Found: method not found")

    def _timeout(self, request: server.Request) -> None:
        self._forget(request)
        if not request.finished and not request._disconnected:
            self._ok(request, [])

    def _forget(self, request: server.Request) -> None:
        for entry in list(self._waiting):
            if entry[0] is request:
                self._waiting.remove(entry)
                if entry[2].active():
                    entry[2].cancel()

    def _answer(self, request: server.Request, offset: int | None, limit: int = 100,
                now: bool = False) -> bytes | int:
        result = [u for u in self.updates if offset is None or u["update_id"] >= offset]
        return self._ok(request, result[:limit], now)

    def _ok(self, request: server.Request, result: Any, now: bool = False) -> Any:
        return self._send(request, 200, {"ok": True, "result": result}, now)

    def _error(self, request: server.Request, status: int, description: str,
               parameters: dict[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return self._send(request, status, body, True)

    def _send(self, request: server.Request, status: int, body: dict[str, Any],
              now: bool) -> Any:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        data = json.dumps(body).encode()
        if now:
            return data
        request.write(data)
        request.finish()
        return None


if __name__ == "__main__":  # a child process for the browser tier: PORT TOKEN, loopback only
    import sys

    from twisted.web.server import Site

    reactor.listenTCP(int(sys.argv[1]), Site(FakeBotAPI(sys.argv[2])), interface="127.0.0.1")
    reactor.run()
