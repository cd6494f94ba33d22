"""The bot's targets while its API is abused (issue 16): a paper bot trading at 40 bars/s
meets one flood at a time from a client with no token, and we measure

* kill flag -> exited (target p99 < 1 s) and SIGTERM -> exited 0 (target < 2 s) during it;
* bar processing p99 during it, against the same bot idle (target within 2x);
* ``/api/status`` answered (with the token) during it.

Floods (all to 127.0.0.1, bounded in count and time):

* ``body``: 48 MB request bodies to ``POST /api/kill`` with no token, 4 senders in a loop;
* ``halfopen``: 1,100 connections that send half a request header and stay;
* ``streams``: 200 dashboard event streams opened (at most 32 are served);
* ``metrics``: 8 clients scraping ``/metrics`` in a loop (keep-alive);
* ``metrics-cold``: the same with a new client for every request (httpx.get), which spends
  nearly two cores of its own: a CPU hog on the bot's machine as much as a flood.

``--nice N`` runs the bot at nice N, as the systemd units' ``Nice=`` does.

Usage: python bench/api_abuse.py [--runs N] [--floods body,halfopen,streams,metrics,metrics-cold]
       [--pin] [--nice N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.botproc import Bot  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FLOOD_SECONDS = 4.0  # the flood runs this long before the kill or stop


class Flood:
    """Runs ``one`` in ``workers`` threads until stopped (each bounded in time)."""

    def __init__(self, workers: int, one: Callable[[threading.Event], None]) -> None:
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(one,), daemon=True) for _ in range(workers)
        ]

    def _loop(self, one: Callable[[threading.Event], None]) -> None:
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                one(self.stop)
            except (httpx.HTTPError, OSError):
                time.sleep(0.05)

    def __enter__(self) -> Flood:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


def body_flood(url: str) -> Flood:
    blob = b"[" * 48_000_000

    local = threading.local()  # one client (connection pool) a thread: an efficient sender

    def one(stop: threading.Event) -> None:
        if not hasattr(local, "c"):
            local.c = httpx.Client(timeout=10)
        local.c.post(url + "/api/kill", content=blob)

    return Flood(4, one)


def halfopen_flood(url: str, port: int) -> Flood:
    held: list[socket.socket] = []

    def one(stop: threading.Event) -> None:
        while len(held) < 1100 and not stop.is_set():
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            held.append(c)
        stop.wait(0.5)
        if stop.is_set():
            for c in held:
                c.close()

    flood = Flood(1, one)
    return flood


def streams_flood(url: str) -> Flood:
    opened = [0]

    def one(stop: threading.Event) -> None:
        if opened[0] >= 200:
            stop.wait(0.5)
            return
        opened[0] += 1
        with httpx.stream("GET", url + "/api/dashboard/stream", timeout=30) as r:
            if r.status_code != 200:
                stop.wait(1.0)
                return
            for _ in r.iter_lines():
                if stop.is_set():
                    return

    return Flood(200, one)


def metrics_flood(url: str) -> Flood:
    local = threading.local()  # keep-alive: each request costs the client little

    def one(stop: threading.Event) -> None:
        if not hasattr(local, "c"):
            local.c = httpx.Client(timeout=10)
        local.c.get(url + "/metrics")

    return Flood(8, one)


def metrics_cold_flood(url: str) -> Flood:
    """A client that pays dearly for each request (a new client, TLS context and connection
    every time: ~1.8 cores of its own on this machine) — a CPU hog beside the bot as much as
    a flood."""

    def one(stop: threading.Event) -> None:
        httpx.get(url + "/metrics", timeout=10)

    return Flood(8, one)


def make_flood(name: str, bot: Bot) -> Flood:
    if name == "body":
        return body_flood(bot.url)
    if name == "halfopen":
        return halfopen_flood(bot.url, bot.port)
    if name == "streams":
        return streams_flood(bot.url)
    if name == "metrics-cold":
        return metrics_cold_flood(bot.url)
    return metrics_flood(bot.url)


def one_run(
    flood_name: str | None, how: str, pin: bool = False, nice: int = 0
) -> tuple[float, int, float, int, int]:
    """(seconds flag/SIGTERM -> exited, exit code, bar p99 ms over the flood, status checks
    answered 200, status checks tried)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        bot = Bot(home, env={"SOLBOT_STRATEGY": "ladder", "SOLBOT_API_TOKEN": TOKEN}, speed=40)
        if pin:  # the bot on the first core, this client (the flood) on the rest
            os.sched_setaffinity(bot.proc.pid, {0})
        if nice:  # as the units' Nice=: every thread of the bot (a thread's nice is its own)
            for tid in os.listdir(f"/proc/{bot.proc.pid}/task"):
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        try:
            bot.wait_ready(30)
            bot.wait_until(bot.open_orders, 30, "a resting order")
            ok = tried = 0
            flood = make_flood(flood_name, bot) if flood_name else None
            if flood is not None:
                flood.__enter__()
            try:
                until = time.monotonic() + FLOOD_SECONDS
                while time.monotonic() < until:
                    tried += 1
                    with contextlib.suppress(httpx.HTTPError):
                        r = httpx.get(bot.url + "/api/status", headers=AUTH, timeout=2)
                        ok += int(r.status_code == 200)
                    time.sleep(0.2)
                perf = httpx.get(bot.url + "/api/perf?last=150", headers=AUTH, timeout=5).json()
                t0 = time.perf_counter()
                if how == "kill":
                    (home / "data" / "kill-switch.flag").write_text("bench\n")
                else:
                    bot.signal(signal.SIGTERM)
                code = bot.wait_exit(30)
                elapsed = time.perf_counter() - t0
            finally:
                if flood is not None:
                    flood.__exit__()
        finally:
            bot.kill_hard()
        return elapsed, code, float(perf["p99_ms"]), ok, tried


