"""``/control-ui-config.json``: the bootstrap config the Control UI app fetches at start,
behind the gateway's HTTP bearer auth or a paired operator device's token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.web.server import Request

from openclaw_tw import _json
from openclaw_tw.hub.hello import COMPAT_VERSION
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import HttpError, bearer_token

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

READ_SCOPES = ("operator.read", "operator.write", "operator.admin")


def device_token_reads(request: Request, gw: Gateway) -> bool:
    """A paired operator device's token (the UI's first try after hello-ok) may read."""
    offered = bearer_token(request)
    authority = getattr(gw, "devices", None)
    if offered is None or authority is None:
        return False
    for dev in list(authority.store.devices.values()):
        token = dev.active_token("operator")
        if token is not None and token.matches(offered):
            return any(s in token.scopes for s in READ_SCOPES)
    return False


async def bootstrap_config(request: Request, gw: Gateway, base: str) -> bytes:
    """The app's bootstrap config, for the shared secret or a device token (the
    reference's ``authorizeControlUiReadRequestOrReply``)."""
    if not device_token_reads(request, gw):
        await require_bearer(request, gw)
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-cache")
    if request.method == b"HEAD":
        return b""
    cfg = gw.settings.raw
    ui = ((cfg.get("gateway") or {}).get("controlUi") or {}) if isinstance(cfg, dict) \
        else {}
    sandbox = ui.get("embedSandbox")
    body = {
        "basePath": base,
        "assistantName": "Assistant",
        "assistantAvatar": "A",
        "assistantAvatarSource": None,
        "assistantAvatarStatus": None,
        "assistantAvatarReason": None,
        "assistantAgentId": "main",
        "serverVersion": COMPAT_VERSION,
        # no serverBuildId: the build served is not ours (as with a configured root)
        "embedSandbox": sandbox if sandbox in ("trusted", "strict") else "scripts",
        "allowExternalEmbedUrls": ui.get("allowExternalEmbedUrls") is True,
        "automaticallyFetchFavicons": ui.get("automaticallyFetchFavicons") is not False,
        "communityInvite": ui.get("communityInvite") is not False,
        "terminalEnabled": False,   # no terminal here (the index says the same)
        "cliAgentsEnabled": False,  # no CLI agents here
        "pluginAssetsRequireAuth": gw.settings.auth_mode != "none",
        "pluginFrameGrants": [],
    }
    return _json.dumps(body)


def config_error() -> HttpError:
    return HttpError(500, "Internal Server Error")
