"""The API's own cost per request, in-process: a built paper bot's app answered through
httpx's ASGI transport (no sockets, no server, no other process competing for the cores),
so two versions of the code can be compared on a noisy machine. Prints the min and median
microseconds per request of 5 rounds of N requests for each path.

To compare with an older commit: ``git worktree add /tmp/old <commit>`` and run this same
file with ``PYTHONPATH=/tmp/old/src`` (it builds the bot with either the composition root of
today, ``solbot.bot.build_bot``, or the ``BotService`` of before the split).

Usage: python bench/api_inprocess.py [--requests N] [--label NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PATHS = ("/api/status", "/api/account", "/metrics")


def build(home: Path) -> Any:
    from solbot.api.app import create_app
    from solbot.runtime.config import load_settings

    settings = load_settings(home, environ={})
    try:
        from solbot.bot import build_bot
    except ImportError:  # the code before the BotService split (issue 15)
        from solbot.runtime.service import BotService

        old = BotService(settings)  # type: ignore[call-arg]
        old.build()
        return create_app(old)
    bot = build_bot(settings)
    bot.build()
    assert bot.view is not None
    return create_app(bot.view)


async def measure(n: int, label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            for path in PATHS:
                for _ in range(200):  # warm up
                    await c.get(path)
                rounds = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        r = await c.get(path)
                    rounds.append((time.perf_counter() - t0) / n * 1e6)
                print(
                    f"{label} {path}: {r.status_code}, µs per request min {min(rounds):.0f}, "
                    f"median {statistics.median(rounds):.0f}"
                )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--label", default="this code")
    args = ap.parse_args()
    asyncio.run(measure(args.requests, args.label))


if __name__ == "__main__":
    main()
