"""Where things are, independent of how deep a test module sits in tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout: setup.cfg, openclaw_tw/, tests/
FIXTURES = REPO / "tests" / "fixtures"
TRACES = REPO.parent / "shared" / "reference" / "traces"  # the reference gateway's captures
