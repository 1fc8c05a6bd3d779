"""Inbound routing: access policy → DM pairing or an agent turn → the reply, same way back.

Each provider account hands every accepted message to ``ChannelRouter.handle``.  Unknown DM
senders under ``dmPolicy: pairing`` get the pairing code once (when the request is created);
admitted messages run as agent turns in their session (the runtime queues turns per session),
and the final text is delivered to the originating peer/group/thread.  Faults stay here: a
failed turn or delivery is logged and counted on the account, never raised to the provider.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from openclaw_tw.channels import bindings, policy
from openclaw_tw.channels.message import Inbound, session_key

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import AgentRuntime
    from openclaw_tw.channels.pairing import DmPairing
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.sessions.store import SessionStore

_log = Logger(namespace="openclaw.channels")


class Deliverer(Protocol):
    config: dict[str, Any]

    def deliver(self, to: str, text: str, reply_to: str | None = None,
                thread_id: str | None = None) -> Deferred[Any]: ...

    def typing(self, msg: Inbound) -> Callable[[], None]: ...

    def access_config(self) -> dict[str, Any]: ...


def pairing_text(channel: str, sender: str, code: str) -> str:
    return (f"OpenClaw: access not configured. Your {channel} id: {sender}. "
            f"Pairing code: {code}. Ask the bot owner to approve with: "
            f"openclaw pairing approve {channel} {code}")


class ChannelRouter:
    def __init__(self, gw: Gateway, runtime: AgentRuntime, sessions: SessionStore,
                 dm_pairing: DmPairing) -> None:
        self.gw = gw
        self.runtime = runtime
        self.sessions = sessions
        self.dm_pairing = dm_pairing

    def decide(self, account: Deliverer, msg: Inbound) -> policy.Decision:
        cfg = account.access_config()
        if msg.chat_type == "dm":
            approved = self.dm_pairing.is_allowed(msg.channel, msg.account_id, msg.sender_id)
            return policy.dm_decision(cfg, msg.channel, msg.sender_id, approved)
        return policy.group_decision(cfg, msg.channel, msg.peer_id, msg.sender_id,
                                     msg.mentioned)

    def handle(self, account: Deliverer, msg: Inbound) -> Deferred[Any]:
        decision = self.decide(account, msg)
        if decision == "drop":
            _log.debug("dropped {channel} message from {sender} ({chat})",
                       channel=msg.channel, sender=msg.sender_id, chat=msg.chat_type)
            return succeed(None)
        if decision == "pair":
            return self._pair(account, msg)
        return Deferred.fromCoroutine(self._turn(account, msg))

    def _pair(self, account: Deliverer, msg: Inbound) -> Deferred[Any]:
        d = self.dm_pairing.request(msg.channel, msg.account_id, msg.sender_id,
                                       msg.sender_label)

        def answer(result: Any) -> Any:
            req, created = result
            if req is None or not created:
                return None
            _log.info("pairing requested on {channel} by {sender}", channel=msg.channel,
                      sender=msg.sender_id)
            return account.deliver(msg.reply_target,
                                   pairing_text(msg.channel, msg.sender_id, req.code))

        return d.addCallback(answer)

    async def _turn(self, account: Deliverer, msg: Inbound) -> None:
        gw = self.gw
        if gw.shutting_down or not self.runtime.running:
            return
        # diagnostics.stability's delivery events, named as the real gateway names them
        # (``openclaw status --all`` counts them as "Inbound delivery telemetry").
        record, clock, channel = gw.diagnostics.record, gw.clock, msg.channel
        started = clock.seconds()

        def elapsed_ms(since: float) -> int:
            return int(round((clock.seconds() - since) * 1000))

        record("message.received", channel=channel, source="dispatchInboundMessage")
        record("message.dispatch.started", channel=channel, source="replyResolver")
        agent_id, overrides = bindings.resolve(gw.settings.raw, msg)
        key = session_key(msg, gw.settings.raw, agent_id, overrides)
        row = await self.sessions.ensure(key, msg.channel)
        stop_typing = account.typing(msg)
        try:
            try:
                run = await self.runtime.accept(row, msg.text, str(uuid.uuid4()), "agent",
                                                None)
                record("session.turn.created", source=agent_id, channel=channel,
                       outcome="user")
                outcome = await run.finished()
            except Exception as e:
                for kind in ("message.dispatch.completed", "message.processed"):
                    record(kind, channel=channel, durationMs=elapsed_ms(started),
                           outcome="error", reason=type(e).__name__,
                           source="replyResolver" if kind == "message.dispatch.completed"
                           else None)
                raise
        finally:
            stop_typing()
        turn_outcome = "completed" if outcome.status == "ok" else "error"
        record("message.dispatch.completed", channel=channel, source="replyResolver",
               durationMs=elapsed_ms(started), outcome=turn_outcome,
               reason=None if outcome.status == "ok" else outcome.status)
        text = outcome.text if outcome.status == "ok" else ""
        if not text.strip():
            _log.info("{channel} turn ended {status} without text", channel=msg.channel,
                      status=outcome.status)
            record("message.processed", channel=channel, durationMs=elapsed_ms(started),
                   outcome=turn_outcome,
                   reason=None if outcome.status == "ok" else outcome.status)
            return
        delivery_started = clock.seconds()
        record("message.delivery.started", channel=channel, deliveryKind="text")
        try:
            await account.deliver(msg.reply_target, text, msg.message_id, msg.thread_id)
        except Exception as e:
            record("message.delivery.error", channel=channel, deliveryKind="text",
                   durationMs=elapsed_ms(delivery_started), outcome="error",
                   reason=type(e).__name__)
            record("message.processed", channel=channel, durationMs=elapsed_ms(started),
                   outcome="error", reason="delivery_failed")
            raise
        record("message.delivery.completed", channel=channel, deliveryKind="text",
               durationMs=elapsed_ms(delivery_started), resultCount=1, outcome="completed")
        record("message.processed", channel=channel, durationMs=elapsed_ms(started),
               outcome="completed")
