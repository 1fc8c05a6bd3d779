"""Start-up imports only what the configured features need (issue #22: idle RSS).

A gateway with the embedded defaults (no config file, no providers, no channels, no cron jobs,
mDNS off) is started as ``twistd -n openclaw`` in a child process; once its port accepts, the
child writes the names in ``sys.modules`` and stops.  Each package below is loaded later, by
the feature that needs it; importing one at start-up again costs resident memory for every
gateway (croniter ~0.9 MiB, pyjson5 ~1.2 MiB, prometheus_client ~1.1 MiB, treq ~0.9 MiB).
This asserts on imports, never on an RSS figure (the bench's ``startup`` scenario measures
that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.support.loopback import free_port
from tests.support.paths import REPO
from tests.support.tmp import fresh_dir

# module -> what loads it
LATER = {
    "croniter": "the first cron expression compiled (automation/cronexpr.py)",
    "dateutil": "croniter",
    "zoneinfo": "a cron expression, or a usage range in a named time zone (agent/costs.py)",
    "pyjson5": "a config file (config/settings.py) or config.patch editing one",
    "openclaw_tw.config.json5_edit": "config.patch editing a config file",
    "prometheus_client": "the first /metrics scrape or rare metric event (observe/metrics.py)",
    "treq": "an HTTP model provider, Telegram or Matrix",
    "openclaw_tw.httpclient": "an HTTP model provider, Telegram or Matrix",
    "openclaw_tw.agent.openai": "an OpenAI-compatible model provider",
    "openclaw_tw.web.responses": "/v1/responses, once enabled (web/root.py)",
    "openclaw_tw.web.chat_completions": "/v1/chat/completions, once enabled (web/root.py)",
    "twisted.words.protocols": "an IRC channel account",
    "openclaw_tw.channels.irc": "an IRC channel account",
    "openclaw_tw.channels.telegram": "a Telegram channel account",
    "openclaw_tw.channels.matrix": "a Matrix channel account",
    "zeroconf": "mDNS (discovery.mdns.mode, off by default)",
    "ifaddr": "interface addresses: TLS or mDNS, or presence, with a wildcard bind",
    "twisted.protocols.haproxy": "sockets passed by systemd (the systemd: endpoint plugin)",
    "hypothesis": "nothing: a test dependency",
    "playwright": "nothing: a test dependency",
}

# The child: twistd as `make run` starts it; a probe connects every 50 ms until the port
# accepts, lets the reactor settle the rest of the start-up, then writes sys.modules and stops.
CHILD = """
import json, socket, sys
from twisted.internet import reactor, task

out, port = sys.argv[1], int(sys.argv[2])

def probe():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return
    poll.stop()
    reactor.callLater(0.5, dump)

def dump():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
    reactor.stop()

poll = task.LoopingCall(probe)
reactor.callWhenRunning(poll.start, 0.05)
sys.argv = ["twistd", *sys.argv[3:]]
from twisted.scripts.twistd import run
run()
"""


class StartupImports(SynchronousTestCase):
    def test_defaults_load_no_optional_feature_package(self) -> None:
        home = fresh_dir(self)
        out = home / "modules.json"
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENCLAW_", "PYTHON"))}
        env.update(PYTHONPATH=str(REPO), HOME=str(home))
        argv = [sys.executable, "-c", CHILD, str(out), str(port), "-n", "--pidfile=",
                "openclaw", "--port", str(port), "--token", "t" * 32,
                "--state-dir", str(home / "state")]
        proc = subprocess.run(argv, env=env, cwd=str(home), capture_output=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        log = (proc.stdout + proc.stderr).decode(errors="replace")[-4000:]
        self.assertEqual(proc.returncode, 0, log)
        self.assertTrue(out.exists(), log)
        modules = set(json.loads(out.read_text()))
        self.assertIn("openclaw_tw.app", modules)  # the gateway was built and served
        loaded = {name: why for name, why in LATER.items()
                  if any(m == name or m.startswith(name + ".") for m in modules)}
        self.assertEqual(loaded, {}, "imported at start-up (module: what needs it)")
