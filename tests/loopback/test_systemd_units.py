"""``systemd-analyze verify`` of etc/openclaw.service and etc/openclaw.socket (skipped where
systemd-analyze is not installed; .ci/run also runs scripts/verify-systemd-units.sh)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support.paths import REPO

ANALYZE = shutil.which("systemd-analyze")
TWISTD = Path(sys.executable).parent / "twistd"


class Units(SynchronousTestCase):
    skip = None if ANALYZE else "systemd-analyze is not installed"

    def verify(self, edit: dict[str, tuple[str, str]] | None = None) -> tuple[int, str]:
        d = Path(tempfile.mkdtemp(prefix="units-"))
        self.addCleanup(shutil.rmtree, d, True)
        for name in ("openclaw.service", "openclaw.socket"):
            text = (REPO / "etc" / name).read_text()
            # verify wants ExecStart= to exist: this interpreter's twistd
            text = re.sub(r"^ExecStart=\S*twistd", f"ExecStart={TWISTD}", text, flags=re.M)
            old, new = (edit or {}).get(name, ("", ""))
            if old:
                self.assertIn(old, text)
                text = text.replace(old, new)
            (d / name).write_text(text)
        assert ANALYZE is not None
        proc = subprocess.run([ANALYZE, "verify", str(d / "openclaw.socket"),
                               str(d / "openclaw.service")],
                              capture_output=True, text=True, timeout=60)
        return proc.returncode, proc.stdout + proc.stderr

    def test_units_verify_cleanly(self) -> None:
        self.assertTrue(TWISTD.exists(), TWISTD)
        self.assertEqual(self.verify(), (0, ""))

    def test_the_units_carry_activation_and_the_watchdog(self) -> None:
        service = (REPO / "etc" / "openclaw.service").read_text()
        socket_unit = (REPO / "etc" / "openclaw.socket").read_text()
        self.assertRegex(service, r"(?m)^WatchdogSec=\d+")
        self.assertRegex(service, r"(?m)^Type=notify$")
        self.assertRegex(socket_unit, r"(?m)^ListenStream=127\.0\.0\.1:18789$")

    def test_a_broken_unit_is_caught(self) -> None:
        code, out = self.verify({"openclaw.socket": ("ListenStream=", "ListenStrem="),
                                 "openclaw.service": ("WatchdogSec=30", "WatchdogSec=soon")})
        self.assertIn("ListenStrem", out)
        self.assertIn("soon", out)
        self.assertNotEqual(code, 0)
