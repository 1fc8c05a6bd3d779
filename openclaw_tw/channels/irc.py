"""IRC provider (twisted.words ``IRCClient``): DMs and channels, mention gating, NickServ,
reconnect with backoff (``AccountService``), flood control on the injected clock, and message
splitting to the 512-byte line limit (``IRCClient.msg`` with the safe maximum length).

Config keys as the real gateway's ``channels.irc``: ``host``, ``port`` (6697 with TLS, 6667
plain), ``tls`` (default ``true``; the server's certificate is verified against the system trust
store, which ``SSL_CERT_FILE`` can point elsewhere), ``nick``, ``username``, ``realname``, ``password`` (server password),
``nickserv.password``, ``channels`` (joined on sign-on), plus the shared access keys.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure
from twisted.words.protocols import irc

from openclaw_tw.channels.manager import AccountService, ChannelContext
from openclaw_tw.channels.message import Inbound

if TYPE_CHECKING:
    pass

SIGN_ON_TIMEOUT_S = 30.0
BURST = 5  # lines sent at once before flood control paces the rest
LINE_INTERVAL_S = 0.5


class _Bot(irc.IRCClient):
    account: IrcAccount

    def __init__(self, account: IrcAccount) -> None:
        self.account = account
        cfg = account.config
        self.nickname = str(cfg.get("nick") or "openclaw")
        self.username = str(cfg.get("username") or self.nickname)
        self.realname = str(cfg.get("realname") or "OpenClaw")
        self.password = cfg.get("password") or None
        self._lines: deque[bytes | str] = deque()
        self._budget = BURST
        self._pacer: IDelayedCall | None = None

    # -- flood control (IRCClient's own lineRate uses the global reactor) ------------------------

    def sendLine(self, line: Any) -> None:
        self._lines.append(line)
        self._pump()

    def _pump(self) -> None:
        while self._lines and self._budget > 0:
            self._budget -= 1
            self._reallySendLine(self._lines.popleft())
        if self._pacer is None and (self._lines or self._budget < BURST):
            self._pacer = self.account.clock.callLater(LINE_INTERVAL_S, self._refill)

    def _refill(self) -> None:
        self._pacer = None
        self._budget = min(BURST, self._budget + 1)
        self._pump()

    # -- events ---------------------------------------------------------------------------------

    def signedOn(self) -> None:
        nickserv = self.account.config.get("nickserv")
        if isinstance(nickserv, Mapping) and nickserv.get("password"):
            self.msg("NickServ", f"IDENTIFY {nickserv['password']}")
        for channel in self.account.config.get("channels") or []:
            self.join(str(channel))
        self.account.signed_on(self)

    def privmsg(self, user: str, channel: str, message: str) -> None:
        nick = user.split("!", 1)[0]
        if nick.lower() in ("nickserv", "chanserv"):
            return
        if channel.lower() == self.nickname.lower():
            msg = Inbound("irc", self.account.account_id, "dm", nick, nick, message,
                          sender_label=user, ts=self.account.gw.now_ms())
        else:
            mentioned = self.nickname.lower() in message.lower()
            text = message
            for sep in (":", ","):
                prefix = self.nickname.lower() + sep
                if text.lower().startswith(prefix):
                    text = text[len(prefix):].strip()
            msg = Inbound("irc", self.account.account_id, "group", channel, nick, text,
                          sender_label=user, mentioned=mentioned, ts=self.account.gw.now_ms())
        self.account.inbound(msg)

    def irc_ERR_NICKNAMEINUSE(self, prefix: str, params: list[str]) -> None:
        self.setNick(self.nickname + "_")

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:  # type: ignore[assignment]
        if self._pacer is not None and self._pacer.active():
            self._pacer.cancel()
        self._pacer = None
        super().connectionLost(reason)
        self.account.connection_lost(self, reason)


class _Factory(protocol.Factory):
    def __init__(self, account: IrcAccount) -> None:
        self.account = account

    def buildProtocol(self, addr: Any) -> _Bot:
        bot = _Bot(self.account)
        bot.factory = self
        return bot


class IrcAccount(AccountService):
    channel = "irc"

    def __init__(self, account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> None:
        super().__init__(account_id, config, ctx)
        self.bot: _Bot | None = None
        self._signing_on: Deferred[Any] | None = None
        self._closing: Deferred[Any] | None = None

    def connect(self) -> Deferred[Any]:
        cfg = self.config
        host = str(cfg.get("host") or "")
        if not host:
            return fail(ValueError("channels.irc.host is not set"))
        tls = cfg.get("tls") is not False  # TLS unless plaintext is asked for, as the real one
        port = int(cfg.get("port") or (6697 if tls else 6667))
        endpoint: Any = HostnameEndpoint(self.gw.reactor, host, port, timeout=SIGN_ON_TIMEOUT_S)
        if tls:
            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        self._signing_on = d = Deferred()
        timer = self.clock.callLater(SIGN_ON_TIMEOUT_S, self._sign_on_failed, "sign-on timed out")

        def connected(bot: _Bot) -> Deferred[Any]:
            self.bot = bot
            return d

        def done(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        return endpoint.connect(_Factory(self)).addCallback(connected).addBoth(done)

    def _sign_on_failed(self, reason: str) -> None:
        d, self._signing_on = self._signing_on, None
        if d is not None:
            if self.bot is not None and self.bot.transport is not None:
                self.bot.transport.abortConnection()
            d.errback(ConnectionError(reason))

    def signed_on(self, bot: _Bot) -> None:
        d, self._signing_on = self._signing_on, None
        if d is not None:
            d.callback(None)

    def connection_lost(self, bot: _Bot, reason: Failure) -> None:
        if bot is not self.bot:
            return
        self.bot = None
        closing, self._closing = self._closing, None
        if closing is not None:
            closing.callback(None)
            return
        why = reason.getErrorMessage() or "connection lost"
        if self._signing_on is not None:
            self._sign_on_failed(f"connection closed before sign-on: {why}")
        elif self.running:
            self.lost(why)

    def disconnect(self) -> Deferred[Any]:
        bot = self.bot
        if bot is None or bot.transport is None:
            return succeed(None)
        self._closing = ended = Deferred()
        bot.quit("OpenClaw gateway stopping")
        bot.transport.loseConnection()
        return ended

    def backlog(self) -> None:
        if self.bot is not None and self.bot.transport is not None:
            self.bot.transport.pauseProducing()  # TCP backpressure onto the IRC server

    def drained(self) -> None:
        if self.bot is not None and self.bot.transport is not None:
            self.bot.transport.resumeProducing()

    def deliver(self, to: str, text: str, reply_to: str | None = None,
                thread_id: str | None = None) -> Deferred[Any]:
        bot = self.bot
        if bot is None or not self.connected:
            return fail(ConnectionError(f"irc:{self.account_id} is not connected"))
        bot.msg(to, text)
        self.sent()
        return succeed(None)
