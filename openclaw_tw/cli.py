"""``openclaw-tw``: a small client of the gateway speaking the same protocol as any client.

    openclaw-tw call METHOD [--params JSON] [--url URL] [--token T] [--json]
    openclaw-tw health
    openclaw-tw token                      print the token this machine's gateway uses
    openclaw-tw devices list
    openclaw-tw devices approve REQUEST_ID | --latest
    openclaw-tw devices reject REQUEST_ID
    openclaw-tw devices remove DEVICE_ID
    openclaw-tw devices rename DEVICE_ID LABEL
    openclaw-tw devices rotate DEVICE_ID [--role operator] [--scopes a,b]
    openclaw-tw devices revoke DEVICE_ID [--role operator]

URL and token default to what the gateway on this machine uses (flags > env > config file >
the generated token).  Connects to non-loopback gateways are signed with this client's own
Ed25519 identity (``<state>/client``), and device tokens it is given are stored and reused.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw import _json, config
from openclaw_tw.client import CallError, ClientState, call

DEVICE_COMMANDS = ("list", "approve", "reject", "remove", "rename", "rotate", "revoke")


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
    d = sub.add_parser("devices", help="device pairing and device tokens")
    d.add_argument("action", choices=DEVICE_COMMANDS)
    d.add_argument("target", nargs="?", help="request id or device id")
    d.add_argument("label", nargs="?", help="label for rename")
    d.add_argument("--latest", action="store_true", help="approve the newest pending request")
    d.add_argument("--role", default="operator")
    d.add_argument("--scopes", help="comma-separated scopes for rotate")
    _connection_args(d)
    return parser


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
        d = _latest_then_approve(reactor, url, token, args, state, ca_file) \
            if method == "device.pair.approve" and params.get("requestId") is None \
            else call(reactor, url, token, method, params, args.timeout, state, ca_file)
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
                         state: ClientState, ca_file: Path | None) -> Deferred[Any]:
    d = call(reactor, url, token, "device.pair.list", {}, args.timeout, state, ca_file)

    def approve(listing: dict[str, Any]) -> Any:
        pending = sorted(listing.get("pending") or [], key=lambda p: p.get("ts", 0))
        if not pending:
            raise CallError({"code": "INVALID_REQUEST",
                             "message": "no pending device pairing requests"})
        return call(reactor, url, token, "device.pair.approve",
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
    else:
        print(_json.pretty(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
