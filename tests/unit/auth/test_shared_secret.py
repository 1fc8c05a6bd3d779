"""Shared-secret auth failures and their throttling (§4.5 step 8, §4.6, baseline "badinput").

Vector: ``traces/wrong-token.jsonl`` (the real gateway answered a wrong token after ~257 ms).
Loopback: 250 ms x 2^(n-1) penalty (cap 5 s), never locked out.  Other IPs: locked out for
5 minutes after 10 failures in 60 s.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.auth import ratelimit
from tests.support.helpers import TOKEN, Closed, WSClient, make_gateway

MISMATCH_MESSAGE = ("unauthorized: gateway token mismatch "
                    "(use this gateway's gateway.auth.token or pair the device)")
MISMATCH_DETAILS = {
    "code": "AUTH_TOKEN_MISMATCH",
    "authReason": "token_mismatch",
    "canRetryWithDeviceToken": False,
    "recommendedNextStep": "update_auth_credentials",
}
RATE_LIMITED_MESSAGE = "unauthorized: too many failed authentication attempts (retry later)"
REMOTE = "10.0.0.5"


def start_connect(gw: Any, token: str, ip: str = "127.0.0.1") -> WSClient:
    """Open a socket and send connect; the answer may be delayed."""
    c = WSClient(gw, ip=ip)
    c.pop()  # the challenge
    c.connect(token=token)
    return c


def answer(c: WSClient) -> tuple[dict[str, Any], Closed]:
    """The connect response and the close frame that must follow it."""
    frames = c.pop()
    assert len(frames) == 2, frames
    res, closed = frames
    assert isinstance(res, dict) and isinstance(closed, Closed), frames
    return res, closed


class WrongTokenLoopbackTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def expect_delay(self, c: WSClient, delay: float) -> dict[str, Any]:
        """Nothing is answered before ``delay``; the error arrives just after it."""
        self.clock.advance(delay - 0.01)
        self.assertEqual(c.pop(), [], f"answered before {delay} s")
        self.clock.advance(0.02)
        res, closed = answer(c)
        self.assertEqual((closed.code, closed.reason), (1008, res["error"]["message"][:123]))
        return res

    def test_wrong_token_is_delayed_then_refused(self) -> None:
        c = start_connect(self.gw, "WRONGTOKEN")
        self.assertEqual(c.pop(), [])
        self.clock.advance(0.24)
        self.assertEqual(c.pop(), [])
        self.clock.advance(0.01)
        res, closed = answer(c)
        self.assertEqual(set(res), {"type", "id", "ok", "error"})
        self.assertFalse(res["ok"])
        self.assertEqual(res["error"], {
            "code": "INVALID_REQUEST", "message": MISMATCH_MESSAGE, "details": MISMATCH_DETAILS,
        })
        self.assertEqual((closed.code, closed.reason), (1008, MISMATCH_MESSAGE))
        self.assertEqual(self.gw.conns, {})

    def test_four_tries_escalate(self) -> None:
        for delay in (0.25, 0.5, 1.0, 2.0):
            res = self.expect_delay(start_connect(self.gw, "WRONGTOKEN"), delay)
            self.assertEqual(res["error"]["details"], MISMATCH_DETAILS)

    def test_penalty_capped_at_5s(self) -> None:
        for delay in (0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0):
            self.expect_delay(start_connect(self.gw, "WRONGTOKEN"), delay)

    def test_wrong_password_field_is_a_token_mismatch(self) -> None:
        c = WSClient(self.gw)
        c.pop()
        c.connect(token=None, auth={"password": "WRONG"})
        res = self.expect_delay(c, 0.25)
        self.assertEqual(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH")

    def test_loopback_is_never_locked_out(self) -> None:
        failing = [start_connect(self.gw, "WRONGTOKEN") for _ in range(12)]
        # A correct client connects at once: not locked, not delayed.
        res = WSClient(self.gw).connect()
        self.assertIsNotNone(res, "a correct client was delayed")
        self.assertTrue(res["ok"], res)
        self.clock.advance(5.01)  # every delayed refusal has gone out (cap 5 s)
        for c in failing:
            res, _ = answer(c)
            self.assertEqual(res["error"]["details"], MISMATCH_DETAILS)
        res = WSClient(self.gw).connect()
        self.assertIsNotNone(res, "a correct client was delayed")
        self.assertTrue(res["ok"], res)
        # A further wrong try is still a plain mismatch (never AUTH_RATE_LIMITED).
        res = self.expect_delay(start_connect(self.gw, "WRONGTOKEN"), 5.0)
        self.assertEqual(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH")

    def test_correct_client_not_delayed_during_penalty(self) -> None:
        start_connect(self.gw, "WRONGTOKEN")
        start_connect(self.gw, "WRONGTOKEN")
        res = WSClient(self.gw).connect()
        self.assertIsNotNone(res)
        self.assertTrue(res["ok"], res)

    def test_failures_older_than_60s_are_forgotten(self) -> None:
        for delay in (0.25, 0.5, 1.0):
            self.expect_delay(start_connect(self.gw, "WRONGTOKEN"), delay)
        self.clock.advance(61.0)
        self.expect_delay(start_connect(self.gw, "WRONGTOKEN"), 0.25)


class RemoteLockoutTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def attempt(self, token: str, ip: str = REMOTE) -> dict[str, Any]:
        """One connect from ``ip``; returns the response once any delay has passed."""
        c = start_connect(self.gw, token, ip)
        self.clock.advance(0.3)
        frames = c.pop()
        res = frames[0]
        self.assertEqual(res["type"], "res")
        if not res["ok"]:
            self.assertEqual(len(frames), 2, frames)
            self.assertEqual((frames[1].code, frames[1].reason),
                             (1008, res["error"]["message"][:123]))
        return res

    def fail(self, n: int, ip: str = REMOTE) -> None:
        for _ in range(n):
            res = self.attempt("WRONGTOKEN", ip)
            self.assertEqual(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH")

    def assertRateLimited(self, res: dict[str, Any]) -> None:
        self.assertFalse(res["ok"])
        err = res["error"]
        self.assertEqual((err["code"], err["message"]), ("INVALID_REQUEST", RATE_LIMITED_MESSAGE))
        self.assertEqual(err["details"], {
            "code": "AUTH_RATE_LIMITED", "authReason": "rate_limited",
            "canRetryWithDeviceToken": False, "recommendedNextStep": "wait_then_retry",
        })
        self.assertIs(err["retryable"], True)
        self.assertIs(type(err["retryAfterMs"]), int)
        self.assertTrue(0 < err["retryAfterMs"] <= 300_000, err)

    def assertUpgradeLocked(self, ip: str = REMOTE) -> int:
        """A new socket from ``ip`` is refused at the upgrade: 429 with Retry-After (s)."""
        before = self.gw.preauth_count(ip)
        c = WSClient(self.gw, ip=ip)
        assert c.refusal is not None, c.status_line
        self.assertEqual(c.status_line, "HTTP/1.1 429 Too Many Requests")
        self.assertTrue(c.refusal.endswith(b"\r\n\r\nToo Many Requests"), c.refusal)
        self.assertEqual(self.gw.preauth_count(ip), before)  # not counted
        retry = [ln for ln in c.refusal.split(b"\r\n") if ln.startswith(b"Retry-After: ")]
        self.assertEqual(len(retry), 1, c.refusal)
        return int(retry[0].split(b": ")[1])

    def test_locked_out_after_10_failures(self) -> None:
        self.fail(10)
        self.assertIn(self.assertUpgradeLocked(), (299, 300))

    def test_socket_opened_before_the_lockout_gets_rate_limited(self) -> None:
        early = WSClient(self.gw, ip=REMOTE)
        early.pop()  # the challenge
        self.fail(10)
        early.connect(token=TOKEN)
        self.clock.advance(0.3)
        frames = early.pop()
        self.assertRateLimited(frames[0])
        self.assertEqual((frames[1].code, frames[1].reason),
                         (1008, frames[0]["error"]["message"][:123]))

    def test_correct_token_refused_while_locked(self) -> None:
        self.fail(10)
        self.assertUpgradeLocked()

    def test_nine_failures_do_not_lock(self) -> None:
        self.fail(9)
        res = self.attempt(TOKEN)
        self.assertTrue(res["ok"], res)

    def test_other_ip_unaffected(self) -> None:
        self.fail(10)
        res = self.attempt(TOKEN, ip="10.0.0.6")
        self.assertTrue(res["ok"], res)
        res = self.attempt("WRONGTOKEN", ip="10.0.0.6")
        self.assertEqual(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH")
        self.assertTrue(WSClient(self.gw).connect()["ok"])  # loopback too

    def test_lockout_lasts_5_minutes(self) -> None:
        self.fail(10)
        self.clock.advance(298.0)
        self.assertLessEqual(self.assertUpgradeLocked(), 2)
        self.clock.advance(2.0)
        res = self.attempt(TOKEN)
        self.assertTrue(res["ok"], res)

    def test_failures_older_than_60s_are_forgotten(self) -> None:
        self.fail(9)
        self.clock.advance(61.0)
        self.fail(9)
        res = self.attempt(TOKEN)
        self.assertTrue(res["ok"], res)


class AuthRateLimiterUnitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.limiter = ratelimit.AuthRateLimiter(self.clock)

    def test_loopback_delays_double_and_cap(self) -> None:
        delays = [self.limiter.record_failure("127.0.0.1", True) for _ in range(8)]
        self.assertEqual(delays, [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0])

    def test_loopback_never_locked(self) -> None:
        for _ in range(50):
            self.limiter.record_failure("127.0.0.1", True)
        self.assertIsNone(self.limiter.retry_after_ms("127.0.0.1", True))

    def test_loopback_window(self) -> None:
        self.limiter.record_failure("127.0.0.1", True)
        self.limiter.record_failure("127.0.0.1", True)
        self.clock.advance(61)
        self.assertEqual(self.limiter.record_failure("127.0.0.1", True), 0.25)

    def test_remote_lockout_after_ten(self) -> None:
        for i in range(9):
            self.assertEqual(self.limiter.record_failure(REMOTE, False), 0.25)
            self.assertIsNone(self.limiter.retry_after_ms(REMOTE, False), i)
        self.limiter.record_failure(REMOTE, False)
        retry = self.limiter.retry_after_ms(REMOTE, False)
        self.assertIsNotNone(retry)
        self.assertTrue(299_000 <= retry <= 300_001, retry)
        self.assertIsNone(self.limiter.retry_after_ms("10.0.0.6", False))

    def test_remote_lockout_expires(self) -> None:
        for _ in range(10):
            self.limiter.record_failure(REMOTE, False)
        self.clock.advance(150)
        retry = self.limiter.retry_after_ms(REMOTE, False)
        self.assertTrue(149_000 <= retry <= 150_001, retry)
        self.clock.advance(150)
        self.assertIsNone(self.limiter.retry_after_ms(REMOTE, False))

    def test_remote_window_slides(self) -> None:
        for _ in range(9):
            self.limiter.record_failure(REMOTE, False)
        self.clock.advance(60.5)
        self.limiter.record_failure(REMOTE, False)
        self.assertIsNone(self.limiter.retry_after_ms(REMOTE, False))

    def test_failures_spread_within_window_lock(self) -> None:
        for _ in range(10):
            self.limiter.record_failure(REMOTE, False)
            self.clock.advance(5)  # 10 failures over 45 s
        self.assertIsNotNone(self.limiter.retry_after_ms(REMOTE, False))

    def test_lockouts_of_addresses_never_seen_again_are_dropped(self) -> None:
        """Each locked-out address used to stay until that same address was looked up again:
        distinct sources (an IPv6 /64 has plenty) grew the table without end."""
        self.patch(ratelimit, "MAX_TRACKED", 5)
        for n in range(8):
            for _ in range(10):
                self.limiter.record_failure(f"10.1.0.{n}", False)
        self.assertIsNone(self.limiter.retry_after_ms("10.1.0.0", False))  # evicted, oldest
        self.assertIsNotNone(self.limiter.retry_after_ms("10.1.0.7", False))
        self.assertLessEqual(len(self.limiter), 5)
        self.clock.advance(301)
        self.limiter.record_failure("10.2.0.1", False)
        for _ in range(9):
            self.limiter.record_failure("10.2.0.1", False)
        self.assertEqual(len(self.limiter._locked_until), 1)  # the expired ones swept

    def test_failures_kept_per_address_bounded(self) -> None:
        for _ in range(1000):
            self.limiter.record_failure("127.0.0.1", True)
        self.assertEqual(len(self.limiter._failures["127.0.0.1"]), ratelimit.KEPT_FAILURES)
