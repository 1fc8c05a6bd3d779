"""Plugins: plugins.list, plugins.catalog.browse, plugins.controlUi.list, plugin.surface.refresh.

We load no plugins, install none and host no plugin surface (no canvas host), so each answers
the real gateway's shape of "nothing here":

* ``plugins.list``: no plugins, no diagnostics, ``mutationAllowed: false`` (the UI then offers no
  enable/disable toggles; ``plugins.install``/``setEnabled``/``uninstall`` are not served).
* ``plugins.catalog.browse``: no catalog items -- we list no bundled plugins and do not query
  ClawHub (the real gateway joins both).
* ``plugins.controlUi.list``: no Control UI plugin modules; the revision is the real one's,
  ``sha256(JSON.stringify({plugins, diagnostics}))``, so an empty catalog has the same revision
  on both gateways.
* ``plugin.surface.refresh``: the real gateway's error for a surface it does not host
  (``UNAVAILABLE "<surface> plugin surface unavailable"``); hello-ok carries no
  ``pluginSurfaceUrls``, so the UI never asks.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Int, Obj, Str

# PluginsCatalogBrowseParamsSchema (protocol-schema-signatures.txt).
CATALOG_BROWSE = Obj(optional={
    "query": Str(max_len=200), "searchSource": Str(enum=("openclaw-control-ui",)),
    "intent": Str(enum=("all", "bundled", "trending", "official", "featured")),
    "category": Str(min_len=1, max_len=64), "cursor": Str(min_len=1, max_len=4096),
    "pageSize": Int(1, 100)})
# plugin.surface.refresh validates by hand in the real gateway (nodes.read-*.mjs): a surface
# and an optional observedUrl.
CATEGORY = re.compile(r"^[a-z][a-z0-9-]*$")
SURFACE_REFRESH = Obj(required={"surface": Str()}, optional={"observedUrl": Str()})


def catalog_revision(plugins: list[Any], diagnostics: list[Any]) -> str:
    body = json.dumps({"plugins": plugins, "diagnostics": diagnostics}, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class PluginsMethods:
    @rpc("plugins.list")
    def plugins_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"plugins": [], "diagnostics": [], "mutationAllowed": False}

    @rpc("plugins.catalog.browse", CATALOG_BROWSE)
    def catalog_browse(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        if "category" in params and not CATEGORY.match(params["category"]):
            raise invalid_request("invalid plugins.catalog.browse params: at /category: must "
                                  f'match pattern "{CATEGORY.pattern}"')
        if (params.get("query") or "").strip() and params.get("cursor"):
            raise invalid_request("Plugin search does not accept a browse cursor.")
        return {"items": []}

    @rpc("plugins.controlUi.list")
    def control_ui_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"revision": catalog_revision([], []), "plugins": [], "diagnostics": []}

    @rpc("plugin.surface.refresh", SURFACE_REFRESH)
    def surface_refresh(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        surface = params["surface"].strip()
        if not surface:
            raise invalid_request("surface required")
        raise GatewayError(UNAVAILABLE, f"{surface} plugin surface unavailable")
