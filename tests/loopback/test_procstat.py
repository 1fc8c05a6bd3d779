"""The benchmark harness's /proc parsing and sampling (``bench.procstat``) on live processes:
this one, and a child process it starts (which is why this is not in the unit tier)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from twisted.trial.unittest import SynchronousTestCase

from bench import procstat


class ProcStatTests(SynchronousTestCase):
    def test_parse_own_stat(self) -> None:
        with open("/proc/self/stat") as fh:
            st = procstat.parse_stat(fh.read())
        self.assertEqual(st.pid, os.getpid())
        self.assertEqual(st.ppid, os.getppid())
        self.assertGreaterEqual(st.num_threads, 1)
        self.assertGreater(st.rss_pages, 0)
        self.assertIn(st.state, "RSDTtZXIWP")

    def test_parse_comm_with_spaces_and_parens(self) -> None:
        fields = ["S", "1", "2", "3"] + ["0"] * 7 + ["11", "22", "33", "44"] + \
            ["20", "0", "5", "0", "123", "4096", "77"] + ["0"] * 20
        st = procstat.parse_stat(f"4242 (a (b) c) {' '.join(fields)}")
        self.assertEqual((st.pid, st.comm, st.state, st.ppid), (4242, "a (b) c", "S", 1))
        self.assertEqual((st.utime, st.stime, st.cutime, st.cstime), (11, 22, 33, 44))
        self.assertEqual(st.cpu_ticks, 110)
        self.assertEqual((st.num_threads, st.rss_pages), (5, 77))

    def test_sample_current_process(self) -> None:
        a = procstat.sample(os.getpid())
        self.assertIn(os.getpid(), a.pids)
        self.assertGreater(a.rss, 1 << 20)
        self.assertEqual(a.rss, a.root_rss * 1 if len(a.pids) == 1 else a.rss)
        self.assertTrue(any(pid == os.getpid() for pid, _ in a.tasks))
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:  # bounded busy loop
            pass
        b = procstat.sample(os.getpid())
        cpu = procstat.cpu_between(a, b)
        self.assertGreater(cpu, 0.0)
        self.assertLess(cpu, 5.0)

    def test_tree_includes_children(self) -> None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            deadline = time.monotonic() + 5
            while child.pid not in procstat.tree(os.getpid()) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertIn(child.pid, procstat.tree(os.getpid()))
            s = procstat.sample(os.getpid())
            self.assertIn(child.pid, s.pids)
            self.assertGreater(s.rss, s.root_rss)
        finally:
            child.kill()
            child.wait(10)

    def test_cpu_between_falls_back_to_ticks_when_a_thread_died(self) -> None:
        a = procstat.TreeSample(1.0, 0, 0, (1,), 2, {(1, 1): 10**9, (1, 2): 10**9})
        b = procstat.TreeSample(1.5, 0, 0, (1,), 1, {(1, 1): 12 * 10**8})
        self.assertAlmostEqual(procstat.cpu_between(a, b), 0.5)
        c = procstat.TreeSample(1.5, 0, 0, (1,), 3,
                                {(1, 1): 12 * 10**8, (1, 2): 10**9, (1, 3): 10**8})
        self.assertAlmostEqual(procstat.cpu_between(a, c), 0.3)

    def test_missing_process(self) -> None:
        self.assertEqual(procstat.rss_bytes(2**22 + 7), 0)
        self.assertEqual(procstat.children(2**22 + 7), [])
        self.assertIsNone(procstat.peak_rss(2**22 + 7))
        self.assertFalse(procstat.reset_peak(2**22 + 7))

    def test_peak_rss_of_a_child_and_its_reset(self) -> None:
        # the child touches 64 MiB, frees it, then waits: VmHWM keeps the peak until reset
        code = ("import sys, time; b = bytearray(64 << 20); b[::4096] = b'x' * (16 << 10); "
                "del b; print('ok', flush=True); time.sleep(30)")
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None
            self.assertEqual(child.stdout.readline().strip(), b"ok")
            peak = procstat.peak_rss(child.pid)
            assert peak is not None
            self.assertGreater(peak, 64 << 20)
            if not procstat.reset_peak(child.pid):
                raise self.skipTest("clear_refs is not writable here")
            after = procstat.peak_rss(child.pid)
            assert after is not None
            self.assertLess(after, peak - (32 << 20))
            self.assertGreaterEqual(after, procstat.rss_bytes(child.pid) - (1 << 20))
        finally:
            child.kill()
            child.wait(10)
