from twisted.trial.unittest import SynchronousTestCase

from tests.support.helpers import hello, make_gateway


class HarnessSmoke(SynchronousTestCase):
    def test_health_roundtrip(self) -> None:
        gw, clock = make_gateway()
        c = hello(gw)
        rid = c.request("health", {})
        res = c.response(rid)
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["payload"]["ok"], True)
