"""channels.*: status, start/stop/logout, DM pairing, and ``send`` (§6.1).

This build ships no channel provider yet (Telegram, IRC and Matrix are issue #8's remaining
work), so the status is truthful about it: configured accounts are listed as configured but not
running, each with a ``runtime`` status issue, and ``send``/``channels.start`` refuse with a
clear error instead of pretending to deliver.  DM pairing (codes, approvals, the allow list) is
real and persisted; providers call ``DmPairing.request`` for unknown senders.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openclaw_tw.channels.pairing import PENDING_PER_ACCOUNT, TTL_MS, DmPairing, PairingError
from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.protocol.dispatch import CallContext, MethodTable
from openclaw_tw.protocol.schema import Bool, Int, Obj, Str, closed

if TYPE_CHECKING:
    from openclaw_tw.gateway import Gateway

_S1 = Str(min_len=1)
LABELS = {"telegram": "Telegram", "irc": "IRC", "matrix": "Matrix"}
DETAIL_LABELS = {"telegram": "Telegram Bot", "irc": "IRC", "matrix": "Matrix"}
NOT_AVAILABLE = "channel provider not available in this build"
NO_CHANNELS = (
    "Error: Channel is required (no configured channels detected). Run openclaw channels add "
    "to configure one, or pass --channel <channel> after enabling a channel. Use openclaw "
    "channels list --all to see available channel ids.")

STATUS = Obj(optional={"probe": Bool(), "timeoutMs": Int(minimum=0), "channel": _S1})
CHANNEL = Obj(required={"channel": _S1}, optional={"accountId": Str()})
PAIR_LIST = Obj(optional={"channel": _S1, "accountId": _S1})
PAIR_APPROVE = Obj(required={"channel": _S1, "accountId": _S1, "requestId": _S1},
                   optional={"notify": Bool(), "bootstrapCommandOwner": Bool()})
PAIR_DISMISS = Obj(required={"channel": _S1, "accountId": _S1, "requestId": _S1})
SEND = closed(
    {"to": _S1, "idempotencyKey": _S1},
    {"message": Str(), "channel": Str(), "accountId": Str(), "agentId": Str(),
     "replyToId": Str(), "threadId": Str(), "sessionKey": Str(), "silent": Bool()},
    accepted="mediaUrl mediaUrls buffer filename contentType asVoice gifPlayback "
             "forceDocument parseMode")


def configured_accounts(raw: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{channel: {accountId: account config}}`` for the known, enabled channels."""
    channels = raw.get("channels")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not isinstance(channels, Mapping):
        return out
    for name in LABELS:
        cfg = channels.get(name)
        if not isinstance(cfg, Mapping) or cfg.get("enabled") is False:
            continue
        base = {k: v for k, v in cfg.items() if k != "accounts"}
        accounts = cfg.get("accounts")
        if isinstance(accounts, Mapping) and accounts:
            out[name] = {str(a): {**base, **(v if isinstance(v, Mapping) else {})}
                         for a, v in accounts.items()}
        else:
            out[name] = {"default": base}
    return out


def _has_credentials(channel: str, cfg: Mapping[str, Any]) -> bool:
    if channel == "telegram":
        return bool(cfg.get("botToken") or cfg.get("tokenFile"))
    if channel == "irc":
        return bool(cfg.get("host") and cfg.get("nick"))
    return bool(cfg.get("homeserver") and (cfg.get("accessToken") or cfg.get("password")))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build_status(gw: Gateway, only: str | None = None) -> dict[str, Any]:
    accounts = configured_accounts(gw.settings.raw)
    if only is not None:
        accounts = {k: v for k, v in accounts.items() if k == only}
    order = list(accounts)
    channel_accounts: dict[str, list[dict[str, Any]]] = {}
    issues: list[dict[str, Any]] = []
    for channel, by_id in accounts.items():
        rows = []
        for account_id, cfg in by_id.items():
            rows.append({
                "accountId": account_id, "enabled": True,
                "configured": _has_credentials(channel, cfg), "running": False,
                "connected": False, "reconnectAttempts": 0, "lastError": NOT_AVAILABLE,
                "healthState": "stopped", "dmPolicy": cfg.get("dmPolicy", "pairing"),
                "lastStartAt": None, "lastStopAt": None, "lastInboundAt": None,
                "lastOutboundAt": None,
            })
            issues.append({"channel": channel, "accountId": account_id, "kind": "runtime",
                           "message": f"{LABELS[channel]}: {NOT_AVAILABLE}"})
        channel_accounts[channel] = rows
    return {
        "ts": gw.now_ms(),
        "channelOrder": order,
        "channelLabels": {c: LABELS[c] for c in order},
        "channelDetailLabels": {c: DETAIL_LABELS[c] for c in order},
        "channelSystemImages": {},
        "channelMeta": [{"id": c, "label": LABELS[c], "detailLabel": DETAIL_LABELS[c]}
                        for c in order],
        "eventLoop": gw.health.lag.snapshot(),
        "channels": {c: {"configured": any(r["configured"] for r in channel_accounts[c]),
                         "running": False} for c in order},
        "channelAccounts": channel_accounts,
        "channelDefaultAccountId": {c: next(iter(accounts[c])) for c in order},
        "statusIssues": issues,
    }


