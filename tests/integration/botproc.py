"""Run ``solbot run`` as a real process on loopback, with bounded waits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def solbot_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from solbot.cli import main; main()", *args]


def run_solbot(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """One ``solbot`` command on ``home``, to completion (bounded), output captured."""
    return subprocess.run(
        solbot_cmd(*args),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SOLBOT_HOME": str(home), **env},
    )


class Bot:
    def __init__(
        self,
        home: Path,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
        speed: float = 40.0,
    ) -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (home / "proc.log").open("ab")
        full_env = {
            **os.environ,
            "SOLBOT_HOME": str(home),
            "SOLBOT_PORT": str(self.port),
            "SOLBOT_SPEED": str(speed),
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            solbot_cmd("run", *args),
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=home,
        )

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5.0, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=5.0, **kw)

    def wait_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited with {self.proc.returncode}: {self.output()}")
            try:
                r = self.get("/api/status")
                if r.status_code == 200:
                    return dict(r.json())
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"bot not ready in {timeout} s: {self.output()}")

    def wait_until(self, pred: Any, timeout: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = pred()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.output()[-2000:]}")

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head = line.split(" ")[0]
                if head == name or head.startswith(name + "{"):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def open_orders(self) -> list[dict[str, Any]]:
        return list(self.get("/api/orders", params={"open_only": "true"}).json())

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 10.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill_hard(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self.log.closed:
            self.log.close()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.home / "proc.log").read_text(errors="replace")


def db_rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    con = sqlite3.connect(home / "data" / "solbot.sqlite")
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def dumps(x: Any) -> str:
    return json.dumps(x, indent=1, default=str)
