"""An idempotency key that is already used, whichever method used it first.

``chat.send``, ``sessions.send`` and ``sessions.create`` (with a message) start a turn whose run
id is the key, and a key names at most one turn (the transcript holds it once).  As the real
gateway answers: the same input again gets the first turn's state (``in_flight`` while it runs,
then its outcome); different input (another session or message) is refused with
``INVALID_REQUEST`` and ``details.reason`` ``chat-request-conflict``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.agent.runtime import AgentRuntime, Outcome
from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request

CONFLICT_MESSAGE = ("This message ID was already used for different input. Check the "
                    "conversation history and use a new message ID to send again.")


def key_conflict() -> GatewayError:
    return invalid_request(CONFLICT_MESSAGE, {"reason": "chat-request-conflict"})


def fingerprint(session_key: str, message: str) -> str:
    """What "the same input" means, kept small: a digest, not the message."""
    return hashlib.sha256(f"{session_key}\0{message}".encode()).hexdigest()


def outcome_reply(outcome: Outcome, run_id: str) -> dict[str, Any]:
    """A finished turn as a replayed send answers it (an error turn: ``UNAVAILABLE``)."""
    if outcome.status == "ok":
        return {"runId": run_id, "status": "ok"}
    message = outcome.error or "run failed"
    raise GatewayError(UNAVAILABLE, message,
                       payload={"runId": run_id, "status": "error", "summary": message})


def answer_reused(runtime: AgentRuntime, run_id: str, session_key: str, message: str
                  ) -> Deferred[dict[str, Any]]:
    """The answer to a send whose key ``runtime.accept`` found already used."""

    def decide(first: tuple[str, str, bool] | None) -> Any:
        if first is not None and (first[0], first[1]) != (session_key, message):
            raise key_conflict()
        if first is not None and first[2]:
            return {"runId": run_id, "status": "in_flight"}
        return runtime.recorded_outcome(run_id).addCallback(outcome_reply, run_id)

    return runtime.recorded_request(run_id).addCallback(decide)
