"""Child process for the crash test: a burst of pair/approve writes, one line per commit.

Runs the real DeviceStore on the real database thread (a running reactor), printing
``committed N`` after each transaction's Deferred fires, until it is killed.
"""

import sys
from pathlib import Path

from twisted.internet import defer, reactor, task

from openclaw_tw.db import Database
from openclaw_tw.devices.store import (
    MIGRATIONS,
    DeviceStore,
    PairedDevice,
    PendingRequest,
    TokenKey,
)


@defer.inlineCallbacks
def burst(store: DeviceStore, key: TokenKey) -> defer.Deferred:
    n = 0
    while True:
        n += 1
        dev_id = f"{n:064x}"
        req = PendingRequest(f"req-{n}", dev_id, "pk", "linux", "Linux", "cli", "cli",
                             "operator", ["operator.read"], "not-paired", "10.0.0.1",
                             False, False, n, n + 10_000)
        yield store.add_pending(req)
        dev = PairedDevice(dev_id, "pk", "linux", "Linux", "cli", "cli", ["operator"],
                           ["operator.read", "operator.write"], "owner", n, n)
        token, _ = key.issue(dev_id, "operator", dev.scopes, n)
        yield store.save_device(dev, token, drop_pending_for=dev_id)
        sys.stdout.write(f"committed {n}\n")
        sys.stdout.flush()


def main() -> None:
    state = Path(sys.argv[1])
    db = Database(state / "openclaw.sqlite", MIGRATIONS, reactor)
    db.open()
    db.start()
    store = DeviceStore(db, TokenKey.load_or_create(state))
    store.load()
    task.react(lambda _r: burst(store, TokenKey.load_or_create(state)))


if __name__ == "__main__":
    main()
