"""``openclaw-tw node run``: a minimal headless node host.

The node's exec approvals policy is its own ``exec-approvals.json`` in its state dir
(``system.execApprovals.get``/``.set``, which the gateway relays for
``exec.approvals.node.*``); ``security: "deny"`` refuses ``system.run``.

Connects as role ``node`` with its own Ed25519 device identity (``<state>/node``), keeps the
device token the gateway issues in ``hello-ok`` (``<state>/node/device-tokens.json``, per
gateway URL) and connects with it when no shared token is given -- so, like the real node host,
a restarted host needs neither the gateway's token nor a new approval -- declares
``system.run``/``system.which``/``system.notify`` and answers ``node.invoke.request`` events:
commands run as child processes through the reactor (never blocking it), are killed on
``node.invoke.cancel`` or their timeout, and the outcome goes back as ``node.invoke.result``.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from openclaw_tw import PROTOCOL_VERSION, __version__, _json
from openclaw_tw.approvals.policyfile import PolicyFile
from openclaw_tw.b64 import b64url
from openclaw_tw.client.connection import ClientState
from openclaw_tw.errors import GatewayError
from openclaw_tw.hub.identity import GatewayIdentity, load_or_create

NODE_KEY_FILE = "node/identity-ed25519.pem"
NODE_TOKENS_FILE = "node/device-tokens.json"
COMMANDS = ("system.notify", "system.run", "system.which")
MAX_OUTPUT = 200_000
DEFAULT_RUN_TIMEOUT_MS = 60_000

_log = Logger(namespace="node-host")


def node_identity(state_dir: Path) -> GatewayIdentity:
    return load_or_create(state_dir, NODE_KEY_FILE)


def node_connect_params(identity: GatewayIdentity, token: str | None, nonce: str, ts: int,
                        display_name: str | None = None,
                        device_token: str | None = None) -> dict[str, Any]:
    platform = sys.platform
    family = "Linux" if platform.startswith("linux") else platform
    client: dict[str, Any] = {"id": "node-host", "version": __version__, "platform": platform,
                              "deviceFamily": family, "mode": "node",
                              "instanceId": str(uuid.uuid4())}
    if display_name:
        client["displayName"] = display_name
    payload = "|".join(["v3", identity.device_id, "node-host", "node", "node", "", str(ts),
                        token or device_token or "", nonce, platform.lower(), family.lower()])
    out: dict[str, Any] = {
        "minProtocol": PROTOCOL_VERSION, "maxProtocol": PROTOCOL_VERSION, "client": client,
        "role": "node", "scopes": [], "caps": ["system"], "commands": list(COMMANDS),
        "permissions": {},
        "device": {"id": identity.device_id, "publicKey": identity.public_key,
                   "signature": b64url(identity.sign(payload.encode())), "signedAt": ts,
                   "nonce": nonce}}
    if token:
        out["auth"] = {"token": token}
    elif device_token:
        out["auth"] = {"deviceToken": device_token}
    return out


class _Run(protocol.ProcessProtocol):
    """One system.run child: collects output, reports {exitCode, stdout, ...}."""

    def __init__(self, done: Callable[[dict[str, Any]], None]) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.done = done
        self.timed_out = False
        self.cancelled = False

    def outReceived(self, data: bytes) -> None:
        self.out += data[: max(0, MAX_OUTPUT - len(self.out))]

    def errReceived(self, data: bytes) -> None:
        self.err += data[: max(0, MAX_OUTPUT - len(self.err))]

    def kill(self, timed_out: bool) -> None:
        self.timed_out = timed_out
        self.cancelled = not timed_out
        try:
            self.transport.signalProcess("KILL")
        except Exception:  # already gone
            pass

    def processEnded(self, reason: Any) -> None:
        code = getattr(reason.value, "exitCode", None)
        error = "timed out" if self.timed_out else "cancelled" if self.cancelled else None
        self.done({"exitCode": code, "timedOut": self.timed_out,
                   "success": code == 0 and error is None,
                   "stdout": self.out.decode("utf-8", "replace"),
                   "stderr": self.err.decode("utf-8", "replace"), "error": error})


class NodeHostProtocol(WebSocketClientProtocol):
    factory: NodeHostFactory

    def onOpen(self) -> None:
        self.node_id = self.factory.identity.device_id
        self.runs: dict[str, _Run] = {}
        self.req_ids = iter(range(2, 1 << 62))

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        frame = _json.loads(payload)
        f = self.factory
        if frame.get("type") == "event":
            event, body = frame.get("event"), frame.get("payload") or {}
            if event == "connect.challenge":
                self._send("1", "connect", node_connect_params(
                    f.identity, f.token, body.get("nonce", ""), int(body.get("ts") or 0),
                    f.display_name, None if f.token else f.stored_token()))
            elif event == "node.invoke.request":
                self._invoke(body)
            elif event == "node.invoke.cancel":
                run = self.runs.get(str(body.get("invokeId")))
                if run is not None:
                    run.kill(timed_out=False)
            elif event == "node.pair.resolved":
                f.report(f"pairing {body.get('decision')} (request {body.get('requestId')})")
            return
        if frame.get("type") == "res" and frame.get("id") == "1":
            if frame.get("ok"):
                f.report(f"node host connected: {f.url} (node {self.node_id[:12]})")
                f.resetDelay()
                issued = ((frame.get("payload") or {}).get("auth") or {}).get("deviceToken")
                if isinstance(issued, str) and issued and f.tokens is not None:
                    f.tokens.save_token(f.url, issued)
            else:
                error = frame.get("error") or {}
                f.report(f"connect refused: {error.get('message')}")
                if not f.token and f.tokens is not None and "device token" in \
                        str(error.get("message", "")).lower():
                    f.tokens.forget_token(f.url)  # revoked or rotated: not offered again

    def _send(self, req_id: str, method: str, params: Any) -> None:
        self.sendMessage(_json.dumps({"type": "req", "id": req_id, "method": method,
                                      "params": params}))

    def _result(self, invoke_id: str, ok: bool, payload: Any = None,
                error: dict[str, str] | None = None) -> None:
        body: dict[str, Any] = {"id": invoke_id, "nodeId": self.node_id, "ok": ok}
        if ok:
            body["payload"] = payload
        else:
            body["error"] = error
        if self.state == self.STATE_OPEN:
            self._send(str(next(self.req_ids)), "node.invoke.result", body)

    def _invoke(self, req: dict[str, Any]) -> None:
        invoke_id, command = str(req.get("id")), req.get("command")
        try:
            params = _json.loads(req["paramsJSON"]) if req.get("paramsJSON") else {}
        except (ValueError, TypeError):
            params = {}
        if not isinstance(params, dict):
            params = {}
        if command == "system.which":
            bins = [b for b in params.get("bins") or [] if isinstance(b, str)]
            found = {b: p for b in bins if (p := shutil.which(b))}
            self._result(invoke_id, True, {"bins": found})
        elif command == "system.notify":
            self.factory.report(f"notify: {params.get('title', '')} {params.get('body', '')}")
            self._result(invoke_id, True, {"ok": True})
        elif command == "system.run":
            self._run(invoke_id, params, int(req.get("timeoutMs") or DEFAULT_RUN_TIMEOUT_MS))
        elif command == "system.execApprovals.get":
            self._result(invoke_id, True, self.factory.policy.snapshot())
        elif command == "system.execApprovals.set":
            try:
                snap = self.factory.policy.write(params.get("file"), params.get("baseHash"))
            except GatewayError as e:
                self._result(invoke_id, False, error={"code": e.code, "message": e.message})
            else:
                self._result(invoke_id, True, snap)
        else:
            self._result(invoke_id, False, error={"code": "INVALID_REQUEST",
                                                  "message": f"unsupported command: {command}"})

    def _run(self, invoke_id: str, params: dict[str, Any], timeout_ms: int) -> None:
        argv = params.get("command")
        if isinstance(argv, str):
            argv = ["/bin/sh", "-c", argv]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            self._result(invoke_id, False, error={"code": "INVALID_REQUEST",
                                                  "message": "system.run needs command argv"})
            return
        if not self.factory.allow_run:
            self._result(invoke_id, False, error={"code": "UNAVAILABLE",
                                                  "message": "SYSTEM_RUN_DENIED: node host "
                                                             "runs no commands (--deny-run)"})
            return
        if self.factory.policy.decide(params.get("agentId"))["security"] == "deny":
            self._result(invoke_id, False, error={
                "code": "UNAVAILABLE", "message": "SYSTEM_RUN_DENIED: exec approvals policy "
                                                  "of this node: security deny"})
            return
        exe = shutil.which(argv[0]) or argv[0]
        cwd = params.get("cwd") if isinstance(params.get("cwd"), str) else None
        env = dict(os.environ)
        if isinstance(params.get("env"), dict):
            env.update({str(k): str(v) for k, v in params["env"].items()})
        reactor = self.factory.reactor

        def done(result: dict[str, Any]) -> None:
            self.runs.pop(invoke_id, None)
            if timer.active():
                timer.cancel()
            self._result(invoke_id, True, result)

        run = _Run(done)
        try:
            reactor.spawnProcess(run, exe, argv, env=env, path=cwd)
        except OSError as e:
            self._result(invoke_id, False, error={"code": "UNAVAILABLE", "message": str(e)})
            return
        self.runs[invoke_id] = run
        timer = reactor.callLater(max(timeout_ms, 1) / 1000, run.kill, True)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        for run in list(getattr(self, "runs", {}).values()):
            run.kill(timed_out=False)
        self.factory.report(f"disconnected ({code}) {reason or ''}".rstrip())


class NodeHostFactory(WebSocketClientFactory, protocol.ReconnectingClientFactory):
    protocol = NodeHostProtocol
    maxDelay = 10

    def __init__(self, reactor: Any, url: str, token: str | None, identity: GatewayIdentity,
                 display_name: str | None = None, allow_run: bool = True,
                 report: Callable[[str], None] | None = None,
                 tokens: ClientState | None = None, policy: PolicyFile | None = None) -> None:
        WebSocketClientFactory.__init__(self, url, reactor=reactor)
        self.reactor = reactor
        self.token = token
        self.identity = identity
        self.display_name = display_name
        self.allow_run = allow_run
        self.report = report or (lambda line: print(line, flush=True))
        self.stopped: Deferred[None] = Deferred()
        self.tokens = tokens  # device tokens issued to this node, per gateway URL
        # The node's own exec approvals file (exec.approvals.node.get/set relay to it).
        self.policy = policy or PolicyFile(Path.home() / ".openclaw")

    def stored_token(self) -> str | None:
        return self.tokens.token_for(self.url) if self.tokens is not None else None

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.retry(connector)

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        self.retry(connector)
