"""Scratch directories for helpers that have no TestCase at hand (``make_settings``,
``write_config``): each is a fresh directory inside one root per test process, and that root
is removed when the process exits, so a run leaves nothing behind in the system temp dir.
Tests that have a TestCase use ``self.mktemp()`` instead (under trial's temp directory)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

_root: Path | None = None


def scratch_dir(prefix: str = "openclaw-test-") -> Path:
    """A new, empty directory that lives until this process exits."""
    global _root
    if _root is None or not _root.is_dir():
        _root = Path(tempfile.mkdtemp(prefix=f"openclaw-tests-{os.getpid()}-"))
        atexit.register(shutil.rmtree, _root, True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_root))


def fresh_dir(case: Any) -> Path:
    """A new, empty directory for one test, under trial's temp directory (``case.mktemp()``),
    as an absolute path (child processes and stores may run elsewhere)."""
    path = Path(case.mktemp()).resolve()
    path.mkdir(parents=True)
    return path
