"""What every ``solbot`` command shares: the consoles, one-line failures with their exit
codes, the --home and --config options, reading the settings, parsing helpers.

Exit codes: 0 success; 1 unexpected internal error; 2 bad arguments or configuration;
3 bad or unusable market data; 4 the exchange could not be reached or refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from solbot.data.bars import BarArrays, DataError
from solbot.data.importers import load_bars
from solbot.data.validate import GapPolicy, validate
from solbot.domain.errors import ConfigurationError, ExchangeError, SolbotError
from solbot.runtime.exitcodes import (
    EXIT_USAGE,
)

if TYPE_CHECKING:
    from solbot.runtime.config import Settings

out = Console()
err = Console(stderr=True)
log = logging.getLogger("solbot")


class UsageError(ConfigurationError):
    pass


class ExchangeUnavailable(ExchangeError):
    pass


class Gaps(StrEnum):
    error = "error"
    warn = "warn"
    allow = "allow"


def fail(code: int, message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn known failures into one line and a documented exit code: every kind of
    ``domain.errors.SolbotError`` carries its own. A plain ``ValueError`` still means bad
    arguments (exit 2): many checks below the CLI raise it for a bad value."""
    try:
        yield
    except SolbotError as exc:
        fail(exc.exit_code, str(exc))
    except ValueError as exc:
        fail(EXIT_USAGE, str(exc))


def home() -> Path:
    return Path(os.environ.get("SOLBOT_HOME") or ".").resolve()


def parse_time(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{name}: expected an ISO date like 2021-06-01, got {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}")
        value: Any = raw
        for conv in (int, float):
            try:
                value = conv(raw)
                break
            except ValueError:
                continue
        params[key] = value
    return params


def decimal_opt(value: str, name: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise UsageError(f"{name}: not a number: {value!r}") from None
    if not d.is_finite():
        raise UsageError(f"{name}: must be finite")
    return d


def progress_bar(label: str) -> tuple[Progress, Callable[[int, int], None]]:
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def load_checked(path: Path, gaps: Gaps) -> BarArrays:
    bars = load_bars(path)
    try:
        warnings = validate(bars, GapPolicy(gaps.value))
    except DataError as exc:  # one line naming the file, as the importers' errors do
        raise DataError(f"{path}: {exc}") from None
    for warning in warnings:
        err.print(
            f"[yellow]warning:[/yellow] {path.name}: {warning}", highlight=False, soft_wrap=True
        )
    return bars


def metrics_table(title: str, metrics: dict[str, object]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    pct = {"total_return", "cagr", "max_drawdown", "win_rate", "exposure", "buy_and_hold_return"}
    for key, value in metrics.items():
        if value is None:
            shown = "n/a"
        elif key in pct and isinstance(value, float):
            shown = f"{value:.2%}"
        elif isinstance(value, float):
            shown = f"{value:.3f}"
        else:
            shown = str(value)
        table.add_row(key.replace("_", " "), shown)
    return table


HomeOpt = Annotated[Path | None, typer.Option("--home", help="SOLBOT_HOME (default: cwd)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file")]


def run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (it is with uvicorn[standard]), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def settings_or_exit(home: Path | None, config: Path | None, **overrides: Any) -> Settings:
    from solbot.runtime.config import ConfigError, load_settings

    try:
        return load_settings(home, config, overrides)
    except ConfigError as exc:
        fail(2, str(exc))
        raise AssertionError from exc  # unreachable: fail() exits
