"""One in-memory gateway, an operator, a node and a bystander, and the checks every fuzzed
request must pass: exactly one well-formed response with its id (``agent``-style methods may
send an "accepted" first), never "internal error", no logged failure, no socket closed by the
gateway, the bystander still answered, and memory bounded."""

from __future__ import annotations

import itertools
import json
import os
import resource
from pathlib import Path
from typing import Any

from twisted.logger import ILogObserver, globalLogPublisher
from zope.interface import provider

from openclaw_tw.app import Components
from tests.fuzz.strategies import request_frame
from tests.support.helpers import Closed, WSClient, hello, make_app, ws_frame
from tests.support.nodes import ADMIN, Node

#: Examples per method and role: the CI budget unless ``make fuzz`` sets more.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# read at import, before trial changes into its temp directory: a relative path stays valid
REPORT = os.path.abspath(os.environ["FUZZ_REPORT"]) if os.environ.get("FUZZ_REPORT") else ""
#: Fake seconds a request may take to answer (node.invoke and agent waits run on the clock).
SETTLE_STEPS = (0.0, 0.05, 1.0, 5.0, 20.0, 60.0, 120.0, 300.0)
SETTLE_MS = sum(SETTLE_STEPS) * 1000
RSS_GROWTH_LIMIT = 400 * 1024 * 1024
BYSTANDER_EVERY = 5  # inputs between the bystander's calls (each test's last input too)
_ids = itertools.count(1)


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return 0


