"""Helpers for the agent and chat tests on the in-memory harness: request shortcuts, event
labels, a hand-driven fake provider, frame spies and held transcript commits."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import ModelRequest, ModelResult, Usage
from openclaw_tw.app import Components
from tests.support.helpers import WSClient, ok

READ = ["operator.read"]
RW = ["operator.read", "operator.write"]
ADMIN = ["operator.admin"]
MAIN = "agent:main:main"




def responses(client: WSClient, req_id: str) -> list[dict[str, Any]]:
    client.flush()
    return [f for f in client.received if isinstance(f, dict) and f.get("type") == "res"
            and f.get("id") == req_id]


def drain(clock: Any, steps: int = 80) -> None:
    """Let the offline model stream (one chunk per 5 ms of clock time)."""
    for _ in range(steps):
        clock.advance(0.005)


def run_events(client: WSClient, run_id: str, name: str | None = None) -> list[dict[str, Any]]:
    client.flush()
    return [f for f in client.events(name) if f["payload"].get("runId") == run_id]


def label(frame: dict[str, Any]) -> str:
    p = frame["payload"]
    if frame["event"] == "chat":
        return f"chat:{p['state']}" + (f":{p['phase']}" if p["state"] == "status" else "")
    phase = p["data"].get("phase")
    return f"agent:{p['stream']}" + (f":{phase}" if phase else "")


def labels(client: WSClient, run_id: str) -> list[str]:
    return [label(f) for f in run_events(client, run_id)]


def by_label(client: WSClient, run_id: str) -> dict[str, dict[str, Any]]:
    return {label(f): f["payload"] for f in run_events(client, run_id)}


def send(client: WSClient, key: str, message: str, idem: str, **extra: Any) -> str:
    return client.request("chat.send", {"sessionKey": key, "message": message,
                                        "idempotencyKey": idem, **extra})


def send_now(client: WSClient, key: str, message: str, idem: str) -> dict[str, Any]:
    res = client.response(send(client, key, message, idem))
    assert res is not None
    return res


def history(client: WSClient, key: str = MAIN, **params: Any) -> Any:
    return ok(client, "chat.history", {"sessionKey": key, **params})


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(p["text"] for p in content)


class FakeCall:
    def __init__(self, request: ModelRequest, on_text: Callable[[str], None],
                 on_tool: Callable[[dict[str, Any]], None]) -> None:
        self.request, self.on_text, self.on_tool = request, on_text, on_tool
        self.cancelled, self.said = False, ""
        self.d: Deferred[ModelResult] = Deferred(lambda d: setattr(self, "cancelled", True))

    def say(self, text: str) -> None:
        self.said += text
        self.on_text(text)

    def finish(self, text: str | None = None, usage: Usage | None = None) -> None:
        """End the reply; it reports ``usage`` (default: 4 input and 2 output tokens)."""
        if text is not None:
            self.say(text)
        u = usage if usage is not None else Usage(4, 2)
        self.d.callback(ModelResult(self.said, "stop", u.input, u.output, "resp-1",
                                    self.request.model, u.cache_read, u.cache_write))

    def fail(self, err: Exception) -> None:
        self.d.errback(err)


class FakeProvider:
    """A provider whose stream the test drives by hand."""

    id, api = "fake", "openai-completions"

    def __init__(self) -> None:
        self.calls: list[FakeCall] = []

    def stream(self, request: ModelRequest, on_text: Callable[[str], None],
               on_tool: Callable[[dict[str, Any]], None]) -> Deferred[ModelResult]:
        self.calls.append(FakeCall(request, on_text, on_tool))
        return self.calls[-1].d


def install_fake(app: Components, model: str = "fake-1", primary: bool = True
                 ) -> FakeProvider:
    provider = FakeProvider()
    app.runtime.registry.providers[provider.id] = provider
    if primary:
        app.runtime.registry.primary = f"{provider.id}/{model}"
    return provider


def transcript(app: Components, key: str = MAIN) -> list[tuple[str, str | None]]:
    """(role, idempotency key) of the committed rows, read straight from SQLite."""
    return app.sessions_db.run_now(lambda conn: conn.execute(
        "SELECT role, idempotency_key FROM transcript WHERE session_key=? ORDER BY seq",
        (key,)).fetchall())


def spy_frames(case: SynchronousTestCase, client: WSClient, probe: Callable[[], Any]
               ) -> list[tuple[dict[str, Any], Any]]:
    """Record (frame, probe()) at the moment each frame is written to the socket."""
    log: list[tuple[dict[str, Any], Any]] = []
    original = client.proto.write_text

    def write_text(data: bytes) -> None:
        log.append((json.loads(data), probe()))
        original(data)

    case.patch(client.proto, "write_text", write_text)
    return log


class HeldAppends:
    """Transcript appends of the given roles commit only when ``release`` is called."""

    def __init__(self, case: SynchronousTestCase, app: Components, roles: set[str]) -> None:
        self.pending: list[Callable[[], None]] = []
        store = app.sessions
        original = store.append

        def append(row: Any, role: str, body: dict[str, Any], run_id: str | None = None,
                   idempotency_key: str | None = None) -> Deferred[Any]:
            if role not in roles:
                return original(row, role, body, run_id, idempotency_key)
            d: Deferred[Any] = Deferred()

            def commit() -> None:
                original(row, role, body, run_id, idempotency_key).chainDeferred(d)

            self.pending.append(commit)
            return d

        case.patch(store, "append", append)

    def release(self) -> None:
        pending, self.pending = self.pending, []
        for commit in pending:
            commit()


def first_heartbeat(test: Any, app: Components) -> Deferred[dict[str, Any]]:
    """Fires with the first heartbeat event ``app``'s heartbeat publishes from now on (its
    ``_publish`` patched for the test's duration)."""
    published: Deferred[dict[str, Any]] = Deferred()
    publish = app.heartbeat._publish

    def spy(payload: dict[str, Any]) -> dict[str, Any]:
        out = publish(payload)
        if not published.called:
            published.callback(out)
        return out

    test.patch(app.heartbeat, "_publish", spy)
    return published
