"""Server-side cost from ``/proc``: CPU time and RSS of a whole process tree.

CPU of one process is ``utime + stime`` from ``/proc/<pid>/stat`` (which already covers all of
its threads, including exited ones) plus ``cutime + cstime`` (children it has reaped).  The tree
is found through ``/proc/<pid>/task/<tid>/children`` (children of every thread).  RSS is the sum
of resident pages (``/proc/<pid>/statm``) over the tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MAX_TREE = 512  # bound on the walk


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    state: str
    ppid: int
    utime: int  # clock ticks
    stime: int
    cutime: int
    cstime: int
    num_threads: int
    rss_pages: int

    @property
    def cpu_ticks(self) -> int:
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(text: str) -> ProcStat:
    """Parse one ``/proc/<pid>/stat`` line (``comm`` may hold spaces and parentheses)."""
    head, _, rest = text.rpartition(")")
    pid_s, _, comm = head.partition(" (")
    f = rest.split()
    # f[0] is field 3 (state); field n is f[n - 3]
    return ProcStat(pid=int(pid_s), comm=comm, state=f[0], ppid=int(f[1]),
                    utime=int(f[11]), stime=int(f[12]), cutime=int(f[13]), cstime=int(f[14]),
                    num_threads=int(f[17]), rss_pages=int(f[21]))


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def children(pid: int) -> list[int]:
    """Direct children of every thread of ``pid``."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return out
    for tid in tids:
        text = _read(f"/proc/{pid}/task/{tid}/children")
        if text:
            out.extend(int(c) for c in text.split())
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (breadth first, bounded)."""
    seen: list[int] = []
    queue = [pid]
    while queue and len(seen) < MAX_TREE:
        p = queue.pop(0)
        if p in seen:
            continue
        seen.append(p)
        queue.extend(children(p))
    return seen


def rss_bytes(pid: int) -> int:
    text = _read(f"/proc/{pid}/statm")
    if not text:
        return 0
    return int(text.split()[1]) * PAGE_SIZE


def task_runtimes(pid: int) -> dict[tuple[int, int], int]:
    """On-CPU nanoseconds per live thread (``/proc/<pid>/task/<tid>/schedstat``, field 1)."""
    out: dict[tuple[int, int], int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return out
    for tid in tids:
        text = _read(f"/proc/{pid}/task/{tid}/schedstat")
        if text:
            out[(pid, int(tid))] = int(text.split()[0])
    return out


@dataclass(frozen=True)
class TreeSample:
    cpu_s: float          # user+system seconds of the whole tree (incl. reaped children)
    rss: int              # bytes, sum over the tree
    root_rss: int         # bytes, the root process alone
    pids: tuple[int, ...]
    threads: int
    tasks: dict[tuple[int, int], int]  # (pid, tid) -> on-CPU ns, for sub-tick precision


def sample(pid: int) -> TreeSample:
    ticks = rss = root_rss = threads = 0
    pids = tree(pid)
    alive = []
    tasks: dict[tuple[int, int], int] = {}
    for p in pids:
        text = _read(f"/proc/{p}/stat")
        if not text:
            continue
        st = parse_stat(text)
        ticks += st.cpu_ticks
        threads += st.num_threads
        r = rss_bytes(p)
        rss += r
        if p == pid:
            root_rss = r
        alive.append(p)
        tasks.update(task_runtimes(p))
    return TreeSample(ticks / CLK_TCK, rss, root_rss, tuple(alive), threads, tasks)


def cpu_between(a: TreeSample, b: TreeSample) -> float:
    """CPU seconds of the tree between two samples.

    Nanosecond-precise (per-thread schedstat) when no thread or process of ``a`` is gone by
    ``b`` (threads born in between count whole); otherwise the clock-tick figure from
    ``stat``, which also covers exited threads and reaped children.
    """
    if a.tasks and b.tasks and a.tasks.keys() <= b.tasks.keys():
        return (sum(b.tasks.values()) - sum(a.tasks.values())) / 1e9
    return b.cpu_s - a.cpu_s


class Probe:
    """CPU/RSS around a measured section: ``p = Probe(pid); ...; d = p.stop()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = sample(pid)
        self.end: TreeSample | None = None

    def stop(self) -> TreeSample:
        self.end = sample(self.pid)
        return self.end

    @property
    def cpu_s(self) -> float:
        assert self.end is not None
        return cpu_between(self.start, self.end)


def reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS (``VmHWM``) to its current RSS (``clear_refs`` 5); False
    when the kernel or permissions do not allow it."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def parse_hwm(status: str) -> int | None:
    """``VmHWM`` of a ``/proc/<pid>/status`` text, in bytes."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def peak_rss(pid: int) -> int | None:
    """The process's peak RSS since it started or since ``reset_peak``, in bytes."""
    text = _read(f"/proc/{pid}/status")
    return parse_hwm(text) if text else None
