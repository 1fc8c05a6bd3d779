"""The real TUI (`openclaw tui`) holds a conversation with our gateway, driven in tmux.

As a person would: type, read the screen. A stall proxy between the TUI and the gateway
makes it read each fast run in one go (as when it is busy rendering), which used to leave it
"agent is busy" for good after the first reply. Checked: several turns in a row go idle,
Esc aborts a streaming reply, `/new` starts a session and it answers there too.  With a model
that reports usage (a fake OpenAI server configured as a provider), the footer shows the last
run's prompt size against the model's context window, as against the real gateway
(`tokens 10/128k (0%)` there with the bench mock).
Skips without the reference CLI or tmux.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.loopback import start_gateway, stop_gateway
from tests.support.reference_cli import reference_launcher
from tests.support.stall_proxy import StallProxyFactory

TOKEN = "tui-secret"
WAIT_S = 60


class TUIHarness(unittest.TestCase):
    """Our gateway on a loopback port, the real TUI in a private tmux server (no tests)."""

    timeout = 180
    config: Callable[[], dict[str, Any]] | None = None  # the config file (None: offline model)

    def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        self.tmux_bin = shutil.which("tmux")
        if self.tmux_bin is None:
            raise unittest.SkipTest("tmux not installed (apt-get install -y tmux; .ci/run does)")
        self.launcher = launcher
        start_gateway(self, TOKEN, self.config)
        self.app.runtime.startService()
        self.proxy = reactor.listenTCP(0, StallProxyFactory(self.port_number, 0.15),
                                       interface="127.0.0.1")
        self.server = f"openclaw-tw-tui-{os.getpid()}"
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)

    async def tearDown(self) -> None:
        await self.tmux("kill-server", check=False)
        await self.proxy.stopListening()
        await self.app.runtime.stopService()
        await defer.gatherResults([defer.maybeDeferred(p.close) for p in
                                   self.app.runtime.registry.providers.values()
                                   if hasattr(p, "close")])
        await stop_gateway(self)

    async def tmux(self, *args: str, check: bool = True) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "TERM": "xterm-256color"}
        out, err, code = await getProcessOutputAndValue(
            self.tmux_bin, ("-L", self.server, *args), env=env, reactor=reactor)
        if check and code != 0:
            self.fail(f"tmux {' '.join(args)}: exit {code}: {err.decode(errors='replace')}")
        return out.decode("utf-8", "replace")

    async def screen(self) -> str:
        return await self.tmux("capture-pane", "-p", "-t", "tui")

    async def wait_for(self, pattern: str, what: str, seconds: float = WAIT_S) -> str:
        rx = re.compile(pattern, re.M)
        for _ in range(int(seconds * 4)):  # bounded: poll the screen every 250 ms
            text = await self.screen()
            if rx.search(text):
                return text
            await task.deferLater(reactor, 0.25, lambda: None)
        self.fail(f"{what}: nothing within {seconds:.0f}s; the screen:\n{await self.screen()}")

    async def idle(self, after: str) -> None:
        text = await self.wait_for(r" \| idle", f"idle after {after!r}", 15)
        self.assertNotIn("agent is busy", text)

    async def say(self, message: str) -> None:
        await self.tmux("send-keys", "-t", "tui", message, "Enter")

    async def start_tui(self, message: str) -> None:
        command = (f"NO_COLOR=1 HOME={shlex.quote(self.home)} {shlex.quote(self.launcher)} tui "
                   f"--url ws://127.0.0.1:{self.proxy.getHost().port} --token {TOKEN} "
                   f"--message {shlex.quote(message)}")
        await self.tmux("new-session", "-d", "-s", "tui", "-x", "160", "-y", "45", command)



class RealTUI(TUIHarness):
    async def test_a_conversation_abort_and_new_session(self) -> None:
        await self.start_tui("count to 3")
        await self.wait_for(r"^1, 2, 3\.", "the reply to 'count to 3'", 90)
        # the offline model reports no usage: no token count, only its context window
        await self.wait_for(r"offline-echo \| deliver:off \| tokens \?/8\.2k\s*$",
                            "the footer without a token count")
        await self.idle("count to 3")
        for message, reply in (("count to 10", r"^1, 2, 3, 4, 5, 6, 7, 8, 9, 10\."),
                               ("hello again", r"You said: hello again")):
            await self.say(message)
            await self.wait_for(reply, f"the reply to {message!r}")
            await self.idle(message)
        await self.tmux("send-keys", "-t", "tui", "count to 300", "Enter", "Escape")
        await self.wait_for(r"run aborted", "Esc aborting the streaming reply", 15)
        await self.say("/new")
        await self.wait_for(r"new session: agent:main:", "/new", 15)
        await self.say("count to 4")
        await self.wait_for(r"^1, 2, 3, 4\.", "the reply in the new session")
        await self.idle("count to 4 in the new session")


class RealTUIWithUsage(TUIHarness):
    """A model that reports usage: the footer shows the last run's prompt size (not every
    run's added up) against the context window the config declares."""

    def config(self) -> dict[str, Any]:
        self.model = FakeOpenAI(reactor, api_key="sk-fake").start()
        self.addCleanup(self.model.stop)
        return {"models": {"providers": {"fake": {
            "baseUrl": self.model.base_url, "apiKey": "sk-fake", "api": "openai-completions",
            "models": [{"id": "fake-model", "contextWindow": 128000},
                       {"id": "small-model", "contextWindow": 64000}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}}}

    async def test_the_footer_shows_tokens_and_the_context_window(self) -> None:
        self.model.enqueue(text="Hello from the fake model.", usage=(30000, 6))
        self.model.enqueue(text="Second reply.", usage=(12000, 3))
        await self.start_tui("hello")
        await self.wait_for(r"^Hello from the fake model\.", "the reply to 'hello'", 90)
        await self.wait_for(r"fake-model \| deliver:off \| tokens 30k/128k \(23%\)\s*$",
                            "the footer with the first run's tokens")
        await self.idle("hello")
        await self.say("again")
        await self.wait_for(r"^Second reply\.", "the reply to 'again'")
        await self.wait_for(r"fake-model \| deliver:off \| tokens 12k/128k \(9%\)\s*$",
                            "the footer with the second run's tokens")
        await self.idle("again")

    async def test_switch_model_then_history_after_a_reconnect(self) -> None:
        """`/model` switches the session's model (the footer and the next request say so);
        a TUI started again finds the conversation's history."""
        self.model.behave(text="Plain reply.", usage=(100, 2))
        await self.start_tui("first message")
        await self.wait_for(r"^Plain reply\.", "the reply to 'first message'", 90)
        await self.idle("first message")
        await self.say("/model fake/small-model")
        await self.wait_for(r"model set to fake/small-model", "/model", 15)
        await self.say("second message")
        # the footer names the new model as soon as /model lands, before the second turn
        # runs: wait for the second reply itself, then for the footer and idle
        await self.wait_for(r"^second message[\s\S]*^Plain reply\.", "the second reply")
        await self.wait_for(r"small-model \| deliver:off \| tokens 100/64k", "the new model")
        await self.idle("second message")
        self.assertEqual(len(self.model.requests), 2)
        self.assertEqual(self.model.requests[-1].body["model"], "small-model")
        await self.tmux("kill-session", "-t", "tui")
        await self.tmux("new-session", "-d", "-s", "tui", "-x", "160", "-y", "45",
                        f"NO_COLOR=1 HOME={shlex.quote(self.home)} "
                        f"{shlex.quote(self.launcher)} tui --url "
                        f"ws://127.0.0.1:{self.proxy.getHost().port} --token {TOKEN}")
        text = await self.wait_for(r"^second message", "the history after a reconnect", 60)
        self.assertIn("first message", text)
        self.assertEqual(len(re.findall(r"^Plain reply\.", text, re.M)), 2, text)

