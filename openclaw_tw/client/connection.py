"""A protocol v4 client: challenge -> connect (optionally device-signed) -> one request.

Used by the ``openclaw-tw`` command.  Like the real CLI it keeps its own Ed25519 identity in the
state dir and signs connects to non-loopback gateways; a device token received in hello-ok is
stored per gateway URL and used when no shared secret is given.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
from twisted.internet.defer import Deferred

from openclaw_tw import PROTOCOL_VERSION, __version__, _json
from openclaw_tw.auth.peer import is_loopback_ip
from openclaw_tw.b64 import b64url
from openclaw_tw.config.settings import atomic_write
from openclaw_tw.hub.identity import GatewayIdentity, load_or_create
from openclaw_tw.protocol import scopes as S

CLIENT_KEY_FILE = "client/identity-ed25519.pem"
TOKENS_FILE = "client/device-tokens.json"


class CallError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "error"))
        self.error = error


def scopes_for(method: str, params: Any) -> list[str]:
    """Least privilege for a classified method, else the CLI's default scope set."""
    if method == "node.pair.approve":  # extra scopes depend on the node's declared commands
        return list(S.CLI_DEFAULT_SCOPES)
    if method in S.METHOD_POLICY and S.policy_scope(method) != S.NODE_SCOPE:
        return list(S.required_scopes(method, params))
    return list(S.CLI_DEFAULT_SCOPES)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or is_loopback_ip(host)


class ClientState:
    """The client's identity and the device tokens it was given, in ``<state>/client`` (the
    node host keeps its own: ``tokens_file``)."""

    def __init__(self, state_dir: Path, tokens_file: str = TOKENS_FILE) -> None:
        self.state_dir = state_dir
        self.tokens_file = tokens_file

    def identity(self) -> GatewayIdentity:
        return load_or_create(self.state_dir, CLIENT_KEY_FILE)

    def _tokens(self) -> dict[str, str]:
        try:
            data = _json.loads((self.state_dir / self.tokens_file).read_bytes())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def token_for(self, url: str) -> str | None:
        return self._tokens().get(url)

    def save_token(self, url: str, token: str) -> None:
        tokens = self._tokens()
        if tokens.get(url) != token:
            tokens[url] = token
            atomic_write(self.state_dir / self.tokens_file, _json.dumps(tokens))

    def forget_token(self, url: str) -> None:
        tokens = self._tokens()
        if tokens.pop(url, None) is not None:
            atomic_write(self.state_dir / self.tokens_file, _json.dumps(tokens))


def connect_params(method: str, params: Any, token: str | None, device_token: str | None,
                   nonce: str, ts: int, identity: GatewayIdentity | None) -> dict[str, Any]:
    client = {"id": "cli", "version": __version__, "platform": sys.platform,
              "deviceFamily": "Linux" if sys.platform.startswith("linux") else sys.platform,
              "mode": "cli", "instanceId": str(uuid.uuid4())}
    scopes = scopes_for(method, params)
    auth: dict[str, str] = {}
    if token:
        auth["token"] = token
    elif device_token:
        auth["deviceToken"] = device_token
    out: dict[str, Any] = {"minProtocol": PROTOCOL_VERSION, "maxProtocol": PROTOCOL_VERSION,
                           "client": client, "caps": [], "role": "operator", "scopes": scopes,
                           "auth": auth}
    if identity is not None:
        signed = token or device_token or ""
        payload = "|".join(["v3", identity.device_id, "cli", "cli", "operator", ",".join(scopes),
                            str(ts), signed, nonce, client["platform"].lower(),
                            client["deviceFamily"].lower()])
        out["device"] = {"id": identity.device_id, "publicKey": identity.public_key,
                         "signature": b64url(identity.sign(payload.encode())),
                         "signedAt": ts, "nonce": nonce}
    return out


class _CallProtocol(WebSocketClientProtocol):
    factory: _CallFactory

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        f = self.factory
        frame = _json.loads(payload)
        if frame.get("type") == "event" and frame.get("event") == "connect.challenge":
            challenge = frame.get("payload") or {}
            self._send("1", "connect", connect_params(
                f.method, f.params, f.token, f.device_token, challenge.get("nonce", ""),
                int(challenge.get("ts") or 0), f.identity))
            return
        if frame.get("type") != "res":
            return
        if frame["id"] == "1":
            if not frame.get("ok"):
                self._finish(CallError(frame.get("error") or {}))
                return
            issued = ((frame.get("payload") or {}).get("auth") or {}).get("deviceToken")
            if issued and f.on_device_token is not None:
                f.on_device_token(issued)
            self._send("2", f.method, f.params)
        elif frame["id"] == "2":
            self._finish(frame.get("payload") if frame.get("ok")
                         else CallError(frame.get("error") or {}))

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

    def __init__(self, url: str, token: str | None, method: str, params: Any,
                 identity: GatewayIdentity | None, device_token: str | None,
                 on_device_token: Any) -> None:
        super().__init__(url)
        self.token, self.method, self.params = token, method, params
        self.identity, self.device_token = identity, device_token
        self.on_device_token = on_device_token
        self.result: Deferred[Any] | None = Deferred()


def call(reactor: Any, url: str, token: str | None, method: str, params: Any,
         timeout: float = 10.0, state: ClientState | None = None,
         ca_file: Path | None = None) -> Deferred[Any]:
    """Connect, run one method, close.  With ``state``, connects to non-loopback URLs are
    device-signed and device tokens are stored and reused."""
    identity = device_token = on_token = None
    if state is not None and not (token and is_loopback_url(url)):
        identity = state.identity()
        device_token = state.token_for(url)

        def on_token(value: str) -> None:
            state.save_token(url, value)

    factory = _CallFactory(url, token, method, params, identity, device_token, on_token)
    d = factory.result
    assert d is not None
    context = None
    if ca_file is not None and url.startswith("wss:"):
        from twisted.internet import ssl

        trust = ssl.Certificate.loadPEM(ca_file.read_bytes())
        context = ssl.optionsForClientTLS(urlsplit(url).hostname or "", trustRoot=trust)
    connectWS(factory, contextFactory=context, timeout=timeout)
    timer = reactor.callLater(timeout, lambda: d.called or d.errback(
        CallError({"code": "UNAVAILABLE", "message": f"timeout after {timeout:.0f}s"})))
    d.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
    return d
