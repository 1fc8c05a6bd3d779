"""Memory return: the trim policy fires after a large drop in connections, not before."""

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.daemon import malloc_trim


class TrimPolicy(SynchronousTestCase):
    def setUp(self) -> None:
        self.calls = 0

        def fake_trim() -> bool:
            self.calls += 1
            return True

        self.patch(malloc_trim, "trim", fake_trim)

    def test_no_trim_while_connections_grow_or_dip_slightly(self) -> None:
        policy = malloc_trim.TrimAfterDrop(min_drop=64)
        for n in (10, 500, 1000, 990, 960):
            self.assertFalse(policy.observe(n))
        self.assertEqual(self.calls, 0)

    def test_trim_once_after_a_large_drop_then_rearm(self) -> None:
        policy = malloc_trim.TrimAfterDrop(min_drop=64)
        policy.observe(1000)
        self.assertTrue(policy.observe(0))
        self.assertEqual(self.calls, 1)
        self.assertFalse(policy.observe(0))  # the peak was reset: nothing more to give back
        policy.observe(200)
        self.assertTrue(policy.observe(50))
        self.assertEqual(self.calls, 2)


class RealTrim(SynchronousTestCase):
    def test_trim_calls_malloc_trim_and_reports_a_bool(self) -> None:
        # On glibc (this project's machines) malloc_trim is found; elsewhere trim is a no-op.
        self.assertIsNotNone(malloc_trim._trim)
        self.assertIsInstance(malloc_trim.trim(), bool)
