"""The provider services this build ships, by channel id."""

from __future__ import annotations

from openclaw_tw.channels.irc import IrcAccount
from openclaw_tw.channels.manager import ProviderFactory

PROVIDERS: dict[str, ProviderFactory] = {"irc": IrcAccount}
