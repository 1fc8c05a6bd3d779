"""Telegram provider: the Bot API over treq.

``getMe`` validates the token on connect; then a long-poll ``getUpdates`` loop (offset kept in
``channels.cursors`` so a restart neither replays nor skips), private chats as DMs, groups with
mention gating (``@botname`` or a reply to the bot), forum topics as threads.  ``sendMessage``
chunks to Telegram's 4096-character limit, replies to the originating message and topic, and
honours ``429 retry_after``.  401 (bad token) and 409 (another poller) become ``lastError`` and
a backoff reconnect — never a crash loop.  ``apiRoot`` points at a self-hosted Bot API server.
The token is never logged (it is part of every URL, so URLs are never logged either).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from openclaw_tw import _json
from openclaw_tw.channels.ingress import BACKLOG
from openclaw_tw.channels.message import Inbound, split_text
from openclaw_tw.channels.polling import PollingAccount

if TYPE_CHECKING:
    from openclaw_tw.channels.manager import ChannelContext

_log = Logger(namespace="openclaw.channels.telegram")

API_ROOT = "https://api.telegram.org"
TEXT_LIMIT = 4096
POLL_TIMEOUT_S = 25
SEND_ATTEMPTS = 3
TYPING_EVERY_S = 4.0


class TelegramApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after


def chunks(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    return split_text(text, limit)


class TelegramAccount(PollingAccount):
    channel = "telegram"

    def __init__(self, account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> None:
        super().__init__(account_id, config, ctx)
        self.api_root = str(config.get("apiRoot") or API_ROOT).rstrip("/")
        self.poll_timeout = int(config.get("pollTimeoutSeconds", POLL_TIMEOUT_S))
        cursor = self.cursors.get("telegram", account_id)
        self.offset: int | None = int(cursor) if cursor else None
        self.username: str | None = None
        self._token: str | None = None

    # -- HTTP ------------------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any], timeout: float) -> Deferred[Any]:
        return self.track(Deferred.fromCoroutine(self.api(method, params, timeout)))

    async def api(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        url = f"{self.api_root}/bot{self._token}/{method}"
        response = await self.http().post(
            url, data=_json.dumps(params), headers={"Content-Type": "application/json"},
            timeout=timeout)
        body = await response.content()
        try:
            data = _json.loads(body)
        except Exception:
            raise TelegramApiError(response.code, "response is not JSON") from None
        if not isinstance(data, dict) or not data.get("ok"):
            data = data if isinstance(data, dict) else {}
            params_ = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
            raise TelegramApiError(int(data.get("error_code") or response.code),
                                   str(data.get("description") or "request failed"),
                                   params_.get("retry_after"))
        return data.get("result")

    # -- lifecycle -------------------------------------------------------------------------------

    def _read_token(self) -> str:
        if self.config.get("botToken"):
            return str(self.config["botToken"]).strip()
        path = self.config.get("tokenFile")
        if not path:
            raise ValueError("channels.telegram.botToken (or tokenFile) is not set")
        with open(str(path), encoding="utf-8") as f:
            return f.read().strip()

    def connect(self) -> Deferred[Any]:
        return Deferred.fromCoroutine(self._connect())

    async def _connect(self) -> None:
        self._token = await self.gw.run_blocking(self._read_token)
        if not self._token:
            raise ValueError("the Telegram bot token is empty")
        try:
            me = await self.call("getMe", {}, 15)
        except TelegramApiError as e:
            if e.status == 401:
                raise ConnectionError("unauthorized: check botToken") from None
            raise ConnectionError(f"getMe failed: {e}") from None
        self.username = (me or {}).get("username")
        self.poll_later(0)

    def probe(self) -> Deferred[dict[str, Any]]:
        if not self._token:
            return super().probe()

        def ok(me: Any) -> dict[str, Any]:
            me = me if isinstance(me, dict) else {}
            return {"ok": True, "bot": {"id": me.get("id"), "username": me.get("username")}}

        return self.call("getMe", {}, 15).addCallback(ok)

    # -- polling ---------------------------------------------------------------------------------

    def poll(self) -> Deferred[Any]:
        # never fetch more than the backlog has room for: the rest waits on Telegram's side
        params: dict[str, Any] = {"timeout": self.poll_timeout, "allowed_updates": ["message"],
                                  "limit": max(1, min(100, BACKLOG - self.in_flight))}
        if self.offset is not None:
            params["offset"] = self.offset
        d = self.call("getUpdates", params, self.poll_timeout + 10)
        return d.addCallback(self._updates)

    def _updates(self, updates: Any) -> Deferred[Any] | None:
        """Queue the batch, then advance the offset past it (``queue_batch``): an update is
        confirmed to Telegram only once it cannot be lost."""
        if not self.running:
            return None
        last = None
        msgs = []
        for update in updates or []:
            if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                continue
            last = update["update_id"]
            msg = self._inbound(update.get("message"))
            if msg is not None:
                msgs.append(msg)
        if last is None:
            return None
        offset = last + 1

        def advanced(_: Any) -> None:
            self.offset = offset

        return self.queue_batch(msgs, str(offset)).addCallback(advanced)

    def poll_failed(self, failure: Failure) -> None:
        err = failure.value
        if isinstance(err, TelegramApiError):
            if err.status == 429:
                delay = float(err.retry_after if err.retry_after is not None else 1)
                self.last_error = f"rate limited; retrying in {delay:g}s"
                self.poll_later(delay)
                return
            if err.status == 401:
                self.lost("unauthorized: check botToken")
                return
            if err.status == 409:
                self.lost("conflict: another getUpdates consumer or a webhook is set")
                return
            self.lost(f"getUpdates failed: {err}")
            return
        self.lost(f"getUpdates failed: {failure.getErrorMessage() or failure.type.__name__}")

    def _inbound(self, m: Any) -> Inbound | None:
        if not isinstance(m, dict) or not isinstance(m.get("chat"), dict):
            return None
        text = m.get("text") or m.get("caption")
        sender = m.get("from") if isinstance(m.get("from"), dict) else {}
        if not isinstance(text, str) or not text.strip() or sender.get("is_bot"):
            return None
        sender_id = str(sender.get("id", ""))
        label = f"@{sender['username']}" if sender.get("username") else str(
            sender.get("first_name") or sender_id)
        message_id = str(m.get("message_id")) if m.get("message_id") is not None else None
        ts = int(m.get("date") or 0) * 1000
        chat = m["chat"]
        if chat.get("type") == "private":
            return Inbound("telegram", self.account_id, "dm", sender_id, sender_id, text,
                           sender_label=label, ts=ts, message_id=message_id)
        mention = f"@{self.username}".lower() if self.username else None
        replied = m.get("reply_to_message") if isinstance(m.get("reply_to_message"), dict) else {}
        replied_from = replied.get("from") if isinstance(replied.get("from"), dict) else {}
        mentioned = bool(mention and mention in text.lower()) or bool(
            self.username and replied_from.get("username") == self.username)
        if mention:
            at = text.lower().find(mention)
            if at >= 0:
                text = (text[:at] + text[at + len(mention):]).strip() or text
        thread = m.get("message_thread_id") if m.get("is_topic_message") else None
        return Inbound("telegram", self.account_id, "group", str(chat.get("id")), sender_id,
                       text, sender_label=label, mentioned=mentioned, ts=ts,
                       message_id=message_id, thread_id=str(thread) if thread else None)

    # -- sending ---------------------------------------------------------------------------------

    def typing(self, msg: Inbound) -> Callable[[], None]:
        """``sendChatAction typing`` now and every 4 s (Telegram shows it for 5 s)."""
        params: dict[str, Any] = {"chat_id": msg.reply_target, "action": "typing"}
        if msg.thread_id and msg.thread_id.isdigit():
            params["message_thread_id"] = int(msg.thread_id)
        return self.keep_typing(lambda: self.call("sendChatAction", params, 10), TYPING_EVERY_S)

    async def send_text(self, to: str, text: str, reply_to: str | None,
                        thread_id: str | None) -> list[Any]:
        sent = []
        for i, part in enumerate(chunks(text)):
            params: dict[str, Any] = {"chat_id": to, "text": part}
            if i == 0 and reply_to and reply_to.isdigit():
                params["reply_to_message_id"] = int(reply_to)
                params["allow_sending_without_reply"] = True
            if thread_id and thread_id.isdigit():
                params["message_thread_id"] = int(thread_id)
            sent.append(await self._send(params))
            self.sent()
        return sent

    async def _send(self, params: dict[str, Any]) -> Any:
        for attempt in range(SEND_ATTEMPTS):
            try:
                return await self.call("sendMessage", params, 30)
            except TelegramApiError as e:
                if e.status != 429 or attempt == SEND_ATTEMPTS - 1:
                    raise
                wait: Deferred[None] = Deferred()
                delay = float(e.retry_after if e.retry_after is not None else 1)
                self.clock.callLater(delay, wait.callback, None)
                await wait
        raise AssertionError("unreachable")
