"""Recording a live session's exchange answers (``SOLBOT_EXCHANGE_RECORD=FILE``), so a testnet
rehearsal leaves new fixtures behind: one JSON line per answer with the method, the endpoint,
the request's parameters (``signature`` and ``timestamp`` removed; the API key travels in a
header and is never written), the status and the raw body. The replay and contract tests read
the same shapes (``../shared/fixtures/binance-recorded``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DROP = ("signature", "timestamp")


def _params(text: str) -> dict[str, str]:
    return {k: v for k, v in parse_qsl(text or "", keep_blank_values=True) if k not in DROP}


def install(exchange: Any, path: Path) -> None:
    """Append every answer ``exchange`` receives to ``path`` (JSON lines, mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    answered = exchange.on_rest_response

    def on_rest_response(
        code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any
    ) -> Any:
        parts = urlsplit(str(url))
        request_body = rest[1] if len(rest) > 1 and isinstance(rest[1], str) else ""
        line = {
            "at": int(time.time() * 1000),
            "method": method,
            "path": parts.path,
            "params": {**_params(parts.query), **_params(request_body)},
            "status": code,
            "weight": (headers or {}).get("x-mbx-used-weight-1m")
            or (headers or {}).get("X-MBX-USED-WEIGHT-1M"),
            "body": body,
        }
        with path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        return answered(code, reason, url, method, headers, body, *rest)

    exchange.on_rest_response = on_rest_response
