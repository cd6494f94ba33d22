"""Versioned releases: ``solbot deploy`` and ``solbot rollback``.

Layout (``ROOT`` is ``/`` on a server; tests and ``make pipeline`` use a temporary dir)::

    ROOT/opt/solbot-prod/                 the app home (SOLBOT_HOME)
        releases/<version>/src            the source tree of the deployed commit (git archive)
        releases/<version>/venv           its own virtualenv (python -m venv + pip install)
        releases/<version>/RELEASE.json   version, commit, ref, when, python
        current -> releases/<version>     switched atomically (rename of a new link)
        .env                              config + secrets (0600), never replaced by a deploy
        data/ logs/                       state shared by all releases; never touched here
        deploys.jsonl                     one line per deploy / rollback
    ROOT/opt/solbot-prod-backup/          what the runbook restores from: the previous
                                          ``current`` link, .env and unit (code and config,
                                          never the database: trades are not rolled back)
    ROOT/etc/systemd/system/bot-prod.service   rendered from the release's deploy/systemd

A deploy never switches to a release whose ``solbot --version`` fails, and keeps the newest
``keep`` releases (never the current one or the one the backup points at).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


class DeployError(Exception):
    """The deploy or rollback could not be done; nothing was switched."""


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    app: str  # path below the root
    backup: str
    unit: str
    port: int

    def app_dir(self, root: Path) -> Path:
        return root / self.app

    def backup_dir(self, root: Path) -> Path:
        return root / self.backup

    def unit_path(self, root: Path) -> Path:
        return root / "etc" / "systemd" / "system" / self.unit


ENVIRONMENTS = {
    "staging": Environment("staging", "opt/solbot", "opt/solbot-backup", "bot.service", 3000),
    "production": Environment(
        "production", "opt/solbot-prod", "opt/solbot-prod-backup", "bot-prod.service", 3001
    ),
}
BACKUP_UNITS = ("solbot-backup@.service", "solbot-backup@.timer")


def environment(name: str) -> Environment:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise DeployError(f"--env: expected staging or production, got {name!r}") from None


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    commit: str
    ref: str
    created: str
    path: Path


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 900) -> str:
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeployError(f"{what}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise DeployError(f"{what} failed: {tail[-1] if tail else f'exit {done.returncode}'}")
    return done.stdout


def resolve(repo: Path, ref: str) -> str:
    """The commit a ref names (branch, tag, sha) in ``repo``."""
    if not re.fullmatch(r"[\w./@^~+-]+", ref) or ref.startswith("-"):
        raise DeployError(f"--ref: not a git ref: {ref!r}")
    out = _run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        f"git ref {ref!r} in {repo}",
    )
    return out.strip()


def releases(app: Path) -> list[Release]:
    """Installed releases, oldest first."""
    found = []
    for meta in sorted((app / "releases").glob("*/RELEASE.json")):
        try:
            d = json.loads(meta.read_text())
            found.append(Release(d["version"], d["commit"], d["ref"], d["created"], meta.parent))
        except (OSError, ValueError, KeyError):
            continue  # a half-built release (a deploy that failed) is not a release
    return sorted(found, key=lambda r: r.created)


def current(app: Path) -> str | None:
    link = app / "current"
    return Path(os.readlink(link)).name if link.is_symlink() else None


def _switch(app: Path, version: str) -> None:
    """Point ``current`` at a release with one rename (never a moment without a link)."""
    tmp = app / f".current-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("releases") / version)
    tmp.replace(app / "current")


def render_unit(template: str, env: Environment, root: Path, port: int) -> str:
    """The unit file for this environment, its paths under ``root`` and its port."""
    app = str(env.app_dir(root))
    text = re.sub(r"/opt/solbot(-prod)?(?![\w-])", app, template)
    return re.sub(r"SOLBOT_PORT=\d+", f"SOLBOT_PORT={port}", text)


def render_backup_unit(template: str, root: Path) -> str:
    return template.replace("/opt/%i", f"{root / 'opt'}/%i")


def _snapshot(app: Path, backup: Path, unit: Path) -> None:
    """Copy what a rollback needs (current link, .env, unit) to the runbook's backup dir."""
    tmp = Path(tempfile.mkdtemp(prefix=".backup-", dir=backup.parent))
    try:
        link = app / "current"
        if link.is_symlink():
            (tmp / "current").symlink_to(os.readlink(link))
        env_file = app / ".env"
        if env_file.exists():
            shutil.copy2(env_file, tmp / ".env")
        if unit.exists():
            shutil.copy2(unit, tmp / unit.name)
        old = backup.with_name(backup.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if backup.exists():
            backup.rename(old)
        tmp.rename(backup)
        shutil.rmtree(old, ignore_errors=True)
        backup.chmod(0o700)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _log(app: Path, **event: object) -> None:
    event = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **event}
    with (app / "deploys.jsonl").open("a") as f:
        f.write(json.dumps(event) + "\n")


