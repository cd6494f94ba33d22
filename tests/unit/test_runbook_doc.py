"""docs/runbook.md: every command in its bash blocks is one our system has — each ``solbot``
command line parses (subcommands and options exist), units, API paths, repository files,
make targets and home-relative paths are ours. The flows themselves run in the integration
tests the runbook names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from solbot.cli import app
from solbot.ops.rehearsal import STEPS
from solbot.runtime.config import load_settings

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "runbook.md"
UNITS = {p.name for p in (REPO / "deploy" / "systemd").iterdir()}
TOOLS = {
    "cp", "tail", "grep", "ss", "pgrep", "iptables", "set", "chown", "chmod", "logrotate",
    "promtool", "amtool", "envsubst", "curl", "systemctl", "journalctl", "solbot", "make",
    "touch", "docker-compose", ".",
}  # fmt: skip


def commands() -> list[str]:
    text = DOC.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def parse_solbot(args: list[str]) -> None:
    """Parse like the CLI would, without running anything; UsageError on a bad command."""
    cmd: Any = typer.main.get_command(app)  # typer's own (vendored) click classes
    name = "solbot"
    while True:
        ctx = cmd.make_context(name, list(args), resilient_parsing=False)
        if not hasattr(cmd, "resolve_command"):  # a command, not a group
            return
        rest = [*ctx._protected_args, *ctx.args]  # type: ignore[attr-defined]
        name, sub, args = cmd.resolve_command(ctx, rest)
        assert sub is not None, rest
        cmd = sub


def api_paths() -> set[str]:
    from solbot.api.app import create_app
    from solbot.bot import build_bot

    view = build_bot(load_settings(Path("/nonexistent-home"), environ={})).view
    assert view is not None
    return {getattr(r, "path", "") for r in create_app(view).routes}


def test_runbook_has_commands_for_every_section() -> None:
    cmds = commands()
    assert len(cmds) > 40
    for needed in (
        "sudo touch /opt/solbot-prod/data/kill-switch.flag",
        "sudo systemctl stop bot-prod.service",
        "docker-compose down",
        "curl -f http://localhost:3001/api/status",
        "sudo cp -rT /opt/solbot-prod-backup /opt/solbot-prod",
        "make pipeline",
    ):
        assert needed in cmds


@pytest.mark.parametrize("line", commands())
def test_each_runbook_command_is_one_our_system_has(line: str) -> None:
    words = shlex.split(line)
    while words and words[0] in ("sudo", "-E"):
        words = words[1:]
    tool = words[0].split("/")[-1] if words[0].endswith("/solbot") else words[0]
    assert tool in TOOLS, line
    if tool == "solbot":
        parse_solbot(words[1:])
        for i, w in enumerate(words):
            if w == "--break":
                assert words[i + 1] in STEPS
    elif tool in ("systemctl", "journalctl"):
        units = [w for w in words if w.endswith((".service", ".timer"))]
        for u in units:
            template = re.sub(r"@[^.]+\.", "@.", u)
            assert u in UNITS or template in UNITS, (line, u)
    elif tool == "curl":
        url = next(w for w in words if w.startswith("http"))
        port, path = re.match(r"http://localhost:(\d+)(/\S*)", url).groups()  # type: ignore[union-attr]
        if port == "9090":
            assert path in ("/targets", "/api/v1/targets")
        else:
            assert port in ("3000", "3001") and path in api_paths(), line
    elif tool == "make":
        assert re.search(rf"^{words[1]}:", (REPO / "Makefile").read_text(), flags=re.M)
        for w in words[2:]:
            if w.startswith("BREAK="):
                assert w.split("=", 1)[1] in STEPS
    elif tool == "docker-compose":
        assert (REPO / "docker-compose.yml").exists()
    for w in words:
        for ref in re.findall(r"(?:deploy|docs)/[\w./-]+", w):
            if "/etc/" not in w or w.startswith(("deploy", "docs")):
                assert (REPO / ref).exists(), (line, ref)
        if w.startswith("/opt/solbot"):
            rel = re.sub(r"^/opt/solbot(-prod)?/?", "", w)
            assert (
                rel
                in (
                    "",
                    "data/kill-switch.flag",
                    "logs/app.log",
                    ".env",
                )
                or w == "/opt/solbot-prod-backup"
            ), (line, w)


def test_the_home_relative_paths_are_the_bots_own() -> None:
    s = load_settings(Path("/opt/solbot-prod"), environ={})
    assert s.kill_flag == Path("/opt/solbot-prod/data/kill-switch.flag")
    assert s.logs_dir / "app.log" == Path("/opt/solbot-prod/logs/app.log")
