"""A local Discord-webhook receiver: records every POSTed JSON body; can answer 429 first."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, rate_limit_first: int = 0, retry_after: float = 0.2) -> None:
        self.messages: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self.times: list[float] = []
        self.limited = rate_limit_first
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                import time

                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                rx.times.append(time.monotonic())
                rx.queries.append(self.path)
                if rx.limited > 0:
                    rx.limited -= 1
                    self._send(
                        429,
                        {
                            "message": "You are being rate limited.",
                            "retry_after": retry_after,
                            "global": False,
                        },
                    )
                    return
                rx.messages.append(json.loads(body))
                self._send(200, {"id": str(len(rx.messages))})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/webhooks/123/secret-token-abcdef"

    def titles(self) -> list[str]:
        return [e["title"] for m in self.messages for e in m.get("embeds", [])]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
