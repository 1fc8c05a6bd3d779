"""Failed-auth throttling, per client IP, on the injected clock.

Loopback peers are never locked out; each failure in the window adds a growing delay before
the failure is answered (250 ms doubling, capped at 5 s).  Other peers are locked out for
5 minutes after 10 failures in 60 s.  Only failing attempts are delayed: a correct client is
never slowed by someone else's failures.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IReactorTime

WINDOW_S = 60.0
MAX_FAILURES = 10
LOCKOUT_S = 300.0
BASE_DELAY_S = 0.25
MAX_DELAY_S = 5.0
MAX_TRACKED = 10_000  # source IPs with failures in the window, and IPs locked out
KEPT_FAILURES = 64  # per IP: more than any rule below counts


class AuthRateLimiter:
    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}  # in order of expiry (one fixed lockout)

    def _recent(self, ip: str) -> deque[float]:
        now = self._clock.seconds()
        q = self._failures.get(ip)
        if q is None:
            return deque()
        while q and q[0] <= now - WINDOW_S:
            q.popleft()
        if not q:
            del self._failures[ip]
        return q

    def retry_after_ms(self, ip: str, loopback: bool) -> int | None:
        """Milliseconds until ``ip`` may try again, or ``None`` when not locked out."""
        if loopback:
            return None
        until = self._locked_until.get(ip)
        if until is None:
            return None
        remaining = until - self._clock.seconds()
        if remaining <= 0:
            del self._locked_until[ip]
            return None
        return int(remaining * 1000) + 1

    def record_failure(self, ip: str, loopback: bool) -> float:
        """Count a failure; returns the delay (seconds) to apply before answering it."""
        now = self._clock.seconds()
        q = self._recent(ip)
        if not q:
            if len(self._failures) >= MAX_TRACKED:
                self._failures.pop(next(iter(self._failures)))
            q = self._failures.setdefault(ip, deque(maxlen=KEPT_FAILURES))
        q.append(now)
        count = len(q)
        if not loopback and count >= MAX_FAILURES:
            self._lock(ip, now)
        if loopback:
            return min(BASE_DELAY_S * (2 ** (count - 1)), MAX_DELAY_S)
        return BASE_DELAY_S

    def _lock(self, ip: str, now: float) -> None:
        """Lock ``ip`` out; expired lockouts are dropped here, and past ``MAX_TRACKED`` the
        oldest go (an address that is never seen again used to stay forever)."""
        locked = self._locked_until
        locked.pop(ip, None)  # re-locked: to the end, so the first entry expires first
        while locked:
            first, until = next(iter(locked.items()))
            if until > now and len(locked) < MAX_TRACKED:
                break
            del locked[first]
        locked[ip] = now + LOCKOUT_S

    def __len__(self) -> int:
        """Addresses tracked (with failures in the window or locked out)."""
        return len(self._failures.keys() | self._locked_until.keys())