def failure_observer(failures: list[str]) -> Any:
    """A log observer noting every logged failure's traceback in ``failures``."""
    @provider(ILogObserver)
    def observer(event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        if failure is not None:
            failures.append(failure.getTraceback())
    return observer


def close_gateway(app: Components, observer: Any) -> None:
    globalLogPublisher.removeObserver(observer)
    app.runtime.stopService()
    app.hub.stopService()


class FuzzGateway:
    def __init__(self) -> None:
        self.app: Components
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.operator = hello(self.gw, scopes=ADMIN)
        self.bystander = hello(self.gw, scopes=["operator.read"])
        self.node = Node(self.gw)
        self.failures: list[str] = []
        self.inputs = self.pending = 0
        self.pending = 0
        self.rss_start = rss_bytes()
        self._observer = self._observe()
        globalLogPublisher.addObserver(self._observer)

    def _observe(self) -> Any:
        return failure_observer(self.failures)

    def close(self) -> None:
        close_gateway(self.app, self._observer)

    def write_report(self, name: str, failed: bool) -> None:
        """One JSON line per test for ``make fuzz``'s summary (``tests/fuzz/report.py``);
        the input count restarts for the next test."""
        if REPORT:
            with Path(REPORT).open("a") as f:
                f.write(json.dumps({"test": name, "inputs": self.inputs, "failed": failed,
                                    "pending": self.pending,
                                    "rss_start": self.rss_start, "rss_end": rss_bytes()}) + "\n")
        self.inputs = self.pending = 0

    # -- driving -----------------------------------------------------------------------------

    def client(self, role: str) -> WSClient:
        if role == "node":
            if self.node.ws.lost:
                self.node = Node(self.gw)
            return self.node.ws
        if self.operator.lost:
            self.operator = hello(self.gw, scopes=ADMIN)
        return self.operator

    def settle(self, client: WSClient, req_id: str) -> list[dict[str, Any]]:
        for step in SETTLE_STEPS:
            if step:
                self.clock.advance(step)
            self._answer_pings()
            answers = [f for f in client.received if isinstance(f, dict)
                       and f.get("type") == "res" and f.get("id") == req_id]
            if answers and not _accepted(answers[-1]):
                return answers
        return answers

    def _answer_pings(self) -> None:
        for c in (self.operator, self.bystander, self.node.ws):
            c.flush()
            while c.pings and not c.lost:
                c.pings -= 1
                c.send_raw(b"", opcode=10)

    def check(self, role: str, method: str, params: Any) -> None:
        """Send one request and assert everything the fuzz tier promises about its answer."""
        try:
            self._check(role, method, params)
        except AssertionError as e:
            raise AssertionError(f"{e}\n  params: {_show(params)}") from None

    def _check(self, role: str, method: str, params: Any) -> None:
        self.inputs += 1
        self.failures.clear()
        client = self.client(role)
        client.pop()
        req_id = f"fz{next(_ids)}"
        send(client, request_frame(req_id, method, params))
        answers = self.settle(client, req_id)
        closes = [f for f in client.received if isinstance(f, Closed)]
        assert not closes, f"{method}: the gateway closed the {role} socket: {closes}"
        if not answers and _own_timeout_ms(params) > SETTLE_MS:
            self.pending += 1  # e.g. agent.wait {timeoutMs: 2**53}: still waiting, by request
        else:
            assert answers, f"{method}: no response to {req_id}"
        assert len(answers) <= 2, f"{method}: {len(answers)} responses to {req_id}"
        if len(answers) == 2:
            assert _accepted(answers[0]), answers[0]
        for res in answers:
            assert isinstance(res.get("ok"), bool), res
            if not res["ok"]:
                err = res.get("error") or {}
                assert isinstance(err.get("code"), str) and isinstance(err.get("message"), str), res
                assert "internal error" not in err["message"], \
                    f"{method}: internal error" + (f"; logged:\n{self.failures[0][-1500:]}"
                                                   if self.failures else "")
                size = len(json.dumps(err))
                assert size <= 8192, f"{method}: a {size}-byte error echoes its input"
        assert not self.failures, f"{method}: logged failure:\n{self.failures[0]}"
        if self.inputs % BYSTANDER_EVERY == 0:
            self.bystander_answers(method)
        if any(not r["ok"] and r["error"]["message"].startswith("unauthorized role")
               for r in answers):
            self._reset_streak(client)
        growth = rss_bytes() - self.rss_start
        assert growth < RSS_GROWTH_LIMIT, f"{method}: RSS grew {growth >> 20} MiB"

    def check_frame(self, payload: bytes, binary: bool = False) -> None:
        """A malformed frame after hello: never a close, a crash or a logged failure, at most
        one answer, and the socket still answers."""
        try:
            self._check_frame(payload, binary)
        except AssertionError as e:
            raise AssertionError(f"{e}\n  frame ({'binary' if binary else 'text'}): "
                                 f"{_show(payload)}") from None

    def _check_frame(self, payload: bytes, binary: bool) -> None:
        self.inputs += 1
        self.failures.clear()
        client = self.client("operator")
        client.pop()
        send(client, payload, opcode=2 if binary else 1)
        self.clock.advance(0.05)
        received = client.pop()
        self._answer_pings()
        shown = payload[:300]
        closes = [f for f in received if isinstance(f, Closed)]
        if closes and not binary and not _utf8(payload):
            assert closes[0].code == 1007, closes  # RFC 6455: invalid UTF-8 in a text frame
            client.close_from_client(1007)
            self.operator = hello(self.gw, scopes=ADMIN)
            return
        assert not closes, f"{closes} for {shown!r}"
        answers = [f for f in received if isinstance(f, dict) and f.get("type") == "res"]
        assert len(answers) <= 1, f"{len(answers)} answers to {shown!r}"
        for res in answers:
            if not res["ok"]:
                assert "internal error" not in res["error"]["message"], shown
                size = len(json.dumps(res["error"]))
                assert size <= 8192, f"a {size}-byte error echoes {shown!r}"
        assert not self.failures, f"logged failure for {shown!r}:\n{self.failures[0]}"
        self.bystander_answers("a malformed frame")
        self._reset_streak(client)

    def bystander_answers(self, method: str) -> None:
        b = self.bystander
        assert not b.lost, f"{method}: the bystander was disconnected"
        b.pop()
        req_id = b.request("last-heartbeat")
        res = b.response(req_id)
        assert res is not None and res["ok"], f"{method}: the bystander got {res}"

    def _reset_streak(self, client: WSClient) -> None:
        """A permitted call, so calls refused for the role (an operator calling node methods
        and the reverse) do not add up to the unauthorized-role close, which is by design."""
        if not client.lost:
            cheap = "node.pending.pull" if client is self.node.ws else "last-heartbeat"
            res = client.response(client.request(cheap))
            assert res is not None and res["ok"], f"the socket no longer answers: {res}"


def send(client: WSClient, payload: bytes, opcode: int = 1) -> None:
    """A client frame with an all-zero mask (valid, and no per-byte XOR in Python)."""
    if not client.lost:
        client.proto.dataReceived(ws_frame(payload, opcode))
        client.flush()


def _accepted(res: dict[str, Any]) -> bool:
    payload = res.get("payload")
    return res.get("ok") is True and isinstance(payload, dict) \
        and payload.get("status") == "accepted"


def _show(params: Any) -> str:
    text = repr(params)
    return text if len(text) <= 600 else text[:600] + f"… ({len(text)} chars)"


def _utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _own_timeout_ms(params: Any) -> float:
    """The timeout a request asked for itself (0 if none): it may outlast the settle window."""
    if not isinstance(params, dict):
        return 0
    value = params.get("timeoutMs", params.get("timeout"))
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0
