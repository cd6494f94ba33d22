"""The ``solbot`` command. Wires everything; configures logging once.

Exit codes: 0 success; 1 unexpected internal error; 2 bad arguments or configuration;
3 bad or unusable market data; 4 the exchange could not be reached or refused.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from solbot import __version__
from solbot.data.bars import BarArrays, DataError, timeframe_ms
from solbot.data.importers import load_bars
from solbot.data.validate import GapPolicy, validate
from solbot.runtime.exitcodes import (
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
)
from solbot.runtime.exitcodes import EXIT_UNREACHABLE as EXIT_EXCHANGE

app = typer.Typer(add_completion=False, no_args_is_help=True, help="SOL-Bot trading bot.")
data_app = typer.Typer(no_args_is_help=True, help="Market data: import, download, list.")
app.add_typer(data_app, name="data")
out = Console()
err = Console(stderr=True)
log = logging.getLogger("solbot")


class UsageError(Exception):
    pass


class ExchangeUnavailable(Exception):
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
    """Turn known failures into one line and a documented exit code."""
    try:
        yield
    except DataError as exc:
        fail(EXIT_DATA, str(exc))
    except (UsageError, ValueError) as exc:
        fail(EXIT_USAGE, str(exc))
    except ExchangeUnavailable as exc:
        fail(EXIT_EXCHANGE, str(exc))


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


@app.command()
def backtest(
    data: Annotated[
        Path, typer.Option("--data", help="freqtrade JSON, Binance CSV/zip or Parquet")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for result.json/report.html")],
    strategy: Annotated[
        str, typer.Option(help="built-in name, path/to/file.py[:Class] or an entry point")
    ] = "solbot",
    start: Annotated[str | None, typer.Option("--from", help="first bar time (ISO, UTC)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="end time, exclusive (ISO, UTC)")] = None,
    param: Annotated[list[str] | None, typer.Option(help="strategy parameter KEY=VALUE")] = None,
    cash: Annotated[str, typer.Option(help="initial quote balance")] = "10000",
    fee: Annotated[str, typer.Option(help="fee per side, e.g. 0.001")] = "0.001",
    slippage: Annotated[str, typer.Option(help="slippage, e.g. 0.0005")] = "0.0005",
    gaps: Annotated[Gaps, typer.Option(help="what to do about gaps in the data")] = Gaps.warn,
    report: Annotated[bool, typer.Option("--report/--no-report", help="write report.html")] = True,
    shortable: Annotated[
        bool, typer.Option("--shortable", help="allow short selling (margin/futures-like)")
    ] = False,
) -> None:
    """Backtest a strategy on a data file through the same engine the bot runs live."""
    with errors():
        run_backtest_command(
            data,
            out_dir,
            strategy,
            start,
            end,
            param or [],
            cash,
            fee,
            slippage,
            gaps,
            report,
            shortable,
        )


def run_backtest_command(
    data: Path,
    out_dir: Path,
    strategy: str,
    start: str | None,
    end: str | None,
    param: list[str],
    cash: str,
    fee: str,
    slippage: str,
    gaps: Gaps,
    report: bool,
    shortable: bool = False,
) -> None:
    from dataclasses import replace

    from solbot.reporting.report import write_report, write_result
    from solbot.runtime.backtest import BacktestConfig, instrument_for, run_backtest
    from solbot.strategies import create, source_sha256
    from solbot.venues.sim import SimConfig

    params = parse_params(param)
    strat = create(strategy, **params)
    fee_d = decimal_opt(fee, "--fee")
    config = BacktestConfig(
        initial_cash=decimal_opt(cash, "--cash"),
        sim=SimConfig(
            slippage=decimal_opt(slippage, "--slippage"), maker_fee=fee_d, taker_fee=fee_d
        ),
    )
    if config.initial_cash <= 0:
        raise UsageError("--cash must be positive")
    lo, hi = parse_time(start, "--from"), parse_time(end, "--to")
    t0 = time.perf_counter()
    bars = load_checked(data, gaps)
    if shortable:
        config = replace(config, instrument=replace(instrument_for(bars.symbol), shortable=True))
    if lo is not None or hi is not None:
        bars = bars.between(lo, hi)
        if len(bars) == 0:
            raise UsageError("no bars between --from and --to")
    bar, update = progress_bar("backtest")
    with bar:
        result = run_backtest(bars, strat, config, progress=update)
    payload_params = {
        "strategy": strategy,
        "strategy_sha256": source_sha256(strategy),  # a file's (deploy checks it)
        **params,
        "cash": cash,
        "fee": fee,
        "slippage": slippage,
    }
    path = write_result(result, out_dir, payload_params)
    elapsed = time.perf_counter() - t0
    title = f"{strategy} on {bars.symbol} {bars.timeframe} ({len(bars):,} bars)"
    out.print(metrics_table(title, result.metrics.to_json()))
    out.print(f"result: {path}")
    if report:
        out.print(f"report: {write_report(result, out_dir, title)}")
    out.print(f"elapsed: {elapsed:.2f} s ({len(bars) / elapsed:,.0f} bars/s end to end)")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/demo"),
    bars: Annotated[int, typer.Option(help="synthetic 1h bars")] = 8760,
    seed: Annotated[int, typer.Option()] = 8,
) -> None:
    """Backtest Donchian on the built-in synthetic market and write the report."""
    from solbot.data.store import write_parquet
    from solbot.data.synthetic import synthetic_market

    with errors():
        market, _ = synthetic_market(bars=bars, seed=seed)
        data = out_dir / "synthetic-SOL_USDT-1h.parquet"
        write_parquet(market, data)
        out.print(f"synthetic market: {data} ({bars:,} bars, seed {seed})")
        run_backtest_command(
            data, out_dir, "donchian", None, None, [], "10000", "0.001", "0.0005", Gaps.error, True
        )


@data_app.command("import")
def data_import(
    files: Annotated[list[Path], typer.Argument(help="freqtrade JSON, Binance CSV/zip, Parquet")],
    gaps: Annotated[Gaps, typer.Option()] = Gaps.warn,
) -> None:
    """Validate files and merge them into the local Parquet store (<home>/data/ohlcv)."""
    from solbot.data.store import OhlcvStore

    with errors():
        store = OhlcvStore(home() / "data")
        for f in files:
            bars = load_checked(f, gaps)
            merged = store.save(bars)
            validate(merged, GapPolicy.ALLOW)
            out.print(
                f"{f.name}: {len(bars):,} bars -> {store.path(bars.symbol, bars.timeframe)}"
                f" ({len(merged):,} stored)"
            )


@data_app.command("resample")
def data_resample(
    file: Annotated[Path, typer.Argument(help="any supported data file")],
    timeframe: Annotated[str, typer.Option(help="target timeframe, e.g. 1h, 4h, 1d")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Parquet file to write (default: into the store)")
    ] = None,
    gaps: Annotated[Gaps, typer.Option()] = Gaps.warn,
) -> None:
    """Aggregate bars to a coarser timeframe (an unfinished last bar is dropped)."""
    from solbot.data.resample import resample
    from solbot.data.store import OhlcvStore, write_parquet

    with errors():
        try:
            timeframe_ms(timeframe)
        except DataError as exc:
            raise UsageError(f"--timeframe: {exc}") from None
        bars = resample(load_checked(file, gaps), timeframe)
        if out_file is not None:
            write_parquet(bars, out_file)
            where = out_file
        else:
            store = OhlcvStore(home() / "data")
            store.save(bars)
            where = store.path(bars.symbol, bars.timeframe)
        out.print(f"{len(bars):,} {timeframe} bars -> {where}")


@data_app.command("list")
def data_list() -> None:
    """List what the local store holds."""
    from solbot.data.store import OhlcvStore

    with errors():
        entries = OhlcvStore(home() / "data").entries()
        table = Table("symbol", "timeframe", "bars", "first", "last", "file")
        for e in entries:
            table.add_row(
                e.symbol,
                e.timeframe,
                f"{e.rows:,}",
                datetime.fromtimestamp(e.first_ts / 1000, UTC).isoformat(),
                datetime.fromtimestamp(e.last_ts / 1000, UTC).isoformat(),
                str(e.path),
            )
        out.print(table if entries else "the store is empty")


@data_app.command("download")
def data_download(
    symbol: Annotated[str, typer.Option()] = "SOL/USDT",
    timeframe: Annotated[str, typer.Option()] = "1h",
    since: Annotated[str, typer.Option(help="ISO date (UTC)")] = "2024-01-01",
    until: Annotated[str | None, typer.Option(help="ISO date (UTC), default now")] = None,
    exchange: Annotated[str, typer.Option(help="ccxt exchange id")] = "binance",
    exchange_url: Annotated[str | None, typer.Option(help="override the REST base URL")] = None,
) -> None:
    """Download OHLCV through ccxt into the store, resuming after the last stored bar."""
    import ccxt

    from solbot.data.download import ccxt_exchange, download
    from solbot.data.store import OhlcvStore

    with errors():
        try:
            timeframe_ms(timeframe)
        except DataError as exc:
            raise UsageError(f"--timeframe: {exc}") from None
        ex = ccxt_exchange(exchange, exchange_url)
        now = int(time.time() * 1000)
        lo = parse_time(since, "--since")
        hi = parse_time(until, "--until") or now
        assert lo is not None
        store = OhlcvStore(home() / "data")
        bar, update = progress_bar(f"download {symbol} {timeframe}")
        try:
            with bar:
                n = download(ex, store, symbol, timeframe, lo, hi, now, progress=update)
        except ccxt.BadSymbol as exc:
            raise UsageError(f"--symbol: {exchange} has no market {symbol!r}") from exc
        except ccxt.BaseError as exc:
            first = (str(exc).splitlines() or [""])[0][:200]
            raise ExchangeUnavailable(f"{exchange}: {type(exc).__name__}: {first}") from None
        out.print(f"stored {n:,} new bars in {store.path(symbol, timeframe)}")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


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


from solbot import cli_bot  # noqa: E402  (registers run, kill, status, account, notify)

del cli_bot
from solbot import cli_research  # noqa: E402  (registers optimize)

del cli_research
from solbot import cli_emulator  # noqa: E402  (registers emulator)

del cli_emulator
from solbot import cli_ops  # noqa: E402  (registers secrets, smoke, deploy, rollback)

del cli_ops
from solbot import cli_backup  # noqa: E402  (registers backup)

del cli_backup
