"""Protocol error codes and the GatewayError carrying them (the one place codes are defined)."""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = "INVALID_REQUEST"
FORBIDDEN = "FORBIDDEN"
UNAVAILABLE = "UNAVAILABLE"
NOT_PAIRED = "NOT_PAIRED"
APPROVAL_NOT_FOUND = "APPROVAL_NOT_FOUND"

BUSY_MESSAGE = "The server is busy. Please try again in a moment."
MAX_MESSAGE_CHARS = 2048  # an error message is cut here whatever it quotes
MAX_QUOTED_CHARS = 64  # a client-chosen name quoted in a message


def clip(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """A client-chosen string as a message quotes it: at most ``limit`` chars, and says so."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"…({len(text)} chars)"


class GatewayError(Exception):
    """An error answered to the client as ``{code, message, details?, retryable?, retryAfterMs?}``.

    ``close_code`` is set for handshake failures that also close the socket.
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: Any = None,
        *,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        close_code: int | None = None,
        close_reason: str | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(message)
        self.close_reason = close_reason
        self.payload = payload  # an ok:false response may carry a payload too (§1)
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.close_code = close_code

    def shape(self) -> dict[str, Any]:
        # A backstop: messages that quote client input clip it themselves (``clip``).
        out: dict[str, Any] = {"code": self.code,
                               "message": clip(self.message, MAX_MESSAGE_CHARS)}
        if self.details is not None:
            out["details"] = self.details
        if self.retryable is not None:
            out["retryable"] = self.retryable
        if self.retry_after_ms is not None:
            out["retryAfterMs"] = self.retry_after_ms
        return out

    def __repr__(self) -> str:
        return f"GatewayError({self.code!r}, {self.message!r})"


def invalid_request(message: str, details: Any = None) -> GatewayError:
    return GatewayError(INVALID_REQUEST, message, details)


def missing_scope(scope: str) -> GatewayError:
    return GatewayError(
        FORBIDDEN,
        f"missing scope: {scope}",
        {"code": "MISSING_SCOPE", "missingScope": scope, "requiredScopes": [scope]},
    )


def busy(retry_after_ms: int) -> GatewayError:
    return GatewayError(UNAVAILABLE, BUSY_MESSAGE, retryable=True, retry_after_ms=retry_after_ms)