IMPORT_CHECK = "import solbot.runtime.service, solbot.api.app, solbot.runtime.live"

DEFAULT_ENV = """\
# SOL-Bot {env} settings (KEY=VALUE). Secrets: `solbot secrets pull --from ssm:/solbot/{short}/env`.
SOLBOT_PROFILE={env}
"""


def _install(
    release: Path, python: str, deps_from: Path | None, say: Callable[[str], None]
) -> None:
    venv = release / "venv"
    _run([python, "-m", "venv", str(venv)], "python -m venv")
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    if deps_from is None:
        say("installing the release and its dependencies (pip)")
        _run([*pip, str(release / "src")], "pip install")
        return
    # rehearsals: the dependencies of an existing venv, only our package installed afresh
    site = _site_packages(deps_from)
    say(f"installing the release (dependencies from {deps_from})")
    _run([*pip, "--no-deps", str(release / "src")], "pip install --no-deps")
    (_site_packages(venv) / "_solbot_deps.pth").write_text(f"{site}\n")


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise DeployError(f"{venv}: not a virtualenv (no lib/python3*/site-packages)")
    return found[0]


def deploy(
    env: Environment,
    root: Path,
    repo: Path,
    ref: str = "HEAD",
    *,
    port: int | None = None,
    python: str = sys.executable,
    deps_from: Path | None = None,
    keep: int = 5,
    user: str = "solbot",
    say: Callable[[str], None] = lambda _: None,
    strategy_file: Path | None = None,
    tested: Path | None = None,
) -> Release:
    """Install ``ref`` of ``repo`` as a new release of ``env`` and make it current.
    ``strategy_file``: a strategy of one's own, carried into the release
    (``releases/<version>/strategies/<name>.py``; the release's own solbot must load it) so
    production runs what was tested; ``tested``: a ``result.json`` or ``walk_forward.json``
    whose ``strategy_sha256`` the file must match, else nothing is installed."""
    commit = resolve(repo, ref)
    expected = _tested_sha(tested) if tested is not None else None
    if strategy_file is not None:
        if not strategy_file.is_file():
            raise DeployError(f"--strategy-file {strategy_file}: no such file")
        sha = hashlib.sha256(strategy_file.read_bytes()).hexdigest()
        if expected is not None and sha != expected:
            raise DeployError(
                f"--strategy-file {strategy_file.name} (sha256 {sha[:12]}…) is not the file "
                f"{tested} tested ({expected[:12]}…); nothing deployed"
            )
    elif expected is not None:
        raise DeployError("--tested needs --strategy-file (the file that result tested)")
    app = env.app_dir(root)
    for d in (app / "releases", app / "data", app / "logs", env.backup_dir(root).parent):
        d.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    version = f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{commit[:10]}"
    release = app / "releases" / version
    if release.exists():
        raise DeployError(f"release {version} exists already; try again in a second")
    say(f"{env.name}: {ref} = {commit[:10]} → release {version}")
    src = release / "src"
    src.mkdir(parents=True)
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True, timeout=120)
        _install(release, python, deps_from, say)
        solbot = release / "venv" / "bin" / "solbot"
        got = _run([str(solbot), "version"], "the new release's `solbot version`").strip()
        _run(  # the service and API import with the release's dependencies
            [str(release / "venv" / "bin" / "python"), "-c", IMPORT_CHECK],
            "importing the new release's service",
        )
        say(f"release runs: solbot {got}")
        if strategy_file is not None:
            carried = release / "strategies" / strategy_file.name
            carried.parent.mkdir()
            shutil.copy2(strategy_file, carried)
            _run(  # the release's own solbot must build it (the sdk it was written for)
                [str(release / "venv" / "bin" / "python"), "-c",
                 f"from solbot.strategies import create; create({str(carried)!r})"],
                f"loading {strategy_file.name} with the new release",
            )  # fmt: skip
    except (DeployError, subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(release, ignore_errors=True)
        raise DeployError(f"release {version} not installed: {exc}") from None
    meta = {
        "version": version,
        "commit": commit,
        "ref": ref,
        "created": now.isoformat(timespec="seconds"),
        "python": _run([str(release / "venv" / "bin" / "python"), "-V"], "python -V").strip(),
    }
    if tested is not None:  # the quiet-bot alarm's pace (runtime/quiet.py) reads it
        (release / "tested").mkdir()
        name = "result.json" if "trades" in json.loads(tested.read_text()) else tested.name
        shutil.copyfile(tested, release / "tested" / name)
        meta["tested"] = f"tested/{name}"
    if strategy_file is not None:
        meta["strategy_file"] = f"strategies/{strategy_file.name}"
        meta["strategy_sha256"] = sha
        runs = app / "current" / "strategies" / strategy_file.name
        say(
            f"strategy {strategy_file.name} carried (sha256 {sha[:12]}…): run it with "
            f"SOLBOT_STRATEGY={runs} in {app / '.env'}"
        )
    (release / "RELEASE.json").write_text(json.dumps(meta, indent=2) + "\n")

    unit = env.unit_path(root)
    previous = current(app)
    if previous is not None:
        _snapshot(app, env.backup_dir(root), unit)
        say(f"previous release {previous} kept in {env.backup_dir(root)}")
    env_file = app / ".env"
    if not env_file.exists():
        short = "prod" if env.name == "production" else "stg"
        env_file.write_text(DEFAULT_ENV.format(env=env.name, short=short))
        env_file.chmod(0o600)
        say(f"wrote {env_file} (mode 0600); pull secrets into it before trading live")
    _render_units(env, root, src, port or env.port)
    owner = _hand_over(app, user)
    if owner:
        say(owner)
    _switch(app, version)
    say(f"current → {version}; units in {unit.parent}")
    _log(app, action="deploy", version=version, commit=commit, ref=ref, previous=previous)
    _prune(app, keep, protect={version, previous, _backup_version(env, root)})
    return Release(version, commit, ref, meta["created"], release)


def _tested_sha(path: Path) -> str:
    """The ``strategy_sha256`` a backtest's ``result.json`` (under ``params``) or a
    walk-forward's ``walk_forward.json`` records."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"--tested {path}: cannot read it ({exc})") from None
    sha = (doc.get("params") or {}).get("strategy_sha256") or doc.get("strategy_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise DeployError(f"--tested {path}: records no strategy file's sha256")
    return sha


def _hand_over(app: Path, user: str) -> str | None:
    """Run as root (sudo solbot deploy): give the service user what it writes — the home
    itself, .env, data/, logs/, backups/ — and leave the releases root's (read-only to the
    bot). Without root, or without that user (tests, rehearsals), nothing changes."""
    import pwd

    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return f"no user {user!r} here: files stay owned by root"
    (app / "backups").mkdir(exist_ok=True)
    os.chown(app, pw.pw_uid, pw.pw_gid)
    for path in (app / ".env", app / "data", app / "logs", app / "backups"):
        if not path.exists():
            continue
        os.chown(path, pw.pw_uid, pw.pw_gid)
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                os.chown(Path(dirpath) / name, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
    return f"data, logs, backups and .env owned by {user}; releases stay root's"


def _render_units(env: Environment, root: Path, src: Path, port: int) -> None:
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True, exist_ok=True)
    template = (src / "deploy" / "systemd" / env.unit).read_text()
    _write(env.unit_path(root), render_unit(template, env, root, port))
    for name in BACKUP_UNITS:
        path = src / "deploy" / "systemd" / name
        if path.exists():
            _write(units / name, render_backup_unit(path.read_text(), root))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(path)


def _backup_version(env: Environment, root: Path) -> str | None:
    link = env.backup_dir(root) / "current"
    return Path(os.readlink(link)).name if link.is_symlink() else None


def _prune(app: Path, keep: int, protect: set[str | None]) -> None:
    """Delete the oldest releases until at most ``keep`` remain (protected ones stay)."""
    have = releases(app)
    excess = len(have) - keep
    for r in have:
        if excess <= 0:
            break
        if r.version not in protect:
            shutil.rmtree(r.path, ignore_errors=True)
            excess -= 1


def rollback(
    env: Environment, root: Path, to: str | None = None, say: Callable[[str], None] = lambda _: None
) -> Release:
    """Make an installed release current again: ``to``, else the one the backup holds,
    else the newest one older than the current release. Restores that release's unit."""
    app = env.app_dir(root)
    have = releases(app)
    now = current(app)
    if to is None:
        to = _backup_version(env, root)
        if to is None or to == now:
            older = [r.version for r in have if now is None or r.version < now]
            to = older[-1] if older else None
        if to is None:
            raise DeployError(f"{env.name}: no earlier release to roll back to")
    match = [r for r in have if r.version == to or r.version.startswith(to)]
    if len(match) != 1:
        names = ", ".join(r.version for r in have) or "none"
        raise DeployError(f"{env.name}: no single release matches {to!r} (installed: {names})")
    target = match[0]
    if target.version == now:
        raise DeployError(f"{env.name}: {target.version} is already current")
    _render_units(env, root, target.path / "src", _port_of(env.unit_path(root), env.port))
    _switch(app, target.version)
    _log(app, action="rollback", version=target.version, previous=now)
    say(f"{env.name}: current → {target.version} (was {now})")
    return target


def _port_of(unit: Path, default: int) -> int:
    try:
        m = re.search(r"SOLBOT_PORT=(\d+)", unit.read_text())
    except OSError:
        return default
    return int(m.group(1)) if m else default
