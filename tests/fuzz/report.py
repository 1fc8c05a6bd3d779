"""``make fuzz``'s summary: ``python -m tests.fuzz.report FILE`` sums the fuzz tier's JSON lines
(inputs sent, tests that found something, RSS before and after; for the HTTP tests, the
requests and the statuses they were answered with)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def main(path: str) -> int:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        print("fuzz: no report lines (did the tier run?)")
        return 1
    failed = [r["test"] for r in rows if r["failed"]]
    print(f"fuzz: {sum(r['inputs'] for r in rows)} inputs in {len(rows)} tests; "
          f"{len(failed)} with findings{': ' + ', '.join(failed) if failed else ''}")
    print(f"fuzz: {sum(r.get('pending', 0) for r in rows)} requests still waiting on a "
          "timeoutMs of their own past the settle window")
    http = [r for r in rows if r.get("kind") == "http"]
    if http:
        statuses: Counter[str] = Counter()
        for r in http:
            statuses.update(r.get("statuses", {}))
        failed_http = [r["test"] for r in http if r["failed"]]
        print(f"fuzz: of which HTTP: {sum(r['inputs'] for r in http)} requests in {len(http)} "
              f"route tests, {len(failed_http)} with findings; answers by status: "
              + ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items())))
    print(f"fuzz: RSS {rows[0]['rss_start'] >> 20} MiB at the start, "
          f"{max(r['rss_end'] for r in rows) >> 20} MiB at most, "
          f"{rows[-1]['rss_end'] >> 20} MiB at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
