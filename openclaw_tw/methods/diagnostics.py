"""diagnostics.stability: the recorder's ring (``hub/diagnostics.py``)."""

from __future__ import annotations

from typing import Any

from openclaw_tw.errors import invalid_request
from openclaw_tw.hub.diagnostics import QueryError, StabilityRecorder, normalize_query
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Int, Obj, OneOf, Str

# The fields the real handler reads (normalizeDiagnosticStabilityQuery): integers, or strings
# of digits (``openclaw gateway stability --limit 5`` passes what it parsed).
STABILITY = Obj(optional={"limit": OneOf(Int(), Str()), "type": Str(),
                          "sinceSeq": OneOf(Int(), Str())})


class DiagnosticsMethods:
    def __init__(self, recorder: StabilityRecorder) -> None:
        self._recorder = recorder

    @rpc("diagnostics.stability", STABILITY)
    def stability(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            limit, kind, since_seq = normalize_query(params)
        except QueryError as e:
            raise invalid_request(str(e)) from None
        return self._recorder.snapshot(limit, kind, since_seq)
