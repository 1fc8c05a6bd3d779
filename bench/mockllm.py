"""A loopback OpenAI-compatible mock model for the chat scenario (``python -m bench.mockllm PORT``).

``POST /v1/chat/completions`` answers at once: a streamed reply (SSE, three content chunks and
a usage chunk) when ``stream`` is true, else one JSON completion; ``GET /v1/models`` lists
the one model.  Stdlib only; runs as its own process so neither gateway pays for it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

MODEL = "bench-model"
REPLY = ["Hello ", "from the ", "mock model."]


def _chunk(cid: str, created: int, model: str, delta: dict, finish: str | None = None,
           usage: dict | None = None) -> bytes:
    body: dict = {"id": cid, "object": "chat.completion.chunk", "created": created,
                  "model": model, "choices": [] if usage else
                  [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (ln.partition(":") for ln in lines[1:] if ln)}
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                    data = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += data[:-2]
            if method == "GET" and path.rstrip("/").endswith("/models"):
                payload = json.dumps({"object": "list", "data": [
                    {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]})
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload.encode()))
                await writer.drain()
                continue
            if method != "POST" or "completions" not in path:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                continue
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                req = {}
            model = req.get("model") or MODEL
            cid = f"chatcmpl_{uuid.uuid4().hex}"
            created = int(time.time())
            usage = {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}
            if req.get("stream"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
                writer.write(_chunk(cid, created, model, {"role": "assistant", "content": ""}))
                for part in REPLY:
                    writer.write(_chunk(cid, created, model, {"content": part}))
                writer.write(_chunk(cid, created, model, {}, "stop"))
                writer.write(_chunk(cid, created, model, {}, usage=usage))
                writer.write(b"data: [DONE]\n\n")
                await writer.drain()
                break
            payload = json.dumps({"id": cid, "object": "chat.completion", "created": created,
                                  "model": model, "choices": [{"index": 0, "message": {
                                      "role": "assistant", "content": "".join(REPLY)},
                                      "finish_reason": "stop"}], "usage": usage}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=64 * 2**20)
    print(f"mockllm listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def provider_config(port: int) -> dict:
    """The config (the real gateway's keys, which ours reads too) selecting the mock model."""
    return {
        "models": {"mode": "merge", "providers": {"mock": {
            "baseUrl": f"http://127.0.0.1:{port}/v1", "apiKey": "bench-mock",
            "api": "openai-completions",
            "models": [{"id": MODEL, "name": "Bench mock", "reasoning": False,
                        "input": ["text"], "contextWindow": 128000, "maxTokens": 4096,
                        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}}]}}},
        "agents": {"defaults": {"model": {"primary": f"mock/{MODEL}"}}},
    }


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
