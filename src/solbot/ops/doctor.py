"""``solbot doctor``: the runbook's troubleshooting list (トラブルシューティング) as checks.

Each check gives one line: a status (ok / warn / fail), what it found and, when it is not
ok, what to do. ``fail`` means the bot cannot (or must not) run as it is; ``warn`` needs a
look. Nothing here changes anything.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path

import httpx

from solbot.runtime.config import ConfigError, Settings, load_settings


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: Level
    found: str
    fix: str = ""


MIN_FREE_BYTES = 1 << 30  # below 1 GiB free the database and logs are at risk
BACKUP_MAX_AGE = 8 * 86400


def _env_file(home: Path) -> Check:
    env = home / ".env"
    if not env.exists():
        return Check(
            ".env",
            Level.WARN,
            f"{env} is missing (paper trading needs none)",
            "live: solbot secrets pull --from ssm:/solbot/prod/env",
        )
    mode = stat.S_IMODE(env.stat().st_mode)
    if mode & 0o077:
        return Check(
            ".env",
            Level.FAIL,
            f"{env} is mode {mode:04o}: others can read the secrets",
            f"chmod 600 {env}",
        )
    owner = env.stat().st_uid
    if owner != os.geteuid() and os.geteuid() != 0:
        return Check(
            ".env",
            Level.WARN,
            f"{env} belongs to uid {owner}, not to this user",
            f"sudo chown solbot:solbot {env}",
        )
    return Check(".env", Level.OK, f"{env} present, mode {mode:04o}")


def _nested_backup(home: Path) -> Check:
    nested = sorted(p for p in home.glob("*-backup") if (p / "current").is_symlink())
    if nested:
        return Check(
            "release",
            Level.FAIL,
            f"{nested[0]} is a backup copied into the app dir by `cp -r` (nothing was restored)",
            f"sudo cp -rT {nested[0]} {home} && sudo rm -r {nested[0]} (or solbot rollback)",
        )
    link = home / "current"
    if not link.is_symlink():
        return Check("release", Level.OK, "not a deployed layout (no current link)")
    target = link.resolve()
    if not (target / "venv" / "bin" / "solbot").exists():
        return Check(
            "release",
            Level.FAIL,
            f"current → {os.readlink(link)}, which has no venv/bin/solbot",
            "solbot rollback --env production (or deploy again)",
        )
    return Check("release", Level.OK, f"current → {os.readlink(link)}")


def _kill_flag(s: Settings) -> Check:
    reason = s.kill_switch.reason()
    if reason is None:
        return Check("kill switch", Level.OK, "no kill-switch.flag")
    why = f" ({reason[:120]})" if reason else ""
    return Check(
        "kill switch",
        Level.WARN,
        f"{s.kill_flag} exists{why}: the bot will not trade",
        "find the cause first, then: solbot kill --clear",
    )


def _process(s: Settings) -> Check:
    from solbot.infra.instance import holder

    pid = holder(s.data_dir)
    if pid is None:
        return Check(
            "process",
            Level.FAIL,
            f"no bot holds {s.data_dir / 'solbot.lock'}",
            "sudo systemctl status bot-prod.service; journalctl -u bot-prod.service -n 50",
        )
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        cmd = "?"
    return Check("process", Level.OK, f"pid {pid}: {cmd[:100]}")


def _port(s: Settings) -> Check:
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
    try:
        with socket.create_connection((host, s.port), timeout=2):
            pass
    except OSError as exc:
        return Check(
            "port",
            Level.FAIL,
            f"nothing listens on {host}:{s.port} ({exc.strerror or exc})",
            f"ss -tlnp | grep :{s.port}; is the bot running with SOLBOT_PORT={s.port}?",
        )
    try:
        r = httpx.get(f"http://{host}:{s.port}/api/status", timeout=5)
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Check("api", Level.FAIL, f"{host}:{s.port} accepts but /api/status fails: {exc}", "")
    if r.status_code != 200:
        problems = ", ".join(body.get("problems", [])) or f"HTTP {r.status_code}"
        return Check(
            "api", Level.FAIL, f"/api/status unhealthy: {problems}", "curl -s .../api/status"
        )
    return Check(
        "api", Level.OK, f"{host}:{s.port} /api/status healthy ({body.get('trading_state')})"
    )


def _database(s: Settings) -> Check:
    url = s.db_url
    if not url.startswith("sqlite:///"):
        try:
            from sqlalchemy import create_engine, text

            engine = create_engine(url)
            with engine.connect() as conn:
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            engine.dispose()
        except Exception as exc:  # any driver error is the finding
            first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            return Check("database", Level.FAIL, f"cannot query the database: {first}", "")
        return Check("database", Level.OK, f"PostgreSQL reachable, schema {version}")
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        return Check("database", Level.WARN, f"no database yet at {path}", "it is made on start")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            result = ";".join(r[0] for r in con.execute("PRAGMA quick_check"))
        finally:
            con.close()
    except sqlite3.Error as exc:
        result = str(exc)
    if result != "ok":
        return Check(
            "database",
            Level.FAIL,
            f"{path}: {result[:160]}",
            "stop the bot; solbot backup restore <latest archive>",
        )
    return Check("database", Level.OK, f"{path} passes quick_check")


def _disk(s: Settings) -> Check:
    usage = shutil.disk_usage(s.home)
    free_pct = usage.free / usage.total * 100
    found = f"{usage.free / (1 << 30):.1f} GiB free ({free_pct:.0f} %) on {s.home}"
    if usage.free < MIN_FREE_BYTES:
        return Check("disk", Level.FAIL, found, "free space: logs (logrotate), old backups")
    if free_pct < 10:
        return Check("disk", Level.WARN, found, "solbot backup prune --keep 8; journalctl --vacuum")
    return Check("disk", Level.OK, found)


def _dependencies() -> Check:
    from packaging.requirements import Requirement

    try:
        requires = metadata.requires("solbot") or []
    except metadata.PackageNotFoundError:
        return Check("dependencies", Level.FAIL, "solbot is not installed", "pip install .")
    bad = []
    checked = 0
    for line in requires:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra (dev, postgres)
        checked += 1
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            bad.append(f"{req.name} missing")
            continue
        if not req.specifier.contains(have, prereleases=True):
            bad.append(f"{req.name} {have} (needs {req.specifier})")
    if bad:
        return Check(
            "dependencies",
            Level.FAIL,
            "; ".join(bad),
            "deploy again (each release installs its own venv)",
        )
    return Check("dependencies", Level.OK, f"{checked} requirements satisfied")


def _backup(s: Settings) -> Check:
    from solbot.infra.backupmark import last_success

    at = last_success(s.data_dir)
    if at is None:
        return Check(
            "backup", Level.WARN, "no backup has succeeded on this home", "solbot backup create"
        )
    age = time.time() - at
    if age > BACKUP_MAX_AGE:
        return Check(
            "backup",
            Level.WARN,
            f"last backup {age / 86400:.1f} days ago",
            "systemctl status solbot-backup@solbot-prod.timer; solbot backup create",
        )
    return Check("backup", Level.OK, f"last backup {age / 3600:.1f} h ago")


def _prometheus(s: Settings, url: str) -> Check:
    try:
        r = httpx.get(f"{url.rstrip('/')}/api/v1/targets", timeout=5)
        targets = r.json()["data"]["activeTargets"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return Check(
            "prometheus",
            Level.WARN,
            f"{url} not reachable ({type(exc).__name__})",
            "systemctl status prometheus; curl http://localhost:9090/targets",
        )
    mine = [t for t in targets if str(t.get("scrapeUrl", "")).find(f":{s.port}/") > 0]
    if not mine:
        return Check(
            "prometheus",
            Level.WARN,
            f"Prometheus at {url} has no target on port {s.port}",
            "add it to prometheus.yml (deploy/monitoring/prometheus.yml)",
        )
    t = mine[0]
    if t.get("health") != "up":
        return Check(
            "prometheus",
            Level.FAIL,
            f"target {t['scrapeUrl']} is {t.get('health')}: {t.get('lastError', '')[:120]}",
            "curl http://localhost:3001/metrics",
        )
    return Check("prometheus", Level.OK, f"target {t['scrapeUrl']} up")


def run_checks(
    home: Path, config: Path | None, prometheus_url: str, environ: dict[str, str] | None = None
) -> Iterator[Check]:
    yield _env_file(home)
    try:
        s = load_settings(home, config, environ=environ)
    except ConfigError as exc:
        yield Check("config", Level.FAIL, str(exc), "fix the key named in .env / the config file")
        return
    yield Check("config", Level.OK, f"valid ({s.profile}, {s.symbol} {s.timeframe}, port {s.port})")
    checks: list[Callable[[], Check]] = [
        lambda: _nested_backup(s.home),
        lambda: _kill_flag(s),
        lambda: _process(s),
        lambda: _port(s),
        lambda: _database(s),
        lambda: _disk(s),
        _dependencies,
        lambda: _backup(s),
        lambda: _prometheus(s, prometheus_url),
    ]
    for check in checks:
        yield check()