def register(table: MethodTable, gw: Gateway, pairing: DmPairing) -> None:
    def known(channel: str) -> dict[str, dict[str, Any]]:
        accounts = configured_accounts(gw.settings.raw)
        if channel not in accounts:
            raise invalid_request(f"unknown channel: {channel}")
        return accounts[channel]

    def status(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return build_status(gw, params.get("channel"))

    def start(ctx: CallContext, params: dict[str, Any]) -> Any:
        known(params["channel"])
        raise GatewayError(UNAVAILABLE, f"{params['channel']}: {NOT_AVAILABLE}")

    def stop(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        channel = params["channel"]
        known(channel)
        return {"channel": channel, "accountId": params.get("accountId") or "default",
                "stopped": True}

    def logout(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        channel = params["channel"]
        known(channel)
        return {"channel": channel, "accountId": params.get("accountId") or "default",
                "cleared": False, "loggedOut": False}

    def request_row(r: Any) -> dict[str, Any]:
        row = {"requestId": r.code, "channel": r.channel, "channelLabel": LABELS.get(
            r.channel, r.channel), "accountId": r.account_id, "senderId": r.sender_id,
            "senderLabel": r.sender_label, "createdAt": _iso(r.created_at),
            "lastSeenAt": _iso(r.last_seen_at), "expiresAt": _iso(r.expires_at),
            "notifySupported": False}
        if r.metadata:
            row["metadata"] = r.metadata
        return row

    def pairing_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        channel, account = params.get("channel"), params.get("accountId")
        accounts = [
            {"channel": c, "channelLabel": LABELS[c], "accountId": a, "notifySupported": False}
            for c, by_id in configured_accounts(gw.settings.raw).items()
            for a, cfg in by_id.items()
            if cfg.get("dmPolicy", "pairing") == "pairing"
            and (channel is None or c == channel) and (account is None or a == account)]
        commands = gw.settings.raw.get("commands")
        owners = commands.get("ownerAllowFrom") if isinstance(commands, Mapping) else None
        return {"accounts": accounts,
                "requests": [request_row(r) for r in pairing.pending(channel, account)],
                "commandOwnerConfigured": bool(owners),
                "limits": {"pendingPerAccount": PENDING_PER_ACCOUNT, "ttlMs": TTL_MS}}

    def pairing_approve(ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            d = pairing.approve(params["channel"], params["requestId"], params["accountId"])
        except PairingError as e:
            raise invalid_request(str(e)) from None
        notify = "unsupported" if params.get("notify") else "not-requested"
        boot = "unavailable" if params.get("bootstrapCommandOwner") else "not-requested"
        return d.addCallback(lambda r: {"requestId": r.code, "senderId": r.sender_id,
                                        "notification": notify,
                                        "commandOwnerBootstrap": boot})

    def pairing_dismiss(ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            d = pairing.dismiss(params["channel"], params["requestId"], params["accountId"])
        except PairingError as e:
            raise invalid_request(str(e)) from None
        return d.addCallback(lambda r: {"requestId": r.code, "senderId": r.sender_id})

    def send(ctx: CallContext, params: dict[str, Any]) -> Any:
        channel = params.get("channel") or None
        accounts = configured_accounts(gw.settings.raw)
        if channel is None:
            if not accounts:
                raise invalid_request(NO_CHANNELS)
            if len(accounts) > 1:
                raise invalid_request(
                    "Error: Channel is required when multiple channels are configured: "
                    + ", ".join(accounts))
            channel = next(iter(accounts))
        elif channel not in accounts:
            raise invalid_request(f"Error: Unknown channel: {channel}")
        raise GatewayError(UNAVAILABLE, f"{channel}: {NOT_AVAILABLE}")

    table.add("channels.status", status, STATUS)
    table.add("channels.start", start, CHANNEL)
    table.add("channels.stop", stop, CHANNEL)
    table.add("channels.logout", logout, CHANNEL)
    table.add("channels.pairing.list", pairing_list, PAIR_LIST)
    table.add("channels.pairing.approve", pairing_approve, PAIR_APPROVE)
    table.add("channels.pairing.dismiss", pairing_dismiss, PAIR_DISMISS)
    table.add("send", send, SEND)
