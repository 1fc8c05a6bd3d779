"""channels.*: status, start/stop/logout, DM pairing, and ``send`` (§6.1).

Status comes from the supervised account services (``channels.manager``).  A configured channel
whose provider this build does not ship (Matrix so far) is listed as configured
but not running, with a ``runtime`` status issue, and ``send``/``channels.start`` refuse it with
``UNAVAILABLE`` instead of pretending to deliver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.defer import TimeoutError as DeadlinePassed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from openclaw_tw.channels.accounts import (
    DETAIL_LABELS,
    LABELS,
    Accounts,
    configured_accounts,
    has_credentials,
)
from openclaw_tw.channels.manager import ChannelManager, idle_status
from openclaw_tw.channels.pairing import (
    PENDING_PER_ACCOUNT,
    TTL_MS,
    DmPairing,
    PairingError,
    PairingRequest,
)
from openclaw_tw.channels.providers import PROVIDERS
from openclaw_tw.errors import UNAVAILABLE, GatewayError, clip, invalid_request
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Bool, Int, Obj, Str, closed
from openclaw_tw.timefmt import iso_ms

if TYPE_CHECKING:
    from openclaw_tw.agent.dedupe import DedupeCache
    from openclaw_tw.config.settings import GatewaySettings

_S1 = Str(min_len=1)
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


PROBE_TIMEOUT_MS = 10_000


@attrs.define
class ChannelsMethods:
    """channels.status/start/stop/logout, channels.pairing.*, and ``send`` (§6.1).

    ``manager`` is the gateway's channel manager."""

    settings: Callable[[], GatewaySettings]
    manager: ChannelManager | None
    pairing: DmPairing
    dedupe: DedupeCache
    now_ms: Callable[[], int]
    clock: IReactorTime
    event_loop: Callable[[], dict[str, Any]]

    # -- status ------------------------------------------------------------------------------

    @rpc("channels.status", STATUS)
    def status(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        result = self.build_status(params.get("channel"))
        if not params.get("probe"):
            return result
        return self.probe_all(result, int(params.get("timeoutMs") or PROBE_TIMEOUT_MS))

    def build_status(self, only: str | None = None) -> dict[str, Any]:
        accounts = configured_accounts(self.settings().raw)
        if only is not None:
            accounts = {k: v for k, v in accounts.items() if k == only}
        order = list(accounts)
        channel_accounts: dict[str, list[dict[str, Any]]] = {}
        issues: list[dict[str, Any]] = []
        manager = self.manager
        for channel, by_id in accounts.items():
            rows = []
            for account_id, cfg in by_id.items():
                svc = manager.account(channel, account_id) if manager else None
                row = svc.status() if svc is not None else idle_status(account_id, cfg)
                if channel not in PROVIDERS:
                    row["lastError"] = NOT_AVAILABLE
                row["configured"] = has_credentials(channel, cfg)
                rows.append(row)
                if row["lastError"] and not row["connected"]:
                    issues.append({"channel": channel, "accountId": account_id,
                                   "kind": "runtime",
                                   "message": f"{LABELS[channel]}: {row['lastError']}"})
            channel_accounts[channel] = rows
        return {
            "ts": self.now_ms(),
            "channelOrder": order,
            "channelLabels": {c: LABELS[c] for c in order},
            "channelDetailLabels": {c: DETAIL_LABELS[c] for c in order},
            "channelSystemImages": {},
            "channelMeta": [{"id": c, "label": LABELS[c], "detailLabel": DETAIL_LABELS[c]}
                            for c in order],
            "eventLoop": self.event_loop(),
            "channels": {c: {"configured": any(r["configured"] for r in channel_accounts[c]),
                             "running": any(r["running"] for r in channel_accounts[c])}
                         for c in order},
            "channelAccounts": channel_accounts,
            "channelDefaultAccountId": {c: next(iter(accounts[c])) for c in order},
            "statusIssues": issues,
        }

    def probe_all(self, result: dict[str, Any], timeout_ms: int) -> Deferred[Any]:
        """``probe: true``: a live check per account (Telegram ``getMe``, Matrix ``whoami``,
        IRC the signed-on connection), each bounded by ``timeoutMs``; a stalled or failed
        probe is reported on its row and the others still answer."""
        checks = []
        manager = self.manager
        for channel, rows in result["channelAccounts"].items():
            for row in rows:
                svc = manager.account(channel, row["accountId"]) if manager else None
                if svc is None:
                    row["probe"] = {"ok": False, "error": row["lastError"] or "not running"}
                    row["lastProbeAt"] = self.now_ms()
                    continue
                d = maybeDeferred(svc.probe).addTimeout(timeout_ms / 1000, self.clock)
                checks.append(d.addErrback(_probe_failed, timeout_ms).addCallback(
                    self._record_probe, result, row, channel))
        return gatherResults(checks).addCallback(_replace_with, result)

    def _record_probe(self, probe: dict[str, Any], result: dict[str, Any],
                      row: dict[str, Any], channel: str) -> None:
        row["probe"] = probe
        row["lastProbeAt"] = self.now_ms()
        if not probe.get("ok"):
            result["statusIssues"].append({
                "channel": channel, "accountId": row["accountId"], "kind": "runtime",
                "message": f"{LABELS[channel]}: probe failed: {probe.get('error')}"})

    # -- accounts ----------------------------------------------------------------------------

    def _account_of(self, channel: str, account_id: str | None,
                    accounts: Accounts | None = None
                    ) -> tuple[ChannelManager, str, str, dict[str, Any]]:
        """The named (or first) account of a configured channel whose provider exists."""
        if accounts is None:
            accounts = configured_accounts(self.settings().raw)
        if channel not in accounts:
            raise invalid_request(f"unknown channel: {channel}")
        by_id = accounts[channel]
        account_id = account_id or next(iter(by_id))
        if account_id not in by_id:
            raise invalid_request(f"unknown account: {clip(channel)}:{clip(account_id)}")
        manager = self.manager
        if channel not in PROVIDERS or manager is None:
            raise GatewayError(UNAVAILABLE, f"{channel}: {NOT_AVAILABLE}")
        return manager, channel, account_id, by_id[account_id]

    @rpc("channels.start", CHANNEL)
    def start(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        manager, channel, account_id, cfg = self._account_of(params["channel"],
                                                             params.get("accountId"))
        manager.start_account(channel, account_id, cfg)
        return {"channel": channel, "accountId": account_id, "started": True}

    @rpc("channels.stop", CHANNEL)
    def stop(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        manager, channel, account_id, _ = self._account_of(params["channel"],
                                                           params.get("accountId"))
        return manager.stop_account(channel, account_id).addCallback(
            _stopped, channel, account_id)

    @rpc("channels.logout", CHANNEL)
    def logout(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        manager, channel, account_id, _ = self._account_of(params["channel"],
                                                           params.get("accountId"))
        # Matrix forgets (and invalidates) a token its password login minted; IRC and
        # Telegram keep no credentials beyond the config, so for them logout = stop.
        svc = manager.account(channel, account_id)
        d = svc.logout() if svc is not None else succeed(None)
        return d.addCallback(self._stop_after_logout, channel, account_id).addCallback(
            _logged_out, channel, account_id)

    def _stop_after_logout(self, _: Any, channel: str, account_id: str) -> Deferred[Any]:
        manager = self.manager
        assert manager is not None
        return manager.stop_account(channel, account_id)

    # -- DM pairing --------------------------------------------------------------------------

    @rpc("channels.pairing.list", PAIR_LIST)
    def pairing_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        channel, account = params.get("channel"), params.get("accountId")
        raw = self.settings().raw
        accounts = [
            {"channel": c, "channelLabel": LABELS[c], "accountId": a, "notifySupported": False}
            for c, by_id in configured_accounts(raw).items()
            for a, cfg in by_id.items()
            if cfg.get("dmPolicy", "pairing") == "pairing"
            and (channel is None or c == channel) and (account is None or a == account)]
        commands = raw.get("commands")
        owners = commands.get("ownerAllowFrom") if isinstance(commands, Mapping) else None
        return {"accounts": accounts,
                "requests": [request_row(r) for r in self.pairing.pending(channel, account)],
                "commandOwnerConfigured": bool(owners),
                "limits": {"pendingPerAccount": PENDING_PER_ACCOUNT, "ttlMs": TTL_MS}}

    @rpc("channels.pairing.approve", PAIR_APPROVE)
    def pairing_approve(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            d = self.pairing.approve(params["channel"], params["requestId"],
                                     params["accountId"])
        except PairingError as e:
            raise invalid_request(str(e)) from None
        notify = "unsupported" if params.get("notify") else "not-requested"
        boot = "unavailable" if params.get("bootstrapCommandOwner") else "not-requested"
        return d.addCallback(_approved, notify, boot)

    @rpc("channels.pairing.dismiss", PAIR_DISMISS)
    def pairing_dismiss(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            d = self.pairing.dismiss(params["channel"], params["requestId"],
                                     params["accountId"])
        except PairingError as e:
            raise invalid_request(str(e)) from None
        return d.addCallback(_dismissed)

    # -- send --------------------------------------------------------------------------------

    @rpc("send", SEND)
    def send(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        key = params["idempotencyKey"]
        dedupe_key = f"send:{key}"
        seen = self.dedupe.get(dedupe_key)
        if seen is not None and not seen.active and seen.ok:
            return seen.payload
        channel = params.get("channel") or None
        accounts = configured_accounts(self.settings().raw)
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
        manager, channel, account_id, _ = self._account_of(channel, params.get("accountId"),
                                                           accounts)
        svc = manager.account(channel, account_id)
        if svc is None or not svc.connected:
            raise GatewayError(UNAVAILABLE, f"{channel}:{account_id} is not connected",
                               retryable=True)
        text = params.get("message") or ""
        if not text.strip():
            raise invalid_request("Error: message is required for " + channel)
        receipt = {"runId": key, "messageId": key, "channel": channel,
                   "accountId": account_id, "to": params["to"]}
        return svc.deliver(params["to"], text, params.get("replyToId"),
                           params.get("threadId")).addCallbacks(
            self._delivered, _send_failed, callbackArgs=(dedupe_key, receipt),
            errbackArgs=(channel,))

    def _delivered(self, _: Any, dedupe_key: str, receipt: dict[str, Any]) -> dict[str, Any]:
        self.dedupe.settle(dedupe_key, True, receipt)
        return receipt


def request_row(r: PairingRequest) -> dict[str, Any]:
    """One pending DM pairing request as ``channels.pairing.list`` shows it."""
    row = {"requestId": r.code, "channel": r.channel, "channelLabel": LABELS.get(
        r.channel, r.channel), "accountId": r.account_id, "senderId": r.sender_id,
        "senderLabel": r.sender_label, "createdAt": iso_ms(r.created_at),
        "lastSeenAt": iso_ms(r.last_seen_at), "expiresAt": iso_ms(r.expires_at),
        "notifySupported": False}
    if r.metadata:
        row["metadata"] = r.metadata
    return row


def _probe_failed(f: Failure, timeout_ms: int) -> dict[str, Any]:
    if f.check(DeadlinePassed):
        return {"ok": False, "error": f"probe timed out after {timeout_ms}ms"}
    return {"ok": False, "error": f.getErrorMessage() or f.type.__name__}


def _replace_with(_: Any, value: Any) -> Any:
    return value


def _stopped(was_running: Any, channel: str, account_id: str) -> dict[str, Any]:
    return {"channel": channel, "accountId": account_id, "stopped": bool(was_running)}


def _logged_out(_: Any, channel: str, account_id: str) -> dict[str, Any]:
    return {"channel": channel, "accountId": account_id, "cleared": True, "loggedOut": True}


def _approved(r: PairingRequest, notify: str, boot: str) -> dict[str, Any]:
    return {"requestId": r.code, "senderId": r.sender_id, "notification": notify,
            "commandOwnerBootstrap": boot}


def _dismissed(r: PairingRequest) -> dict[str, Any]:
    return {"requestId": r.code, "senderId": r.sender_id}


def _send_failed(f: Failure, channel: str) -> Any:
    raise GatewayError(UNAVAILABLE, f"{channel}: {f.getErrorMessage()}", retryable=True)
