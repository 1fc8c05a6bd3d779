"""Every registered method, fuzzed as the operator (admin) and as a node.

One test per (method, role), generated from the method table, so a failure names its method.
Inputs come from the method's declared params schema, broken one field at a time, and pure
type confusion (``tests/fuzz/strategies.py``); the checks are ``FuzzGateway.check``'s.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from twisted.trial import unittest

from tests.fuzz import strategies as fs
from tests.fuzz.harness import EXAMPLES, FuzzGateway

_gateway: FuzzGateway | None = None


def shared() -> FuzzGateway:
    """One gateway for the whole tier (building one per test would cost most of the budget);
    a test that fails replaces it, so one finding does not cascade."""
    global _gateway
    if _gateway is None:
        _gateway = FuzzGateway()
    return _gateway


def discard() -> None:
    global _gateway
    if _gateway is not None:
        _gateway.close()
        _gateway = None


def fuzz_settings(examples: int) -> settings:
    """Deterministic, no example database, no deadline (the machine is shared); shrinking
    only when ``FUZZ_SHRINK`` is set (a failing example is printed unshrunk otherwise)."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                    phases=list(Phase) if os.environ.get("FUZZ_SHRINK") else
                    [Phase.explicit, Phase.reuse, Phase.generate])


FUZZ = fuzz_settings(EXAMPLES)


def _make_test(method: str, role: str, schema: Any) -> Any:
    @FUZZ
    @given(params=fs.params_for(schema))
    def test(self: unittest.TestCase, params: Any) -> None:
        shared().check(role, method, params)

    def run(self: unittest.TestCase) -> None:
        failed = True
        try:
            test(self)
            shared().bystander_answers(method)
            failed = False
        except BaseExceptionGroup as group:  # hypothesis's FlakyFailure: show what failed
            raise group.exceptions[0] from None
        finally:
            self.flushLoggedErrors()
            shared().write_report(f"{method}[{role}]", failed)
            if failed:
                discard()

    run.__name__ = f"test_{role}_{method}"
    run.__doc__ = f"{method} as {role}"
    return run


class MethodFuzz(unittest.TestCase):
    pass


for _m in sorted(shared().gw.methods.methods(), key=lambda m: m.name):
    for _role in ("operator", "node"):
        _name = f"test_{_role}_" + _m.name.replace(".", "_").replace("-", "_")
        setattr(MethodFuzz, _name, _make_test(_m.name, _role, _m.params))
