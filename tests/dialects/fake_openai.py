"""A tiny OpenAI-compatible chat completions server on loopback, for the real-client tests.

It answers ``POST /v1/chat/completions`` with fixed usage that includes cached prompt tokens
and reasoning tokens, plainly or as a server-sent-event stream whose last chunk carries the
usage with ``"choices": []`` (as OpenAI sends it with ``stream_options.include_usage``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class FakeUsage:
    """What the fake server reports for one completion."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int

    def as_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


class FakeOpenAI:
    """Serves completions of ``model`` with ``usage``; ``requests`` counts what it answered."""

    def __init__(self, model: str, usage: FakeUsage) -> None:
        self.model = model
        self.usage = usage
        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests += 1
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                if body.get("stream"):
                    self._stream()
                else:
                    self._reply(json.dumps(fake._completion()).encode(), "application/json")

            def _reply(self, data: bytes, media: str) -> None:
                self.send_response(200)
                self.send_header("content-type", media)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self) -> None:
                chunks = [
                    fake._chunk({"role": "assistant", "content": "Hel"}, None),
                    fake._chunk({"content": "lo"}, "stop"),
                    {**fake._chunk({}, None), "choices": [], "usage": fake.usage.as_json()},
                ]
                data = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks)
                self._reply(data + b"data: [DONE]\n\n", "text/event-stream")

        return Handler

    def _completion(self) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{self.requests}",
            "object": "chat.completion",
            "created": 1_760_000_000,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello"},
                    "finish_reason": "stop",
                }
            ],
            "usage": self.usage.as_json(),
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{self.requests}",
            "object": "chat.completion.chunk",
            "created": 1_760_000_000,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
