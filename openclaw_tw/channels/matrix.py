"""Matrix provider: the client-server API (v3) over treq.

Auth by ``accessToken`` (checked with ``whoami``) or ``userId`` + ``password`` (``/login`` once;
the minted token is cached in nodes.sqlite and reused, and a revoked one triggers a fresh
login).  ``/sync`` long-polls with the ``since`` token kept in ``channels.cursors`` and advanced
only after the batch is durably queued.  The first sync of a new account only learns where "now"
is: history is not answered.  Invites are joined per ``autoJoin`` (``off`` default, ``always``,
``allowlist`` + ``autoJoinAllowlist``); a room is a DM when the invite said ``is_direct`` or the
bot's ``m.direct`` account data lists it (the bot records the DMs it joins there).  Messages
in a room just joined from an invite count from the invite on, so "create DM, say hello" is
answered.  Rooms in ``groups`` may be keyed by ``#alias`` (resolved on connect).  Replies go to
the originating room (``dm.sessionScope`` picks per-user or per-room sessions), in the thread
when ``threadReplies`` says so, chunked to ``textChunkLimit``, each with its own transaction id
so a retried send never posts twice.  A loopback/LAN homeserver needs
``network.dangerouslyAllowPrivateNetwork: true``, as in the real gateway.  Tokens are never
logged.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from openclaw_tw import _json
from openclaw_tw.channels.matrix_wire import (
    API,
    FILTER,
    MatrixApiError,
    is_private_host,
    strip_reply_fallback,
)
from openclaw_tw.channels.message import Inbound, split_text
from openclaw_tw.channels.polling import PollingAccount

if TYPE_CHECKING:
    from openclaw_tw.channels.manager import ChannelContext

_log = Logger(namespace="openclaw.channels.matrix")

SYNC_TIMEOUT_MS = 30_000
TEXT_LIMIT = 4000
TYPING_MS = 30_000
SEND_ATTEMPTS = 3
SEEN_MAX = 4096
GAP_MAX = 1000
CREDENTIALS = "matrix:credentials"  # the channel_cursors row of a password-minted token


class MatrixAccount(PollingAccount):
    channel = "matrix"

    def __init__(self, account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> None:
        super().__init__(account_id, config, ctx)
        self.homeserver = str(config.get("homeserver") or "").rstrip("/")
        self.user_id: str | None = None
        self.device_id: str | None = None
        self._token: str | None = None
        self.since = self.cursors.get("matrix", account_id)
        self.direct: dict[str, str] = {}  # DM room -> the other member
        self.m_direct: dict[str, list[str]] = {}
        self.joined_from_invite: set[str] = set()
        self.aliases: dict[str, str] = {}  # "#alias:server" -> room id
        self._access = self.config
        self.seen: OrderedDict[str, None] = OrderedDict()

    # -- HTTP ----------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None,
             query: Mapping[str, str] | None = None, timeout: float = 30,
             auth: bool = True) -> Deferred[Any]:
        return self.track(Deferred.fromCoroutine(
            self.api(method, path, body, query, timeout, auth)))

    async def api(self, method: str, path: str, body: Any = None,
                  query: Mapping[str, str] | None = None, timeout: float = 30,
                  auth: bool = True) -> Any:
        url = self.homeserver + path + ("?" + urlencode(query) if query else "")
        headers = {"Content-Type": ["application/json"]}
        if auth and self._token:
            headers["Authorization"] = [f"Bearer {self._token}"]
        data = _json.dumps(body) if body is not None else None
        response = await self.http().request(method, url, data=data, headers=headers,
                                             timeout=timeout)
        raw = await response.content()
        try:
            result = _json.loads(raw) if raw else {}
        except Exception:
            raise MatrixApiError(response.code, "M_NOT_JSON", "response is not JSON") from None
        if response.code >= 400:
            result = result if isinstance(result, dict) else {}
            retry = result.get("retry_after_ms")
            raise MatrixApiError(response.code, str(result.get("errcode") or "M_UNKNOWN"),
                                 str(result.get("error") or "request failed"),
                                 int(retry) if isinstance(retry, int) else None)
        return result

    # -- lifecycle -------------------------------------------------------------------------------

    def access_config(self) -> dict[str, Any]:
        """The config the access policy reads: ``groups`` keyed by room id (aliases resolved
        on connect)."""
        return self._access

    def connect(self) -> Deferred[Any]:
        return Deferred.fromCoroutine(self._connect())

    async def _connect(self) -> None:
        url = urlsplit(self.homeserver)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("channels.matrix.homeserver must be an http(s) URL")
        network = self.config.get("network")
        allowed = isinstance(network, Mapping) and \
            network.get("dangerouslyAllowPrivateNetwork") is True
        if is_private_host(url.hostname) and not allowed:
            raise ConnectionError(
                f"homeserver {url.hostname} is a private address; set channels.matrix.network."
                "dangerouslyAllowPrivateNetwork: true to allow it")
        who = await self._authenticate()
        self.user_id = str(who.get("user_id") or self.config.get("userId") or "")
        self.device_id = who.get("device_id")
        try:
            direct = await self.call("GET", self._direct_path())
        except MatrixApiError as e:
            if e.status != 404:
                raise
            direct = {}
        self._set_direct(direct)
        await self._resolve_aliases()
        self.poll_later(0)

    async def _authenticate(self) -> dict[str, Any]:
        configured = self.config.get("accessToken")
        cached = self._cached_token()
        for token in (configured, cached):
            if not token:
                continue
            self._token = str(token)
            try:
                return dict(await self.call("GET", f"{API}/account/whoami"))
            except MatrixApiError as e:
                if e.status != 401:
                    raise ConnectionError(f"whoami failed: {e}") from None
                if token is configured:
                    raise ConnectionError(
                        f"unauthorized: check accessToken ({e.errcode})") from None
                await self.cursors.forget(CREDENTIALS, self.account_id)
        return await self._login()

    def _cached_token(self) -> str | None:
        raw = self.cursors.get(CREDENTIALS, self.account_id)
        if not raw:
            return None
        cached = _json.loads(raw)
        if cached.get("homeserver") != self.homeserver or cached.get("userId") != \
                self.config.get("userId"):
            return None
        return str(cached.get("accessToken") or "") or None

    async def _login(self) -> dict[str, Any]:
        user, password = self.config.get("userId"), self.config.get("password")
        if not user or not password:
            raise ValueError("channels.matrix needs accessToken, or userId and password")
        body: dict[str, Any] = {
            "type": "m.login.password", "password": str(password),
            "identifier": {"type": "m.id.user", "user": str(user)},
            "initial_device_display_name": str(self.config.get("deviceName") or
                                               "OpenClaw Gateway")}
        if self.config.get("deviceId"):
            body["device_id"] = str(self.config["deviceId"])
        self._token = None
        try:
            result = await self.call("POST", f"{API}/login", body, auth=False)
        except MatrixApiError as e:
            raise ConnectionError(f"login failed: {e.errcode} {e}") from None
        self._token = str(result["access_token"])
        await self.cursors.save(CREDENTIALS, self.account_id, _json.dumps({
            "homeserver": self.homeserver, "userId": user, "accessToken": self._token,
            "deviceId": result.get("device_id")}).decode())
        return {"user_id": result.get("user_id"), "device_id": result.get("device_id")}

    def probe(self) -> Deferred[dict[str, Any]]:
        if not self._token:
            return super().probe()

        def ok(who: Any) -> dict[str, Any]:
            return {"ok": True, "homeserver": self.homeserver, "userId": who.get("user_id"),
                    "deviceId": who.get("device_id")}

        return self.call("GET", f"{API}/account/whoami").addCallback(ok)

    def logout(self) -> Deferred[Any]:
        """Invalidate a token this account minted (never a configured one) and forget it."""
        return Deferred.fromCoroutine(self._logout())

    async def _logout(self) -> None:
        if self._token and self._token != self.config.get("accessToken") and self.connected:
            try:
                await self.call("POST", f"{API}/logout", {})
            except Exception as e:  # the token is forgotten either way
                self.last_error = f"logout: {e}"
        await self.cursors.forget(CREDENTIALS, self.account_id)

    async def _resolve_aliases(self) -> None:
        names = list(self.config.get("groups") or {}) + list(
            self.config.get("autoJoinAllowlist") or [])
        for alias in {str(n) for n in names if str(n).startswith("#")}:
            try:
                found = await self.call("GET", f"{API}/directory/room/{quote(alias, safe='')}")
                self.aliases[alias] = str(found["room_id"])
            except Exception:
                continue  # unresolvable entries are ignored, as documented
        groups = self.config.get("groups")
        if isinstance(groups, Mapping) and self.aliases:
            self._access = {**self.config, "groups": {self.aliases.get(k, k): v
                                                      for k, v in groups.items()}}

    def _direct_path(self) -> str:
        return f"{API}/user/{quote(str(self.user_id), safe='')}/account_data/m.direct"

    async def _remember_direct(self, user: str, room: str) -> None:
        """Record a DM room in the bot's ``m.direct``, so it is a DM after a restart too."""
        self.direct[room] = user
        rooms = self.m_direct.setdefault(user, [])
        if room not in rooms:
            rooms.append(room)
            await self.call("PUT", self._direct_path(), self.m_direct)

    def _set_direct(self, content: Any) -> None:
        self.m_direct = {str(u): [str(r) for r in rooms] for u, rooms in
                         (content.items() if isinstance(content, dict) else [])
                         if isinstance(rooms, list)}
        for user, rooms in self.m_direct.items():
            for room in rooms:
                self.direct[room] = user

    # -- sync ------------------------------------------------------------------------------------

    def poll(self) -> Deferred[Any]:
        return self.track(Deferred.fromCoroutine(self._sync()))

    async def _sync(self) -> None:
        first = self.since is None
        query = {"filter": FILTER, "set_presence": "offline",
                 "timeout": "0" if first else str(SYNC_TIMEOUT_MS)}
        if self.since:
            query["since"] = self.since
        data = await self.api("GET", f"{API}/sync", query=query,
                              timeout=SYNC_TIMEOUT_MS / 1000 + 15)
        if not self.running:
            return
        for ev in (data.get("account_data") or {}).get("events") or []:
            if isinstance(ev, dict) and ev.get("type") == "m.direct":
                self._set_direct(ev.get("content"))
        rooms = data.get("rooms") or {}
        for room_id, room in (rooms.get("invite") or {}).items():
            await self._invited(str(room_id), room if isinstance(room, dict) else {})
        msgs: list[Inbound] = []
        for room_id, room in (rooms.get("join") or {}).items():
            timeline = (room if isinstance(room, dict) else {}).get("timeline") or {}
            events = [ev for ev in timeline.get("events") or [] if isinstance(ev, dict)]
            if timeline.get("limited") and timeline.get("prev_batch") and not first:
                events = await self._gap(str(room_id), str(timeline["prev_batch"])) + events
            msgs += self._timeline(str(room_id), events, first)
        for room_id in rooms.get("leave") or {}:
            self.direct.pop(str(room_id), None)
        next_batch = data.get("next_batch")
        if isinstance(next_batch, str) and next_batch:
            await self.queue_batch(msgs, next_batch)
            self.since = next_batch

    def poll_failed(self, failure: Failure) -> None:
        err = failure.value
        if isinstance(err, MatrixApiError):
            if err.status == 429:
                delay = (err.retry_after_ms or 1000) / 1000
                self.last_error = f"rate limited; retrying in {delay:g}s"
                self.poll_later(delay)
                return
            if err.status == 401:
                configured = bool(self.config.get("accessToken"))
                self.lost("unauthorized: check accessToken" if configured else
                          "access token no longer valid; logging in again")
                return
            self.lost(f"sync failed: {err}")
            return
        self.lost(f"sync failed: {failure.getErrorMessage() or failure.type.__name__}")

    async def _invited(self, room_id: str, room: dict[str, Any]) -> None:
        me = None
        for ev in (room.get("invite_state") or {}).get("events") or []:
            if isinstance(ev, dict) and ev.get("type") == "m.room.member" and \
                    ev.get("state_key") == self.user_id:
                me = ev
        if me is None or not self._may_join(room_id):
            return
        try:
            await self.call("POST", f"{API}/join/{quote(room_id, safe='')}", {})
        except MatrixApiError as e:
            self.last_error = f"joining {room_id}: {e}"
            return
        self.joined_from_invite.add(room_id)
        content = me.get("content") if isinstance(me.get("content"), dict) else {}
        inviter = str(me.get("sender") or "")
        if content.get("is_direct") is True and inviter:
            await self._remember_direct(inviter, room_id)

    def _may_join(self, room_id: str) -> bool:
        mode = self.config.get("autoJoin", "off")
        if mode == "always":
            return True
        if mode != "allowlist":
            return False
        allow = {self.aliases.get(str(a), str(a)) for a in
                 self.config.get("autoJoinAllowlist") or []}
        return "*" in allow or room_id in allow or room_id.split(":", 1)[0] in allow

    async def _gap(self, room_id: str, prev_batch: str) -> list[dict[str, Any]]:
        """A ``limited`` timeline skipped events since the last sync (a flood, or a long
        backlog): page back from ``prev_batch`` to that sync, at most ``GAP_MAX`` events."""
        older: list[dict[str, Any]] = []
        token = prev_batch
        while len(older) < GAP_MAX:
            page = await self.call(
                "GET", f"{API}/rooms/{quote(room_id, safe='')}/messages",
                query={"dir": "b", "from": token, "to": str(self.since), "limit": "100"})
            chunk = [ev for ev in page.get("chunk") or [] if isinstance(ev, dict)]
            older.extend(chunk)
            token = page.get("end")
            if not chunk or not isinstance(token, str):
                break
        if len(older) >= GAP_MAX:
            self.last_error = f"{room_id}: more than {GAP_MAX} missed events; older ones skipped"
        return list(reversed(older[:GAP_MAX]))

    def _timeline(self, room_id: str, events: list[dict[str, Any]],
                  first: bool) -> list[Inbound]:
        since_ts = None
        if room_id in self.joined_from_invite:
            # the first sight of a room joined from an invite: count from the invite on
            self.joined_from_invite.discard(room_id)
            since_ts = next((ev.get("origin_server_ts", 0) for ev in events
                             if ev.get("type") == "m.room.member" and
                             ev.get("state_key") == self.user_id), None)
        out = []
        for ev in events:
            if first and since_ts is None:
                continue
            if since_ts is not None and int(ev.get("origin_server_ts") or 0) < since_ts:
                continue
            try:
                msg = self._inbound(room_id, ev)
            except Exception:  # one malformed event must not stop the account
                _log.failure("{name}: skipped a malformed event in {room}", name=self.name,
                             room=room_id)
                continue
            if msg is not None:
                out.append(msg)
        return out

    def _inbound(self, room_id: str, ev: dict[str, Any]) -> Inbound | None:
        event_id = str(ev.get("event_id") or "")
        content = ev.get("content") if isinstance(ev.get("content"), dict) else {}
        body = content.get("body")
        if ev.get("type") != "m.room.message" or ev.get("sender") == self.user_id or \
                content.get("msgtype") not in ("m.text", "m.emote") or \
                not isinstance(body, str) or not body.strip() or event_id in self.seen:
            return None
        self.seen[event_id] = None
        while len(self.seen) > SEEN_MAX:
            self.seen.popitem(last=False)
        rel = content.get("m.relates_to") if isinstance(content.get("m.relates_to"), dict) \
            else {}
        if rel.get("rel_type") == "m.replace":
            return None  # an edit, not a new message
        in_reply = rel.get("m.in_reply_to") if isinstance(rel.get("m.in_reply_to"), dict) \
            else {}
        reply_to = in_reply.get("event_id")
        if reply_to:
            body = strip_reply_fallback(body)
        sender = str(ev.get("sender"))
        thread = str(rel["event_id"]) if rel.get("rel_type") == "m.thread" and \
            rel.get("event_id") else None
        common = {"sender_label": sender, "ts": int(ev.get("origin_server_ts") or 0),
                  "message_id": event_id or None, "conversation": room_id}
        dm = room_id in self.direct
        mode = self._thread_mode(dm)
        thread = None if mode == "off" else thread or (event_id if mode == "always" else None)
        if dm:
            scope = self._dm_config().get("sessionScope", "per-user")
            peer = room_id if scope == "per-room" else sender
            return Inbound("matrix", self.account_id, "dm", peer, sender, body,
                           thread_id=thread, **common)
        mentions = content.get("m.mentions") if isinstance(content.get("m.mentions"), dict) \
            else {}
        me = str(self.user_id)
        user_ids = mentions.get("user_ids")
        mentioned = (isinstance(user_ids, list) and me in user_ids) or me in body
        localpart = me[1:].split(":", 1)[0]
        text = body.replace(me, "").strip()
        for prefix in (f"{localpart}:", f"{localpart},", f"@{localpart}"):
            if text.lower().startswith(prefix.lower()):
                mentioned = True
                text = text[len(prefix):].strip()
        return Inbound("matrix", self.account_id, "group", room_id, sender, text or body,
                       mentioned=mentioned, reply_to=reply_to, thread_id=thread, **common)

    def _dm_config(self) -> Mapping[str, Any]:
        dm = self.config.get("dm")
        return dm if isinstance(dm, Mapping) else {}

    def _thread_mode(self, dm: bool) -> str:
        dm_cfg = self._dm_config()
        if dm and dm_cfg.get("threadReplies"):
            return str(dm_cfg["threadReplies"])
        return str(self.config.get("threadReplies", "inbound"))

    # -- sending ---------------------------------------------------------------------------------

    def typing(self, msg: Inbound) -> Callable[[], None]:
        path = f"{API}/rooms/{quote(msg.reply_target, safe='')}/typing/" \
            f"{quote(str(self.user_id), safe='')}"
        return self.keep_typing(
            lambda: self.call("PUT", path, {"typing": True, "timeout": TYPING_MS}),
            TYPING_MS / 1000 - 5, lambda: self.call("PUT", path, {"typing": False}))

    async def send_text(self, to: str, text: str, reply_to: str | None,
                        thread_id: str | None) -> list[str]:
        room = await self._room_for(to)
        limit = int(self.config.get("textChunkLimit") or TEXT_LIMIT)
        mode = self.config.get("replyToMode", "off")
        sent = []
        for i, part in enumerate(split_text(text, limit)):
            content: dict[str, Any] = {"msgtype": "m.text", "body": part}
            if thread_id:
                content["m.relates_to"] = {
                    "rel_type": "m.thread", "event_id": thread_id, "is_falling_back": True,
                    "m.in_reply_to": {"event_id": reply_to or thread_id}}
            elif reply_to and (mode == "all" or (mode in ("first", "batched") and i == 0)):
                content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
            sent.append(await self._send(room, content, f"oc-{uuid.uuid4().hex}"))
            self.sent()
        return sent

    async def _room_for(self, to: str) -> str:
        """A room id for a target: ``!room`` / ``room:!room``, ``#alias``, or a user
        (``@user:server`` / ``user:@user:server``, their DM room — created when missing)."""
        target = to.split(":", 1)[1] if to.startswith(("room:", "user:")) else to
        if target.startswith("#"):
            found = await self.call("GET", f"{API}/directory/room/{quote(target, safe='')}")
            return str(found["room_id"])
        if not target.startswith("@"):
            return target
        rooms = self.m_direct.get(target)
        if rooms:
            return rooms[-1]
        created = await self.call("POST", f"{API}/createRoom", {
            "is_direct": True, "invite": [target], "preset": "trusted_private_chat"})
        room = str(created["room_id"])
        await self._remember_direct(target, room)
        return room

    async def _send(self, room: str, content: dict[str, Any], txn: str) -> str:
        """PUT with one transaction id across retries: the homeserver posts it at most once."""
        path = f"{API}/rooms/{quote(room, safe='')}/send/m.room.message/{txn}"
        for attempt in range(SEND_ATTEMPTS):
            try:
                result = await self.call("PUT", path, content)
                return str(result.get("event_id") or "")
            except MatrixApiError as e:
                if e.status != 429 or attempt == SEND_ATTEMPTS - 1:
                    raise
                wait: Deferred[None] = Deferred()
                self.clock.callLater((e.retry_after_ms or 1000) / 1000, wait.callback, None)
                await wait
        raise AssertionError("unreachable")
