"""systemd readiness notification (``openclaw_tw.daemon.sdnotify``) over a real AF_UNIX datagram
socket standing in for systemd's (mDNS and the service tree's wiring are in
tests/unit/daemon/test_mdns.py)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase


class SystemdNotify(SynchronousTestCase):
    def test_ready_and_stopping_over_a_fake_notify_socket(self) -> None:
        import os
        import shutil
        import socket
        import tempfile

        from openclaw_tw.daemon import sdnotify

        directory = tempfile.mkdtemp(prefix="notify-")  # short: an AF_UNIX path has 108 bytes
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(server.close)
        server.bind(path)
        svc = sdnotify.SystemdNotifier({"NOTIFY_SOCKET": path})
        svc.startService()
        self.assertTrue(server.recv(1024).startswith(b"READY=1\nMAINPID="))
        svc.stopService()
        self.assertEqual(server.recv(1024), b"STOPPING=1")
        self.assertFalse(sdnotify.notify("READY=1", {}))
        self.assertFalse(sdnotify.notify("READY=1", {"NOTIFY_SOCKET": path + ".missing"}))
