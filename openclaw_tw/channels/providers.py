"""The provider services this build ships, by channel id.

Each provider module is imported only when an account of it is configured, so a gateway without
channels does not pay for twisted.words (about 0.9 MiB of RSS) at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openclaw_tw.channels.manager import AccountService, ChannelContext, ProviderFactory


def _irc(account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> AccountService:
    from openclaw_tw.channels.irc import IrcAccount

    return IrcAccount(account_id, config, ctx)


def _telegram(account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> AccountService:
    from openclaw_tw.channels.telegram import TelegramAccount

    return TelegramAccount(account_id, config, ctx)


def _matrix(account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> AccountService:
    from openclaw_tw.channels.matrix import MatrixAccount

    return MatrixAccount(account_id, config, ctx)


PROVIDERS: dict[str, ProviderFactory] = {"irc": _irc, "telegram": _telegram, "matrix": _matrix}
