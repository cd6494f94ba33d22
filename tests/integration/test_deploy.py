"""``solbot deploy`` / ``solbot rollback`` on a temporary root: real git archives, real
virtualenvs, rendered units checked by ``systemd-analyze verify``, the runbook's manual
restore from the backup dir."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.botproc import solbot_cmd

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DEPS = Path(sys.prefix)  # the test venv: a release takes its dependencies from it


def needs_git_repo() -> None:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("deploy tests need the project's git checkout")


def cli(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        solbot_cmd(*args, "--root", str(root)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def deploy(root: Path, env: str = "production", *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("deploy", "--env", env, "--deps-from", str(DEPS), *extra, root=root)


def current(app: Path) -> str:
    return os.readlink(app / "current").removeprefix("releases/")


def test_deploy_installs_a_release_that_runs_and_rollback_switches_back(tmp_path: Path) -> None:
    needs_git_repo()
    root = tmp_path / "root"
    app = root / "opt" / "solbot-prod"

    first = deploy(root)
    assert first.returncode == 0, first.stdout + first.stderr
    v1 = current(app)
    meta = json.loads((app / "releases" / v1 / "RELEASE.json").read_text())
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert meta["commit"] == head and v1.endswith(head[:10])
    assert stat.S_IMODE((app / ".env").stat().st_mode) == 0o600
    version = subprocess.run(
        [str(app / "current" / "venv" / "bin" / "solbot"), "version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0 and version.stdout.strip()
    # the release's venv is its own: our package comes from the release's source tree
    where = subprocess.run(
        [
            str(app / "current" / "venv" / "bin" / "python"),
            "-c",
            "import solbot; print(solbot.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert where.startswith(str(app / "current" / "venv" / "lib")), where

    unit = root / "etc" / "systemd" / "system" / "bot-prod.service"
    text = unit.read_text()
    assert f"ExecStart={app}/current/venv/bin/solbot run" in text
    assert "SOLBOT_PORT=3001" in text and f"EnvironmentFile={app}/.env" in text
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    assert not (root / "opt" / "solbot-prod-backup").exists()  # nothing to keep yet

    (app / ".env").write_text("SOLBOT_PROFILE=production\nSOLBOT_API_TOKEN=kept-across-deploys\n")
    (app / "data" / "solbot.sqlite").write_bytes(b"state")
    second = deploy(root, "production", "--port", "3901")
    assert second.returncode == 0, second.stdout + second.stderr
    v2 = current(app)
    assert v2 != v1 and "SOLBOT_PORT=3901" in unit.read_text()
    assert "kept-across-deploys" in (app / ".env").read_text()  # a deploy never rewrites .env
    assert (app / "data" / "solbot.sqlite").read_bytes() == b"state"  # nor touches data
    backup = root / "opt" / "solbot-prod-backup"
    assert os.readlink(backup / "current") == f"releases/{v1}"
    assert (backup / ".env").exists() and (backup / "bot-prod.service").exists()

    listed = cli("rollback", "--env", "production", "--list", root=root)
    assert listed.returncode == 0 and f"* {v2}" in listed.stdout and f"  {v1}" in listed.stdout

    back = cli("rollback", "--env", "production", root=root)
    assert back.returncode == 0, back.stdout + back.stderr
    assert current(app) == v1 and f"rolled back production to {v1}" in back.stdout
    assert "SOLBOT_PORT=3901" in unit.read_text()  # the unit is re-rendered for the same port
    forward = cli("rollback", "--env", "production", "--to", v2[:16], root=root)
    assert forward.returncode == 0 and current(app) == v2, forward.stderr
    history = [json.loads(x) for x in (app / "deploys.jsonl").read_text().splitlines()]
    assert [h["action"] for h in history] == ["deploy", "deploy", "rollback", "rollback"]

    # the runbook's manual restore (with -T: plain `cp -r` into an existing dir nests it)
    subprocess.run(["cp", "-rT", str(backup), str(app)], check=True, timeout=60)
    assert current(app) == v1


def test_bad_ref_and_a_release_that_cannot_start_switch_nothing(tmp_path: Path) -> None:
    needs_git_repo()
    root = tmp_path / "root"
    app = root / "opt" / "solbot"
    bad = deploy(root, "staging", "--ref", "no-such-branch")
    assert bad.returncode == 2 and "no-such-branch" in bad.stderr
    assert not (app / "current").exists()

    ok = deploy(root, "staging")
    assert ok.returncode == 0, ok.stderr
    good = current(app)

    # a commit whose service does not import: built, checked, refused, removed
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(REPO), str(clone)], check=True)
    svc = clone / "src" / "solbot" / "runtime" / "service.py"
    svc.write_text(svc.read_text() + "\nraise ImportError('broken on purpose')\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", "broken"], check=True, env=env)
    broken = deploy(root, "staging", "--repo", str(clone))
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "importing the new release's service failed" in broken.stderr
    assert "broken on purpose" in broken.stderr
    assert current(app) == good
    assert [p.name for p in (app / "releases").iterdir()] == [good]

    nothing = cli("rollback", "--env", "staging", root=root)
    assert nothing.returncode == 2 and "no earlier release" in nothing.stderr
    unknown = cli("rollback", "--env", "staging", "--to", "1999", root=root)
    assert unknown.returncode == 2 and "no single release matches '1999'" in unknown.stderr
    wrong_env = cli("deploy", "--env", "prod", root=root)
    assert wrong_env.returncode == 2 and "staging or production" in wrong_env.stderr


def test_prune_keeps_the_newest_current_and_backup(tmp_path: Path) -> None:
    from solbot.ops.deploy import _prune, releases

    app = tmp_path / "app"
    for i in range(6):
        rel = app / "releases" / f"2026010{i}T000000.000Z-abc"
        rel.mkdir(parents=True)
        (rel / "RELEASE.json").write_text(
            json.dumps(
                {"version": rel.name, "commit": "abc", "ref": "HEAD", "created": f"2026-01-0{i}"}
            )
        )
    (app / "releases" / "half-built").mkdir()  # no RELEASE.json: not counted, not touched
    _prune(app, 3, protect={"20260100T000000.000Z-abc", None})
    left = [r.version for r in releases(app)]
    assert left == [
        "20260100T000000.000Z-abc",
        "20260104T000000.000Z-abc",
        "20260105T000000.000Z-abc",
    ]


def test_run_refuses_an_app_dir_with_a_nested_backup(tmp_path: Path) -> None:
    """`sudo cp -r /opt/solbot-prod-backup /opt/solbot-prod` into an existing dir nests the
    copy and restores nothing; the bot then refuses to start rather than run the wrong code."""
    nested = tmp_path / "solbot-prod-backup"
    nested.mkdir()
    (nested / "current").symlink_to("releases/x")
    r = subprocess.run(
        solbot_cmd("run"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SOLBOT_HOME": str(tmp_path)},
    )
    assert r.returncode == 2 and "cp -rT" in r.stderr and "solbot-prod-backup" in r.stderr


def test_second_bot_on_the_same_home_is_refused(tmp_path: Path) -> None:
    from tests.integration.botproc import Bot, free_port

    bot = Bot(tmp_path)
    try:
        bot.wait_ready()
        r = subprocess.run(
            solbot_cmd("run", "--port", str(free_port())),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SOLBOT_HOME": str(tmp_path)},
        )
        assert r.returncode == 2, r.stdout + r.stderr
        assert f"another solbot (pid {bot.proc.pid}) is running" in r.stderr
        assert bot.get("/api/status").status_code == 200  # the first one trades on
    finally:
        bot.kill_hard()


def test_deploy_as_root_gives_the_service_user_its_state_and_keeps_releases_root(
    tmp_path: Path,
) -> None:
    import pwd

    needs_git_repo()
    if os.geteuid() != 0:
        pytest.skip("only root hands files over")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    root = tmp_path / "root"
    r = deploy(root, "staging", "--user", "nobody")
    assert r.returncode == 0, r.stdout + r.stderr
    app = root / "opt" / "solbot"
    for path in (app, app / ".env", app / "data", app / "logs", app / "backups"):
        assert path.stat().st_uid == nobody.pw_uid, path
    release = app / "releases" / current(app)
    assert release.stat().st_uid == 0 and (release / "venv").stat().st_uid == 0
    assert "owned by nobody" in r.stdout


def test_deploy_carries_a_tested_strategy_file_and_refuses_one_that_was_not(
    tmp_path: Path,
) -> None:
    needs_git_repo()
    root = tmp_path / "root"
    app = root / "opt" / "solbot"
    own = tmp_path / "mystrat.py"
    make = subprocess.run(
        solbot_cmd("new-strategy", "mystrat", "--out", str(tmp_path)), capture_output=True
    )
    assert make.returncode == 0, make.stderr
    import hashlib

    sha = hashlib.sha256(own.read_bytes()).hexdigest()
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"params": {"strategy": str(own), "strategy_sha256": sha}}))
    edited = tmp_path / "edited" / "mystrat.py"
    edited.parent.mkdir()
    edited.write_text(own.read_text() + "\n# tuned after the backtest\n")
    refused = deploy(root, "staging", "--strategy-file", str(edited), "--tested", str(result))
    assert refused.returncode == 2 and "is not the file" in refused.stderr, refused.stderr
    assert not (app / "current").exists()  # nothing built, nothing switched

    ok = deploy(root, "staging", "--strategy-file", str(own), "--tested", str(result))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    meta = json.loads((app / "current" / "RELEASE.json").read_text())
    assert meta["strategy_sha256"] == sha and meta["strategy_file"] == "strategies/mystrat.py"
    carried = app / "current" / "strategies" / "mystrat.py"
    assert carried.read_bytes() == own.read_bytes()
    assert meta["tested"] == "tested/result.json"  # the quiet-bot alarm's pace comes from it
    assert (app / "current" / "tested" / "result.json").read_bytes() == result.read_bytes()
    assert f"SOLBOT_STRATEGY={carried}" in ok.stdout.replace("\n", "")
