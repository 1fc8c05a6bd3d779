"""A slow OpenAI-compatible ``/v1/chat/completions`` stream on loopback, in a thread, for
synchronous tests (the browser tier): each answer is ``CHUNKS`` words, one every
``interval_s`` seconds, so a client has time to abort a run.  Bounded: one answer is at most
``CHUNKS`` chunks, and a client that goes away ends it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNKS = 60
MODEL = "slow-model"


class SlowOpenAI:
    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 -- the http.server API
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                self.rfile.read(length)
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    for i in range(CHUNKS):
                        self.event({"content": f"word{i} "}, None)
                        time.sleep(outer.interval_s)
                    self.event({}, "stop")
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except OSError:  # the gateway cancelled the request (abort)
                    return

            def event(self, delta: dict[str, Any], finish: str | None) -> None:
                chunk = {"id": "chatcmpl-slow", "object": "chat.completion.chunk",
                         "created": int(time.time()), "model": MODEL,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SlowOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def config(self) -> dict[str, Any]:
        """The gateway config selecting this model."""
        return {
            "models": {"providers": {"slow": {
                "baseUrl": f"http://127.0.0.1:{self.port}/v1", "apiKey": "sk-slow",
                "api": "openai-completions", "models": [{"id": MODEL}]}}},
            "agents": {"defaults": {"model": {"primary": f"slow/{MODEL}"}}},
        }
