"""The runbook's post-deploy smoke tests as code.

* TST-085 (30-second stop test): stop the bot (``systemctl stop UNIT`` or SIGTERM to a pid),
  require it to be gone within the limit, check the API no longer answers, start it again
  (``systemctl start UNIT`` or a given command) and require ``/api/status`` to be healthy.
* OPS-009 (PnL = 0): ``/api/account``'s ``dailyPnL`` must be exactly 0 right after a deploy;
  otherwise fail, and with auto-stop engage the kill switch (the runbook's method A) or stop
  the unit.

Each returns a ``Result`` (passed, one-line summary, the steps taken) for the CLI to print and
report to Discord.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx

from solbot.domain.errors import ConfigurationError
from solbot.infra.killswitch import KillFlag


class SmokeUnreachable(Exception):
    """The bot's API could not be reached where the test needs it (exit 4)."""


@dataclass(slots=True)
class Result:
    name: str
    passed: bool = False
    summary: str = ""
    steps: list[str] = field(default_factory=list)

    def step(self, text: str) -> None:
        self.steps.append(text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own child that has exited) counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _healthy(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/status", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/api/status", timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def stop_test(
    url: str,
    pid: int | None = None,
    unit: str | None = None,
    restart: str | None = None,
    limit: float = 30.0,
    health_timeout: float = 60.0,
) -> Result:
    """TST-085. Exactly one of ``pid`` / ``unit`` says what to stop."""
    r = Result("TST-085 stop test")
    if (pid is None) == (unit is None):
        raise ConfigurationError("give exactly one of --pid and --unit")
    if not _healthy(url, 5.0):
        raise SmokeUnreachable(f"the bot at {url} is not healthy before the stop test")
    r.step(f"healthy before: {url}/api/status 200")
    t0 = time.monotonic()
    if unit is not None:
        subprocess.run(["systemctl", "stop", unit], check=True, timeout=limit + 5)
        active = subprocess.run(
            ["systemctl", "is-active", "--quiet", unit], check=False, timeout=10
        )
        stopped = active.returncode != 0
    else:
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        while _alive(pid) and time.monotonic() - t0 < limit:
            time.sleep(0.05)
        stopped = not _alive(pid)
    took = time.monotonic() - t0
    if not stopped:
        r.summary = f"still running {limit:.0f} s after the stop"
        r.step(r.summary)
        return r
    r.step(f"stopped in {took:.2f} s (limit {limit:.0f} s)")
    if _answers(url):
        r.summary = "the API still answers after the stop"
        r.step(r.summary)
        return r
    r.step("API no longer answers")
    if unit is not None:
        subprocess.run(["systemctl", "start", unit], check=True, timeout=60)
        r.step(f"systemctl start {unit}")
    elif restart:
        subprocess.Popen(
            shlex.split(restart),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        r.step(f"restarted: {restart}")
    else:
        r.passed, r.summary = True, f"stopped in {took:.2f} s; no restart asked for"
        return r
    if not _healthy(url, health_timeout):
        r.summary = f"not healthy {health_timeout:.0f} s after the restart"
        r.step(r.summary)
        return r
    r.step("healthy after the restart")
    r.passed, r.summary = True, f"stopped in {took:.2f} s, restarted and healthy"
    return r


def pnl_zero(
    url: str, auto_stop: bool = False, kill_flag: KillFlag | None = None, unit: str | None = None
) -> Result:
    """OPS-009. ``auto_stop`` on failure: stop ``unit``, else create ``kill_flag``."""
    r = Result("OPS-009 PnL=0 smoke test")
    try:
        resp = httpx.get(f"{url}/api/account", timeout=5.0)
        resp.raise_for_status()
        raw = resp.json()["dailyPnL"]
        daily = Decimal(str(raw))
    except httpx.HTTPError as exc:
        raise SmokeUnreachable(f"{url}/api/account: {type(exc).__name__}") from None
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise SmokeUnreachable(f"{url}/api/account: no numeric dailyPnL in the answer") from None
    r.step(f"dailyPnL = {daily}")
    if daily == 0:
        r.passed, r.summary = True, "dailyPnL is 0"
        return r
    r.summary = f"dailyPnL is {daily}, not 0"
    if auto_stop:
        if unit is not None:
            subprocess.run(["systemctl", "stop", unit], check=False, timeout=60)
            r.step(f"auto-stop: systemctl stop {unit}")
        elif kill_flag is not None:
            kill_flag.engage(f"OPS-009 auto-stop: {r.summary}")
            r.step(f"auto-stop: kill switch engaged ({kill_flag})")
        r.summary += "; auto-stopped"
    return r
