"""``make pipeline`` / ``solbot rehearse``: the runbook's whole deployment flow on this
machine, in a temporary root, with the same commands the CI/CD workflows run.

deploy staging → start it as its unit would → TST-085 → OPS-009 → deploy production →
start → TST-085 → OPS-009 → a bad production release (injected: it trades at once) →
OPS-009 fails → auto-stop (kill switch) → Discord message at a local receiver → rollback →
the previous release healthy again.

There is no systemd here, so "start" reads the rendered unit (WorkingDirectory, Environment,
EnvironmentFile, ExecStart) and starts that process; stops are real SIGTERMs. Discord is a
local receiver on 127.0.0.1. ``--break STEP`` sabotages one step on purpose: the rehearsal
must then fail there, naming it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from solbot.domain.errors import ConfigurationError
from solbot.infra.instance import holder
from solbot.runtime.config import read_env_file

# a configuration that trades at once: what the injected bad release ships
# (1-minute bars: a trading day lasts 14 s at this speed, so the PnL it makes is not reset
# to 0 by a new day between the check's read and the step's)
TRADES_AT_ONCE = "SOLBOT_STRATEGY=ladder\nSOLBOT_SPEED=100\nSOLBOT_TIMEFRAME=1m\n"


class StepFailed(Exception):
    pass


class Discord:
    """A local Discord-webhook receiver: records every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with suppress(ValueError):
                    rx.messages.append(json.loads(body))
                data = b'{"id": "1"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/webhooks/1/rehearsal"

    def titles(self) -> list[str]:
        return [e.get("title", "") for m in self.messages for e in m.get("embeds", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    name: str  # staging / production
    unit: str
    port: int
    app: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Rehearsal:
    root: Path
    repo: Path
    deps_from: Path
    breaks: set[str]
    say: Callable[[str], None]
    discord: Discord = field(default_factory=Discord)
    envs: dict[str, Env] = field(default_factory=dict)
    blockers: list[socket.socket] = field(default_factory=list)  # --break start-*: a taken port

    # ------------------------------------------------------------------ helpers
    def solbot(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", "from solbot.cli import main; main()", *args]
        base = {k: v for k, v in os.environ.items() if not k.startswith("SOLBOT_")}
        return subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.repo,
            env={
                **base,
                "SOLBOT_DISCORD_WEBHOOK_URL": self.discord.url,
                "COLUMNS": "200",
                **(env or {}),
            },
        )

    def unit_env(self, e: Env) -> tuple[list[str], dict[str, str], Path]:
        """ExecStart, environment and working directory, as systemd would use them."""
        unit = self.root / "etc" / "systemd" / "system" / e.unit
        found: dict[str, list[str]] = {}
        for line in unit.read_text().splitlines():
            if "=" in line and not line.startswith(("#", "[")):
                k, _, v = line.partition("=")
                found.setdefault(k.strip(), []).append(v.strip())
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        for assignment in found.get("Environment", []):
            for pair in shlex.split(assignment):
                k, _, v = pair.partition("=")
                env[k] = v
        for path in found.get("EnvironmentFile", []):
            env.update(read_env_file(Path(path.lstrip("-"))))
        return shlex.split(found["ExecStart"][0]), env, Path(found["WorkingDirectory"][0])

    def start(self, e: Env) -> None:
        cmd, env, cwd = self.unit_env(e)
        log = (e.app / "logs" / "rehearsal-stdout.log").open("ab")
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        e.procs.append(proc)
        if not self.wait_healthy(e, 60):
            code = proc.poll()
            raise StepFailed(
                f"{e.name} not healthy within 60 s"
                + (f" (exited {code})" if code is not None else "")
            )

    def wait_healthy(self, e: Env, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{e.url}/api/status", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if e.procs and e.procs[-1].poll() is not None and holder(e.app / "data") is None:
                return False
            time.sleep(0.2)
        return False

    def stop(self, e: Env, timeout: float = 30) -> None:
        pid = holder(e.app / "data")
        if pid and pid > 0:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while holder(e.app / "data") is not None and time.monotonic() < deadline:
                time.sleep(0.1)
        for p in e.procs:
            if p.poll() is None:
                p.wait(timeout=timeout)

    def kill_all(self) -> None:
        for b in self.blockers:
            b.close()
        for e in self.envs.values():
            pid = holder(e.app / "data")
            if pid and pid > 0:
                os.kill(pid, signal.SIGKILL)
            for p in e.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=10)

    def check(self, r: subprocess.CompletedProcess[str], what: str) -> str:
        if r.returncode != 0:
            lines = (r.stderr.strip() or r.stdout.strip()).splitlines()
            raise StepFailed(f"{what}: exit {r.returncode}: {lines[-1] if lines else ''}")
        return r.stdout

    # ------------------------------------------------------------------ steps
    def deploy(self, e: Env, bad: bool = False) -> str:
        ref = "refs/heads/no-such-branch" if f"deploy-{e.name}" in self.breaks else "HEAD"
        out = self.check(
            self.solbot(
                "deploy",
                "--env",
                e.name,
                "--root",
                str(self.root),
                "--ref",
                ref,
                "--repo",
                str(self.repo),
                "--deps-from",
                str(self.deps_from),
                "--port",
                str(e.port),
            ),
            "solbot deploy",
        )
        version = out.split(f"deployed {e.name} ", 1)[1].split()[0]
        if bad:  # the injected failure: this release's configuration trades at once
            with (e.app / ".env").open("a") as f:
                f.write(TRADES_AT_ONCE)
        return f"release {version}"

    def start_step(self, e: Env) -> str:
        if f"start-{e.name}" in self.breaks:  # the port is taken by something else
            blocker = socket.socket()
            blocker.bind(("127.0.0.1", e.port))
            blocker.listen()
            self.blockers.append(blocker)
        if f"pnl-zero-{e.name}" in self.breaks:
            with (e.app / ".env").open("a") as f:
                f.write(TRADES_AT_ONCE)
        self.start(e)
        return f"{e.unit} healthy on {e.url}"

    def stop_test(self, e: Env) -> str:
        cmd, env, _cwd = self.unit_env(e)
        restart = "false" if f"stop-test-{e.name}" in self.breaks else shlex.join(cmd)
        pid = holder(e.app / "data")
        r = self.solbot(
            "smoke",
            "stop-test",
            "--url",
            e.url,
            "--pid",
            str(pid),
            "--restart",
            restart,
            env={**env, "SOLBOT_DISCORD_WEBHOOK_URL": self.discord.url},
        )
        out = self.check(r, "solbot smoke stop-test")
        return out.strip().splitlines()[-1]

    def pnl_zero(self, e: Env, expect_fail: bool = False) -> str:
        trading = expect_fail or f"pnl-zero-{e.name}" in self.breaks
        deadline = time.monotonic() + 60
        while True:
            r = self.solbot(
                "smoke", "pnl-zero", "--url", e.url, "--auto-stop", env={"SOLBOT_HOME": str(e.app)}
            )
            # a release that trades: its PnL may still be 0 at the first look (no fill yet, or
            # a new day just began); look again, bounded, until the smoke test sees it
            if not trading or r.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if not expect_fail:
            return self.check(r, "solbot smoke pnl-zero").strip().splitlines()[-1]
        if r.returncode != 1:
            raise StepFailed(f"OPS-009 should have failed on the bad release (exit {r.returncode})")
        deadline = time.monotonic() + 30
        while holder(e.app / "data") is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if holder(e.app / "data") is not None:
            raise StepFailed("auto-stop: the bot still runs 30 s after the kill switch")
        if not any("OPS-009" in t and "FAIL" in t for t in self.discord.titles()):
            raise StepFailed("no OPS-009 FAIL message reached Discord")
        return "OPS-009 failed as injected → kill switch → bot stopped → Discord told"

    def rollback(self, e: Env) -> str:
        to = ["--to", "19700101"] if "rollback" in self.breaks else []
        out = self.check(
            self.solbot("rollback", "--env", e.name, "--root", str(self.root), *to),
            "solbot rollback",
        )
        env_file = e.app / ".env"
        env_file.write_text(env_file.read_text().replace(TRADES_AT_ONCE, ""))
        self.check(self.solbot("kill", "--clear", env={"SOLBOT_HOME": str(e.app)}), "kill --clear")
        self.start(e)
        version = httpx.get(f"{e.url}/api/status", timeout=5).json()["version"]
        return out.strip().splitlines()[-2].strip() + f"; healthy again (solbot {version})"

    def doctor(self, e: Env) -> str:
        """`solbot doctor` on the deployed home: no check may fail (warnings are allowed:
        no Prometheus and no backup yet in a rehearsal)."""
        _cmd, env, _cwd = self.unit_env(e)
        if f"doctor-{e.name}" in self.breaks:  # secrets readable by everyone
            (e.app / ".env").chmod(0o644)
        r = self.solbot("doctor", "--home", str(e.app), env=env)
        failed = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL")]
        if r.returncode != 0 or failed:
            raise StepFailed(f"solbot doctor: {failed[0] if failed else r.stderr.strip()}")
        lines = [ln for ln in r.stdout.splitlines() if ln[:4] in ("ok  ", "warn")]
        warns = sum(ln.startswith("warn") for ln in lines)
        return f"{len(lines) - warns} checks ok, {warns} warnings"

    def stop_step(self, e: Env) -> str:
        self.stop(e)
        return f"{e.unit} stopped"

    def steps(self) -> Iterator[tuple[str, Callable[[], str]]]:
        stg, prod = self.envs["staging"], self.envs["production"]
        yield "deploy-staging", lambda: self.deploy(stg)
        yield "start-staging", lambda: self.start_step(stg)
        yield "stop-test-staging", lambda: self.stop_test(stg)
        yield "pnl-zero-staging", lambda: self.pnl_zero(stg)
        yield "stop-staging", lambda: self.stop_step(stg)
        yield "deploy-production", lambda: self.deploy(prod)
        yield "start-production", lambda: self.start_step(prod)
        yield "doctor-production", lambda: self.doctor(prod)
        yield "stop-test-production", lambda: self.stop_test(prod)
        yield "pnl-zero-production", lambda: self.pnl_zero(prod)
        yield "deploy-production-bad", lambda: self.stop_step(prod) + "; " + self.deploy(prod, True)
        yield "start-production-bad", lambda: self.start_step(prod)
        yield "auto-stop", lambda: self.pnl_zero(prod, expect_fail=True)
        yield "rollback", lambda: self.rollback(prod)


STEPS = (
    "deploy-staging", "start-staging", "stop-test-staging", "pnl-zero-staging",
    "deploy-production", "start-production", "doctor-production", "stop-test-production",
    "pnl-zero-production",
    "rollback",
)  # fmt: skip


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    tmp = Path(tempfile.mkdtemp(prefix="solbot-rehearsal-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rehearse(
    repo: Path,
    deps_from: Path,
    breaks: set[str],
    keep: Path | None = None,
    say: Callable[[str], None] = print,
) -> str | None:
    """Run every step; return None when all pass, else the failing step's name."""
    unknown = breaks - set(STEPS)
    if unknown:
        raise ConfigurationError(
            f"--break: unknown step {sorted(unknown)}; one of: {', '.join(STEPS)}"
        )
    with _workdir(keep) as root:
        r = Rehearsal(root, repo, deps_from, breaks, say)
        r.envs = {
            "staging": Env("staging", "bot.service", _free_port(), root / "opt" / "solbot"),
            "production": Env(
                "production", "bot-prod.service", _free_port(), root / "opt" / "solbot-prod"
            ),
        }
        say(f"rehearsal root {root}; Discord receiver {r.discord.url}")
        failed = None
        try:
            steps = list(r.steps())
            for n, (name, step) in enumerate(steps, 1):
                t0 = time.monotonic()
                try:
                    detail = step()
                except (StepFailed, httpx.HTTPError, OSError, subprocess.SubprocessError) as exc:
                    say(f"[{n:2}/{len(steps)}] {name:<22} FAIL  {exc}")
                    failed = name
                    break
                took = time.monotonic() - t0
                say(f"[{n:2}/{len(steps)}] {name:<22} ok    {detail} ({took:.1f} s)")
            if failed is None:
                titles = r.discord.titles()
                say(f"Discord received {len(r.discord.messages)} messages, e.g.:")
                for t in [t for t in titles if "TST-085" in t or "OPS-009" in t]:
                    say(f"    {t}")
        finally:
            r.kill_all()
            r.discord.close()
    return failed
