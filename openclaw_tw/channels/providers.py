"""The provider services this build ships, by channel id.

Each provider module is imported only when an account of it is configured, so a gateway without
channels does not pay for twisted.words (about 0.9 MiB of RSS) at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from openclaw_tw.channels.manager import AccountService, ProviderFactory

if TYPE_CHECKING:
    from openclaw_tw.channels.router import ChannelRouter
    from openclaw_tw.hub.gateway import Gateway


def _irc(account_id: str, config: Mapping[str, Any], gw: Gateway,
         router: ChannelRouter) -> AccountService:
    from openclaw_tw.channels.irc import IrcAccount

    return IrcAccount(account_id, config, gw, router)


def _telegram(account_id: str, config: Mapping[str, Any], gw: Gateway,
              router: ChannelRouter) -> AccountService:
    from openclaw_tw.channels.telegram import TelegramAccount

    return TelegramAccount(account_id, config, gw, router)


def _matrix(account_id: str, config: Mapping[str, Any], gw: Gateway,
            router: ChannelRouter) -> AccountService:
    from openclaw_tw.channels.matrix import MatrixAccount

    return MatrixAccount(account_id, config, gw, router)


PROVIDERS: dict[str, ProviderFactory] = {"irc": _irc, "telegram": _telegram, "matrix": _matrix}
