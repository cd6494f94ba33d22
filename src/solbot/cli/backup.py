"""``solbot backup create|list|restore|prune``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from solbot.cli.common import ConfigOpt, HomeOpt, fail, out, settings_or_exit
from solbot.runtime.exitcodes import EXIT_DATA, EXIT_UNREACHABLE, EXIT_USAGE

app = typer.Typer()

backup_app = typer.Typer(
    no_args_is_help=True,
    help="Backups: database (online, WAL-safe), config and logs; local and S3.",
)
app.add_typer(backup_app, name="backup")

ToOpt = Annotated[
    str | None,
    typer.Option("--to", help="s3://bucket/prefix (default: SOLBOT_BACKUP_TO; none: local only)"),
]
EndpointOpt = Annotated[str | None, typer.Option(help="S3 endpoint (tests: a local moto server)")]


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def say(text: str) -> None:
    out.print(text, highlight=False, soft_wrap=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Backup failures → one line and an exit code: 2 bad request, 3 corrupt, 4 S3."""
    from solbot.ops.backup import BackupCorrupt, BackupError, StorageUnavailable

    try:
        yield
    except BackupCorrupt as exc:
        fail(EXIT_DATA, str(exc))
    except BackupError as exc:
        fail(EXIT_USAGE, str(exc))
    except StorageUnavailable as exc:
        fail(EXIT_UNREACHABLE, str(exc))


@backup_app.command("create")
def backup_create(
    home: HomeOpt = None,
    config: ConfigOpt = None,
    to: ToOpt = None,
    endpoint_url: EndpointOpt = None,
    include_env: Annotated[
        bool, typer.Option("--include-env", help="also archive .env (secrets!)")
    ] = False,
) -> None:
    """Archive the database (consistent online copy), config and logs, with checksums; upload
    to S3 with --to. Exit 2: not SQLite / no database; 3: the live database is corrupt; 4: S3."""
    from solbot.ops.backup import create

    s = settings_or_exit(home, config)
    with _errors():
        got = create(
            s.home,
            s.db_url,
            to=to or s.backup_to,
            endpoint_url=endpoint_url,
            include_env=include_env,
        )
        rows = sum(got.tables.values())
        size = _human(got.archive.size)
        say(f"backup {got.archive.where} ({size}; {len(got.tables)} tables, {rows:,} rows, ok)")
        if got.uploaded:
            say(f"uploaded {got.uploaded}")


@backup_app.command("list")
def backup_list(
    home: HomeOpt = None,
    config: ConfigOpt = None,
    to: ToOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """The archives, oldest first (local, and in S3 with --to)."""
    from solbot.ops.backup import list_archives

    s = settings_or_exit(home, config)
    with _errors():
        for a in list_archives(s.home, to or s.backup_to, endpoint_url):
            say(f"{a.created:%Y-%m-%d %H:%M:%S}Z  {_human(a.size):>10}  {a.where}")


@backup_app.command("restore")
def backup_restore(
    source: Annotated[str, typer.Argument(help="an archive path or s3://bucket/key")],
    home: HomeOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Verify the archive (checksums, integrity, row counts), then replace the database; the
    old one is kept as solbot.sqlite.pre-restore-<stamp>. Refused while a bot runs on the home.
    Exit 2: bot running / no such archive; 3: the archive does not verify; 4: S3."""
    from solbot.ops.backup import restore

    s = settings_or_exit(home, config)
    with _errors():
        got = restore(s.home, s.db_url, source, endpoint_url=endpoint_url)
        rows = sum(got.tables.values())
        say(f"restored {source}: {len(got.tables)} tables, {rows:,} rows, integrity ok")
        if got.kept is not None:
            say(f"  the replaced database is kept as {got.kept}")
        say(f"  config and logs from the archive are in {got.extracted}")


@backup_app.command("prune")
def backup_prune(
    keep: Annotated[int, typer.Option(help="archives to keep (newest)")],
    home: HomeOpt = None,
    config: ConfigOpt = None,
    to: ToOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Delete all but the newest KEEP archives, locally and (with --to) in S3."""
    from solbot.ops.backup import prune

    s = settings_or_exit(home, config)
    with _errors():
        removed = prune(s.home, keep, to or s.backup_to, endpoint_url)
        for a in removed:
            say(f"removed {a.where}")
        say(f"{len(removed)} removed, newest {keep} kept")


def register(root: typer.Typer) -> None:
    """Add this module's commands and command groups to ``root``."""
    root.registered_commands.extend(app.registered_commands)
    root.registered_groups.extend(app.registered_groups)
