"""``openclaw-tw``: a small client of the gateway speaking the same protocol as any client.

    openclaw-tw call METHOD [--params JSON] [--url URL] [--token T] [--json]
    openclaw-tw health
    openclaw-tw token                      print the token this machine's gateway uses
    openclaw-tw methods [--json]           the API index (method, scope, params, handler)
    openclaw-tw devices list
    openclaw-tw devices approve REQUEST_ID | --latest
    openclaw-tw devices reject REQUEST_ID
    openclaw-tw devices remove DEVICE_ID
    openclaw-tw devices rename DEVICE_ID LABEL
    openclaw-tw devices rotate DEVICE_ID [--role operator] [--scopes a,b]
    openclaw-tw devices revoke DEVICE_ID [--role operator]
    openclaw-tw nodes list | describe NODE_ID | approve REQUEST_ID|--latest | reject REQUEST_ID
    openclaw-tw nodes invoke NODE_ID COMMAND [--params JSON] [--invoke-timeout MS]
    openclaw-tw approvals list | resolve ID allow-once|allow-always|deny
    openclaw-tw node run [--url URL] [--token T] [--display-name NAME] [--deny-run]

URL and token default to what the gateway on this machine uses (flags > env > config file >
the generated token).  Connects to non-loopback gateways are signed with this client's own
Ed25519 identity (``<state>/client``), and device tokens it is given are stored and reused.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw import _json
from openclaw_tw.client.connection import CallError, ClientState, call
from openclaw_tw.config import settings as config

DEVICE_COMMANDS = ("list", "approve", "reject", "remove", "rename", "rotate", "revoke")
NODE_COMMANDS = ("list", "describe", "approve", "reject", "invoke")
APPROVAL_COMMANDS = ("list", "resolve")


def _defaults(args: argparse.Namespace) -> tuple[str, str | None]:
    """URL and token as the gateway on this machine would resolve them (flags win)."""
    port, token = config.DEFAULT_PORT, None
    try:
        options = {"config": args.config} if args.config else {}
        settings = config.resolve(options, os.environ, create_token=False)
        port, token = settings.port, settings.secret
    except config.ConfigError as e:
        print(f"openclaw-tw: {e}", file=sys.stderr)
    env_url = os.environ.get("OPENCLAW_GATEWAY_URL")
    return args.url or env_url or f"ws://127.0.0.1:{port}", args.token or token


def _connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--config")
    p.add_argument("--ca-file", help="PEM certificate to trust for wss:// (self-signed gateways)")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--json", action="store_true", help="print raw JSON")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openclaw-tw", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("call", help="call one gateway method")
    p.add_argument("method")
    p.add_argument("--params", default=None, help="JSON object of params")
    _connection_args(p)
    _connection_args(sub.add_parser("health", help="the gateway's health snapshot"))
    sub.add_parser("token", help="print the gateway token")
    m = sub.add_parser("methods", help="the API index: every method, its scope, params and "
                                       "handler (built locally, no gateway needed)")
    m.add_argument("--json", action="store_true", help="print raw JSON")
    d = sub.add_parser("devices", help="device pairing and device tokens")
    d.add_argument("action", choices=DEVICE_COMMANDS)
    d.add_argument("target", nargs="?", help="request id or device id")
    d.add_argument("label", nargs="?", help="label for rename")
    d.add_argument("--latest", action="store_true", help="approve the newest pending request")
    d.add_argument("--role", default="operator")
    d.add_argument("--scopes", help="comma-separated scopes for rotate")
    _connection_args(d)
    n = sub.add_parser("nodes", help="node pairing, listing and invoke")
    n.add_argument("action", choices=NODE_COMMANDS)
    n.add_argument("target", nargs="?", help="node id or request id")
    n.add_argument("node_command", nargs="?", help="command for invoke")
    n.add_argument("--latest", action="store_true", help="approve the newest pending request")
    n.add_argument("--params", default=None, help="JSON object of invoke params")
    n.add_argument("--invoke-timeout", type=int, default=15000, help="node invoke timeout ms")
    _connection_args(n)
    a = sub.add_parser("approvals", help="pending exec approvals")
    a.add_argument("action", choices=APPROVAL_COMMANDS)
    a.add_argument("target", nargs="?", help="approval id")
    a.add_argument("decision", nargs="?", choices=("allow-once", "allow-always", "deny"))
    _connection_args(a)
    c = sub.add_parser("pairing", help="DM pairing requests of chat channels")
    c.add_argument("action", choices=("list", "approve", "dismiss"))
    c.add_argument("channel", nargs="?", help="channel id (irc, telegram, matrix)")
    c.add_argument("code", nargs="?", help="pairing code")
    c.add_argument("--account", help="account id (multi-account channels)")
    c.add_argument("--notify", action="store_true", help="tell the requester (if supported)")
    _connection_args(c)
    h = sub.add_parser("node", help="run a headless node host")
    h.add_argument("action", choices=("run",))
    h.add_argument("--display-name")
    h.add_argument("--deny-run", action="store_true", help="refuse system.run")
    _connection_args(h)
    return parser


def _node_call(args: argparse.Namespace) -> tuple[str, Any]:
    action, target = args.action, args.target
    if action == "list":
        return "node.list", {}
    if action == "approve" and args.latest:
        return "node.pair.approve", {"requestId": None}
    if not target:
        raise SystemExit(f"openclaw-tw: nodes {action} needs an id")
    if action == "describe":
        return "node.describe", {"nodeId": target}
    if action in ("approve", "reject"):
        return f"node.pair.{action}", {"requestId": target}
    if not args.node_command:
        raise SystemExit("openclaw-tw: nodes invoke needs NODE_ID COMMAND")
    params: dict[str, Any] = {"nodeId": target, "command": args.node_command,
                              "idempotencyKey": str(uuid.uuid4()),
                              "timeoutMs": args.invoke_timeout}
    if args.params:
        try:
            params["params"] = _json.loads(args.params)
        except _json.JSONDecodeError as e:
            raise SystemExit(f"openclaw-tw: --params is not JSON: {e}") from None
    args.timeout = max(args.timeout, args.invoke_timeout / 1000 + 5)
    return "node.invoke", params


def _pairing_call(args: argparse.Namespace) -> tuple[str, Any]:
    params: dict[str, Any] = {}
    if args.channel:
        params["channel"] = args.channel
    if args.account:
        params["accountId"] = args.account
    if args.action == "list":
        return "channels.pairing.list", params
    if not args.channel or not args.code:
        raise SystemExit(f"openclaw-tw: pairing {args.action} needs CHANNEL CODE")
    params["requestId"] = args.code.strip().upper()
    if args.action == "approve" and args.notify:
        params["notify"] = True
    return f"channels.pairing.{args.action}", params


def _account_then(reactor: Any, url: str, token: str | None, args: argparse.Namespace,
                  state: ClientState, ca_file: Path | None, method: str,
                  params: dict[str, Any]) -> Deferred[Any]:
    """``openclaw pairing approve <channel> <CODE>`` names no account: find the request."""
    d = call(reactor, url, token, "channels.pairing.list", {"channel": params["channel"]},
             args.timeout, state, ca_file)

    def act(listing: dict[str, Any]) -> Any:
        for req in listing.get("requests") or []:
            if req.get("requestId") == params["requestId"]:
                return call(reactor, url, token, method,
                            {**params, "accountId": req["accountId"]}, args.timeout, state,
                            ca_file)
        raise CallError({"code": "INVALID_REQUEST", "message":
                         f"No pending pairing request found for code: {params['requestId']}"})

    return d.addCallback(act)


def _approval_call(args: argparse.Namespace) -> tuple[str, Any]:
    if args.action == "list":
        return "exec.approval.list", {}
    if not args.target or not args.decision:
        raise SystemExit("openclaw-tw: approvals resolve needs ID DECISION")
    return "exec.approval.resolve", {"id": args.target, "decision": args.decision}


def _node_run(args: argparse.Namespace) -> int:
    from autobahn.twisted.websocket import connectWS
    from twisted.internet import reactor

    from openclaw_tw.approvals.policyfile import PolicyFile
    from openclaw_tw.client.connection import ClientState
    from openclaw_tw.client.nodehost import NODE_TOKENS_FILE, NodeHostFactory, node_identity

    url, token = _defaults(args)
    state_dir = config.default_state_dir(os.environ)
    identity = node_identity(state_dir)
    print(f"node host: device {identity.device_id} -> {url}", flush=True)
    factory = NodeHostFactory(reactor, url, token, identity, args.display_name,
                              allow_run=not args.deny_run,
                              tokens=ClientState(state_dir, NODE_TOKENS_FILE),
                              policy=PolicyFile(state_dir))
    connectWS(factory, timeout=args.timeout)
    reactor.run()  # type: ignore[attr-defined]
    return 0


def _device_call(args: argparse.Namespace) -> tuple[str, Any]:
    action, target = args.action, args.target
    if action == "list":
        return "device.pair.list", {}
    if action in ("approve", "reject"):
        if not target and not (action == "approve" and args.latest):
            raise SystemExit(f"openclaw-tw: devices {action} needs a request id")
        return f"device.pair.{action}", {"requestId": target}
    if not target:
        raise SystemExit(f"openclaw-tw: devices {action} needs a device id")
    if action == "remove":
        return "device.pair.remove", {"deviceId": target}
    if action == "rename":
        if not args.label:
            raise SystemExit("openclaw-tw: devices rename needs a label")
        return "device.pair.rename", {"deviceId": target, "label": args.label}
    params: dict[str, Any] = {"deviceId": target, "role": args.role}
    if action == "rotate" and args.scopes:
        params["scopes"] = [s for s in args.scopes.split(",") if s]
    return f"device.token.{action}", params


def _run(args: argparse.Namespace, method: str, params: Any) -> tuple[Any, Exception | None]:
    url, token = _defaults(args)
    state = ClientState(config.default_state_dir(os.environ))
    ca_file = Path(args.ca_file) if getattr(args, "ca_file", None) else None
    outcome: dict[str, Any] = {}

    def run(reactor: Any) -> Deferred[Any]:
        if method in ("device.pair.approve", "node.pair.approve") and \
                params.get("requestId") is None:
            d = _latest_then_approve(reactor, url, token, args, state, ca_file, method)
        elif method in ("channels.pairing.approve", "channels.pairing.dismiss") and \
                "accountId" not in params:
            d = _account_then(reactor, url, token, args, state, ca_file, method, params)
        else:
            d = call(reactor, url, token, method, params, args.timeout, state, ca_file)
        d.addCallbacks(lambda r: outcome.__setitem__("ok", r),
                       lambda f: outcome.__setitem__("err", f.value))
        return d

    from twisted.internet import task

    try:
        task.react(run)
    except SystemExit:
        pass
    return outcome.get("ok"), outcome.get("err")


def _latest_then_approve(reactor: Any, url: str, token: str | None, args: argparse.Namespace,
                         state: ClientState, ca_file: Path | None,
                         method: str = "device.pair.approve") -> Deferred[Any]:
    family = method.rsplit(".", 1)[0]
    d = call(reactor, url, token, f"{family}.list", {}, args.timeout, state, ca_file)

    def approve(listing: dict[str, Any]) -> Any:
        pending = sorted(listing.get("pending") or [], key=lambda p: p.get("ts", 0))
        if not pending:
            raise CallError({"code": "INVALID_REQUEST",
                             "message": "no pending pairing requests"})
        return call(reactor, url, token, method,
                    {"requestId": pending[-1]["requestId"]}, args.timeout, state, ca_file)

    return d.addCallback(approve)


def _print_devices(result: dict[str, Any]) -> None:
    pending, paired = result.get("pending") or [], result.get("paired") or []
    print(f"Pending ({len(pending)})")
    for p in pending:
        print(f"  {p['requestId']}  device {p['deviceId'][:12]}  {p.get('clientId')}/"
              f"{p.get('clientMode')}  role {p.get('role')}  scopes {','.join(p.get('scopes', []))}"
              f"  reason {p.get('reason')}  from {p.get('remoteIp', '-')}")
    print(f"Paired ({len(paired)})")
    for d in paired:
        label = f" \"{d['label']}\"" if d.get("label") else ""
        roles = ",".join(t["role"] for t in d.get("tokens", [])) or "-"
        print(f"  {d['deviceId'][:12]}{label}  {d.get('clientId')}/{d.get('clientMode')}  "
              f"via {d.get('approvedVia')}  scopes {','.join(d.get('scopes', []))}  "
              f"tokens {roles}  {'connected' if d.get('connected') else 'offline'}")


def _print_nodes(result: dict[str, Any]) -> None:
    nodes = result.get("nodes") or []
    print(f"Nodes ({len(nodes)})")
    for n in nodes:
        name = f" \"{n['displayName']}\"" if n.get("displayName") else ""
        state = n.get("approvalState")
        if n.get("pendingRequestId"):
            state = f"{state} (request {n['pendingRequestId']})"
        print(f"  {n['nodeId']}{name}  {n.get('platform')}  {state}  "
              f"{'connected' if n.get('connected') else 'offline'}  "
              f"commands {','.join(n.get('commands') or []) or '-'}")


def _print_approvals(result: list[dict[str, Any]]) -> None:
    print(f"Pending approvals ({len(result)})")
    for a in result:
        req = a.get("request") or {}
        command = req.get("command") or " ".join(req.get("commandArgv") or [])
        print(f"  {a['id']}  {req.get('host')}  {command!r}  expires {a.get('expiresAtMs')}")


def _print_pairing(result: dict[str, Any]) -> None:
    requests = result.get("requests") or []
    if not requests:
        print("No pending pairing requests.")
        return
    print(f"Pairing requests ({len(requests)})")
    for r in requests:
        print(f"  {r['requestId']}  {r['channel']}:{r['accountId']}  {r['senderId']} "
              f"({r.get('senderLabel')})  expires {r.get('expiresAt')}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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

    if args.command == "methods":
        from openclaw_tw.methods.index import build_index, render

        index = build_index()
        print(_json.dumps(index).decode() if args.json else render(index))
        return 0

    params: Any = None
    if args.command == "call":
        method = args.method
        if args.params:
            try:
                params = _json.loads(args.params)
            except _json.JSONDecodeError as e:
                print(f"openclaw-tw: --params is not JSON: {e}", file=sys.stderr)
                return 2
    elif args.command == "health":
        method = "health"
    elif args.command == "node":
        return _node_run(args)
    elif args.command == "nodes":
        method, params = _node_call(args)
    elif args.command == "approvals":
        method, params = _approval_call(args)
    elif args.command == "pairing":
        method, params = _pairing_call(args)
    else:
        method, params = _device_call(args)

    result, err = _run(args, method, params)
    if err is not None:
        error = err.error if isinstance(err, CallError) else {"message": str(err)}
        print(f"openclaw-tw: {method} failed: {error.get('message')}", file=sys.stderr)
        print(_json.pretty({"ok": False, "error": error}))
        return 1
    if args.command == "devices" and args.action == "list" and not args.json:
        _print_devices(result)
    elif args.command == "nodes" and args.action == "list" and not args.json:
        _print_nodes(result)
    elif args.command == "approvals" and args.action == "list" and not args.json:
        _print_approvals(result)
    elif args.command == "pairing" and args.action == "list" and not args.json:
        _print_pairing(result)
    else:
        print(_json.pretty(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
