"""``solbot doctor``: the runbook's troubleshooting list as checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from solbot.cli.common import ConfigOpt, HomeOpt, out

app = typer.Typer()


@app.command()
def doctor(
    home: HomeOpt = None,
    config: ConfigOpt = None,
    prometheus_url: Annotated[
        str, typer.Option(help="the Prometheus that should scrape this bot")
    ] = "http://127.0.0.1:9090",
) -> None:
    """The runbook's troubleshooting list as checks, one line each with what to do: .env and
    its permissions, config, release, kill flag, process, port and API, database integrity,
    disk, dependencies, backups, Prometheus target. Exit 1 when any check fails."""
    import os

    from solbot.ops.doctor import Level, run_checks

    where = home or Path(os.environ.get("SOLBOT_HOME") or ".")
    marks = {
        Level.OK: "[green]ok  [/green]",
        Level.WARN: "[yellow]warn[/yellow]",
        Level.FAIL: "[red]FAIL[/red]",
    }
    failed = 0
    for c in run_checks(where.resolve(), config, prometheus_url):
        fix = f" → {c.fix}" if c.fix and c.level is not Level.OK else ""
        out.print(
            f"{marks[c.level]} {c.name:<12} {c.found}{fix}",
            highlight=False,
            soft_wrap=True,
            markup=True,
        )
        failed += c.level is Level.FAIL
    if failed:
        out.print(f"{failed} check(s) failed", highlight=False)
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add this module's commands and command groups to ``root``."""
    root.registered_commands.extend(app.registered_commands)
    root.registered_groups.extend(app.registered_groups)