def main() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # as the units' LimitNOFILE=65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(65536, hard)), hard))
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--floods", default="body,halfopen,streams,metrics,metrics-cold")
    ap.add_argument(
        "--pin", action="store_true", help="bot on core 0, the flooding client on the others"
    )
    ap.add_argument(
        "--nice", type=int, default=0, help="the bot's nice (the units' Nice=; below 0: root)"
    )
    args = ap.parse_args()
    if args.pin:
        os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.runs} runs per flood and kind, "
        f"{FLOOD_SECONDS:.0f} s of flood before each kill or stop"
        + ("; bot pinned to core 0, client to the others" if args.pin else "")
        + (f"; bot at nice {args.nice}" if args.nice else "")
    )
    idle = [one_run(None, "kill", args.pin, args.nice)[2] for _ in range(args.runs)]
    idle_p99 = float(np.median(idle))
    print(f"idle: bar p99 {idle_p99:.2f} ms (median of {args.runs} runs)")
    for name in args.floods.split(","):
        for how, target in (("kill", 1.0), ("stop", 2.0)):
            runs = [one_run(name, how, args.pin, args.nice) for _ in range(args.runs)]
            times = np.array([r[0] for r in runs]) * 1000
            wrong = sum(r[1] != (10 if how == "kill" else 0) for r in runs)
            bar = float(np.median([r[2] for r in runs]))
            ok, tried = sum(r[3] for r in runs), sum(r[4] for r in runs)
            met = np.percentile(times, 99) < target * 1000 and wrong == 0 and bar < 2 * idle_p99
            print(
                f"{name:9s} {how}: exit p50 {np.percentile(times, 50):.0f} ms, p99 "
                f"{np.percentile(times, 99):.0f} ms (target {target * 1000:.0f}); wrong exit "
                f"{wrong}; bar p99 {bar:.2f} ms ({bar / idle_p99:.2f}x idle); /api/status "
                f"{ok}/{tried} answered; {'met' if met and ok == tried else 'NOT met'}"
            )


if __name__ == "__main__":
    main()
