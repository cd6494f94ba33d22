"""The ``solbot`` command: one Typer app, each command module registered explicitly;
logging configured once. Exit codes: see ``solbot.cli.common``."""

from __future__ import annotations

import logging
import os
import sys

import typer

from solbot.cli import backtest, backup, bot, doctor, emulator, ops, research
from solbot.cli.common import err
from solbot.runtime.exitcodes import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

app = typer.Typer(add_completion=False, no_args_is_help=True, help="SOL-Bot trading bot.")
for module in (backtest, bot, research, emulator, ops, backup, doctor):
    module.register(app)
log = logging.getLogger("solbot")


def _is_usage_error(exc: BaseException) -> bool:
    """Click's (or Typer's vendored click's) usage errors, without importing either."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "ClickException" in names and hasattr(exc, "format_message")


def bootstrap_level(raw: str | None) -> int:
    """The log level before the settings are read: ``SOLBOT_LOG_LEVEL`` in any case, else
    WARNING — a value the settings refuse is reported by them (exit 2), not by a traceback
    here that would stop every command, ``solbot kill`` included."""
    level = logging.getLevelName((raw or "WARNING").strip().upper())
    return level if isinstance(level, int) else logging.WARNING


def main() -> None:
    logging.basicConfig(
        level=bootstrap_level(os.environ.get("SOLBOT_LOG_LEVEL")),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except Exception as exc:
        if _is_usage_error(exc):  # one line, not the framework's usage box
            message = exc.format_message()  # type: ignore[attr-defined]
            if message:
                err.print(
                    f"[red]error:[/red] {message} (see --help)", highlight=False, soft_wrap=True
                )
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
        # A bug: keep it to one line; the traceback is logged at debug level.
        log.debug("internal error", exc_info=exc)
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
