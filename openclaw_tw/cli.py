"""``openclaw-tw``: a small client of the gateway speaking the same protocol as any client.

    openclaw-tw call METHOD [--params JSON] [--url URL] [--token T] [--json]
    openclaw-tw health [--url URL] [--token T] [--json]
    openclaw-tw token            # print the gateway token this machine's gateway uses
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred

from openclaw_tw import PROTOCOL_VERSION, __version__, _json, config
from openclaw_tw.protocol import scopes as S


class CallError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "error"))
        self.error = error


def scopes_for(method: str, params: Any) -> list[str]:
    """Least privilege for a classified method, else the CLI's default scope set."""
    if method in S.METHOD_POLICY and S.policy_scope(method) != S.NODE_SCOPE:
        return list(S.required_scopes(method, params))
    return list(S.CLI_DEFAULT_SCOPES)


class _CallProtocol(WebSocketClientProtocol):
    factory: _CallFactory

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        f = self.factory
        frame = _json.loads(payload)
        if frame.get("type") == "event" and frame.get("event") == "connect.challenge":
            params = {
                "minProtocol": PROTOCOL_VERSION, "maxProtocol": PROTOCOL_VERSION,
                "client": {"id": "cli", "version": __version__, "platform": sys.platform,
                           "mode": "cli", "instanceId": str(uuid.uuid4())},
                "caps": [], "role": "operator", "scopes": scopes_for(f.method, f.params),
                "auth": {"token": f.token} if f.token else {},
            }
            self._send("1", "connect", params)
            return
        if frame.get("type") != "res":
            return
        if frame["id"] == "1":
            if not frame.get("ok"):
                self._finish(CallError(frame.get("error") or {}))
            else:
                self._send("2", f.method, f.params)
            return
        if frame["id"] == "2":
            if frame.get("ok"):
                self._finish(frame.get("payload"))
            else:
                self._finish(CallError(frame.get("error") or {}))

    def _send(self, req_id: str, method: str, params: Any) -> None:
        frame: dict[str, Any] = {"type": "req", "id": req_id, "method": method}
        if params is not None:
            frame["params"] = params
        self.sendMessage(_json.dumps(frame))

    def _finish(self, result: Any) -> None:
        d, self.factory.result = self.factory.result, None
        self.sendClose()
        if d is None:
            return
        if isinstance(result, Exception):
            d.errback(result)
        else:
            d.callback(result)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        d, self.factory.result = self.factory.result, None
        if d is not None:
            d.errback(CallError({"code": "UNAVAILABLE",
                                 "message": f"connection closed ({code}): {reason or ''}"}))


class _CallFactory(WebSocketClientFactory):
    protocol = _CallProtocol

    def __init__(self, url: str, token: str | None, method: str, params: Any) -> None:
        super().__init__(url)
        self.token, self.method, self.params = token, method, params
        self.result: Deferred[Any] | None = Deferred()


def call(reactor: Any, url: str, token: str | None, method: str, params: Any,
         timeout: float = 10.0) -> Deferred[Any]:
    from autobahn.twisted.websocket import connectWS

    factory = _CallFactory(url, token, method, params)
    d = factory.result
    assert d is not None
    connectWS(factory, timeout=timeout)
    timer = reactor.callLater(timeout, lambda: d.called or d.errback(
        CallError({"code": "UNAVAILABLE", "message": f"timeout after {timeout:.0f}s"})))
    d.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
    return d


def _defaults(args: argparse.Namespace) -> tuple[str, str | None]:
    """URL and token as the gateway on this machine would resolve them (flags win)."""
    port, token = config.DEFAULT_PORT, None
    try:
        options = {"config": args.config} if args.config else {}
        settings = config.resolve(options, os.environ, create_token=False)
        port, token = settings.port, settings.secret
    except config.ConfigError as e:
        print(f"openclaw-tw: {e}", file=sys.stderr)
    return args.url or f"ws://127.0.0.1:{port}", args.token or token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openclaw-tw", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("call", "health"):
        p = sub.add_parser(name)
        if name == "call":
            p.add_argument("method")
            p.add_argument("--params", default=None, help="JSON object of params")
        p.add_argument("--url")
        p.add_argument("--token")
        p.add_argument("--config")
        p.add_argument("--timeout", type=float, default=10.0)
        p.add_argument("--json", action="store_true", help="print raw JSON")
    sub.add_parser("token")
    args = parser.parse_args(argv)

    if args.command == "token":
        state_dir = config.default_state_dir(os.environ)
        try:
            settings = config.resolve({}, os.environ, create_token=False)
        except config.ConfigError as e:
            print(f"openclaw-tw: {e}", file=sys.stderr)
            return 1
        if not settings.token:
            print(f"openclaw-tw: no token configured in {state_dir}", file=sys.stderr)
            return 1
        print(settings.token)
        return 0

    method = args.method if args.command == "call" else "health"
    params: Any = None
    if getattr(args, "params", None):
        try:
            params = _json.loads(args.params)
        except _json.JSONDecodeError as e:
            print(f"openclaw-tw: --params is not JSON: {e}", file=sys.stderr)
            return 2
    url, token = _defaults(args)
    outcome: dict[str, Any] = {}

    def run(reactor: Any) -> Deferred[Any]:
        d = call(reactor, url, token, method, params, args.timeout)
        d.addCallbacks(lambda r: outcome.__setitem__("ok", r),
                       lambda f: outcome.__setitem__("err", f.value))
        return d

    from twisted.internet import task

    try:
        task.react(run)
    except SystemExit:
        pass
    if "err" in outcome:
        err = outcome["err"]
        error = err.error if isinstance(err, CallError) else {"message": str(err)}
        print(f"gateway call failed: {error.get('message')}", file=sys.stderr)
        print(_json.pretty({"ok": False, "error": error}))
        return 1
    result = outcome.get("ok")
    if args.json or not isinstance(result, dict | list):
        print(_json.pretty(result))
    else:
        print(_json.pretty(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
