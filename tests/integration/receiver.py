"""A local Discord-webhook receiver: records every POSTed JSON body; can answer 429 first."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.integration.http_util import JsonHandler, LoopbackServer


class Receiver(LoopbackServer):
    def __init__(self, rate_limit_first: int = 0, retry_after: float = 0.2) -> None:
        self.messages: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self.times: list[float] = []
        self.limited = rate_limit_first
        rx = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                rx.times.append(time.monotonic())
                rx.queries.append(self.path)
                if rx.limited > 0:
                    rx.limited -= 1
                    self.send_json(
                        {
                            "message": "You are being rate limited.",
                            "retry_after": retry_after,
                            "global": False,
                        },
                        429,
                    )
                    return
                rx.messages.append(json.loads(body))
                self.send_json({"id": str(len(rx.messages))})

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"{self.origin}/api/webhooks/123/secret-token-abcdef"

    def titles(self) -> list[str]:
        return [e["title"] for m in self.messages for e in m.get("embeds", [])]
