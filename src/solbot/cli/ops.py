"""Operations commands: ``solbot secrets pull``, ``solbot smoke stop-test|pnl-zero``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import SecretStr

from solbot.cli.common import errors, fail, home, out
from solbot.runtime.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE

if TYPE_CHECKING:
    from solbot.ops.smoke import Result

app = typer.Typer()

secrets_app = typer.Typer(no_args_is_help=True, help="Secrets: pull from AWS SSM into .env.")
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("pull")
def secrets_pull(
    source: Annotated[str, typer.Option("--from", help="ssm:/path (one parameter per key)")],
    to: Annotated[
        Path | None, typer.Option(help="file to write (default: $SOLBOT_HOME/.env)")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: AWS config)")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="SSM endpoint (tests: a local moto server)")
    ] = None,
) -> None:
    """Write every parameter under an SSM path (SecureStrings decrypted) to .env, mode 0600.
    Prints the key names only. Exit 2: bad --from or no parameters; 4: SSM unreachable."""
    from solbot.ops.secrets import SecretsError, SecretsUnavailable, pull

    with errors():
        try:
            got = pull(source, to or home() / ".env", region, endpoint_url)
        except SecretsError as exc:
            fail(EXIT_USAGE, str(exc))
        except SecretsUnavailable as exc:
            fail(EXIT_UNREACHABLE, str(exc))
        out.print(f"wrote {len(got.keys)} keys to {got.path} (mode 0600): {', '.join(got.keys)}")


smoke_app = typer.Typer(no_args_is_help=True, help="Post-deploy smoke tests (TST-085, OPS-009).")
app.add_typer(smoke_app, name="smoke")


def _report(result: Result, webhook: SecretStr | None) -> None:
    """Print the steps, send the outcome to Discord (when configured), exit 1 on failure."""
    import asyncio

    from solbot.infra.notify import send_once

    for step in result.steps:
        out.print(f"  {step}", highlight=False)
    verdict = "PASS" if result.passed else "FAIL"
    out.print(f"{result.name}: {verdict} — {result.summary}", highlight=False)
    if webhook is not None:
        severity = "P3" if result.passed else "P1"
        asyncio.run(send_once(webhook, severity, f"{result.name}: {verdict}", result.summary))
    if not result.passed:
        raise typer.Exit(1)


def _webhook() -> SecretStr | None:
    value = os.environ.get("SOLBOT_DISCORD_WEBHOOK_URL")
    return SecretStr(value) if value else None


@smoke_app.command("stop-test")
def smoke_stop_test(
    url: Annotated[str, typer.Option(help="the bot's API")] = "http://127.0.0.1:3001",
    pid: Annotated[int | None, typer.Option(help="stop this process (SIGTERM)")] = None,
    unit: Annotated[str | None, typer.Option(help="stop/start this systemd unit")] = None,
    restart: Annotated[
        str | None, typer.Option(help="with --pid: the command that starts the bot again")
    ] = None,
    limit: Annotated[float, typer.Option(help="seconds allowed for the stop")] = 30.0,
) -> None:
    """TST-085: stop the bot, require it gone within 30 s, start it again, health check.
    Exit 1: the test failed; 2: bad options; 4: the bot was not healthy to begin with."""
    from solbot.ops.smoke import SmokeUnreachable, stop_test

    with errors():
        try:
            result = stop_test(url.rstrip("/"), pid, unit, restart, limit)
        except SmokeUnreachable as exc:
            fail(EXIT_UNREACHABLE, str(exc))
            return
        _report(result, _webhook())


@smoke_app.command("pnl-zero")
def smoke_pnl_zero(
    url: Annotated[str, typer.Option(help="the bot's API")] = "http://127.0.0.1:3001",
    auto_stop: Annotated[
        bool, typer.Option("--auto-stop", help="on failure: kill switch (or --unit stop)")
    ] = False,
    unit: Annotated[str | None, typer.Option(help="auto-stop this systemd unit")] = None,
) -> None:
    """OPS-009: /api/account's dailyPnL must be exactly 0. Exit 1 when not (after stopping
    the bot with --auto-stop: the kill flag in $SOLBOT_HOME/data, or the unit); 4: no answer."""
    from solbot.infra.killswitch import KillFlag
    from solbot.ops.smoke import SmokeUnreachable, pnl_zero

    flag = KillFlag.of_home(home())
    with errors():
        try:
            result = pnl_zero(url.rstrip("/"), auto_stop, flag, unit)
        except SmokeUnreachable as exc:
            fail(EXIT_UNREACHABLE, str(exc))
            return
        _report(result, _webhook())


# ---------------------------------------------------------------- deploy and rollback
EnvOpt = Annotated[str, typer.Option("--env", help="staging or production")]
RootOpt = Annotated[
    Path, typer.Option(help="filesystem root holding opt/ and etc/ (tests: a temp dir)")
]


@app.command()
def deploy(
    env: EnvOpt,
    root: RootOpt = Path("/"),
    ref: Annotated[str, typer.Option(help="git ref (branch, tag, commit) to deploy")] = "HEAD",
    repo: Annotated[Path, typer.Option(help="the git repository to deploy from")] = Path("."),
    port: Annotated[int | None, typer.Option(help="API port (default 3000 / 3001)")] = None,
    deps_from: Annotated[
        Path | None,
        typer.Option(help="rehearsals: take dependencies from this venv, install only solbot"),
    ] = None,
    keep: Annotated[int, typer.Option(min=2, help="releases to keep")] = 5,
    user: Annotated[
        str, typer.Option(help="the service user (as root: owner of data, logs, .env)")
    ] = "solbot",
    strategy_file: Annotated[
        Path | None,
        typer.Option(help="a strategy file of your own, carried into the release"),
    ] = None,
    tested: Annotated[
        Path | None,
        typer.Option(help="result.json / walk_forward.json the strategy file must match"),
    ] = None,
) -> None:
    """Install REF as a new release (own venv), keep the previous one in the backup dir the
    runbook restores from, render the systemd units and .env, switch `current`.
    Exit 2: bad options, unknown ref, or the release failed to install (nothing switched)."""
    from solbot.ops.deploy import DeployError, environment
    from solbot.ops.deploy import deploy as do_deploy

    try:
        e = environment(env)
        rel = do_deploy(
            e,
            root.resolve(),
            repo.resolve(),
            ref,
            port=port,
            deps_from=deps_from.resolve() if deps_from else None,
            keep=keep,
            user=user,
            say=lambda m: out.print(f"  {m}", highlight=False),
            strategy_file=strategy_file.resolve() if strategy_file else None,
            tested=tested,
        )
    except DeployError as exc:
        fail(EXIT_USAGE, str(exc))
        return
    out.print(f"deployed {e.name} {rel.version}", highlight=False)
    out.print(
        f"  next: sudo systemctl daemon-reload && sudo systemctl restart {e.unit}", highlight=False
    )


@app.command()
def rollback(
    env: EnvOpt,
    root: RootOpt = Path("/"),
    to: Annotated[
        str | None, typer.Option(help="release version (or a prefix); default: the previous")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the installed releases")] = False,
) -> None:
    """Make an installed release current again (default: the one kept in the backup dir).
    Restart the unit afterwards. Exit 2: no such release or nothing to roll back to."""
    from solbot.ops.deploy import DeployError, current, environment, releases
    from solbot.ops.deploy import rollback as do_rollback

    try:
        e = environment(env)
        app_dir = e.app_dir(root.resolve())
        if list_:
            now = current(app_dir)
            for r in releases(app_dir):
                mark = "*" if r.version == now else " "
                out.print(f"{mark} {r.version}  {r.ref} {r.commit[:10]}  {r.created}")
            return
        rel = do_rollback(e, root.resolve(), to, say=lambda m: out.print(f"  {m}", highlight=False))
    except DeployError as exc:
        fail(EXIT_USAGE, str(exc))
        return
    out.print(f"rolled back {e.name} to {rel.version}", highlight=False)
    out.print(f"  next: sudo systemctl restart {e.unit}", highlight=False)


@app.command()
def rehearse(
    break_: Annotated[
        list[str] | None,
        typer.Option("--break", help="sabotage this step on purpose (repeatable)"),
    ] = None,
    keep: Annotated[
        Path | None, typer.Option(help="rehearse in this directory and keep it")
    ] = None,
    repo: Annotated[Path, typer.Option(help="the git repository to deploy from")] = Path("."),
) -> None:
    """The runbook's deployment flow on this machine (make pipeline): deploy staging, TST-085,
    OPS-009, deploy production, its tests, an injected bad release → auto-stop → Discord,
    rollback. Exit 1 naming the failing step; 2: unknown --break step."""
    import sys

    from solbot.ops.rehearsal import rehearse as run_rehearsal

    try:
        failed = run_rehearsal(
            repo.resolve(),
            Path(sys.prefix),
            set(break_ or []),
            keep.resolve() if keep else None,
            say=lambda m: out.print(m, highlight=False, soft_wrap=True),
        )
    except ValueError as exc:
        fail(EXIT_USAGE, str(exc))
        return
    if failed is not None:
        out.print(f"pipeline FAILED at step {failed}", highlight=False)
        raise typer.Exit(1)
    out.print("pipeline passed: every step of the runbook's flow", highlight=False)


def register(root: typer.Typer) -> None:
    """Add this module's commands and command groups to ``root``."""
    root.registered_commands.extend(app.registered_commands)
    root.registered_groups.extend(app.registered_groups)
