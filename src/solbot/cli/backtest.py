"""``solbot backtest | demo | data ... | version``: backtests and market data."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from solbot import __version__
from solbot.cli.common import (
    ExchangeUnavailable,
    Gaps,
    UsageError,
    decimal_opt,
    errors,
    home,
    load_checked,
    metrics_table,
    out,
    parse_params,
    parse_time,
    progress_bar,
)
from solbot.data.bars import DataError, timeframe_ms
from solbot.data.validate import GapPolicy, validate
from solbot.defaults import DEFAULT_STRATEGY

app = typer.Typer()
data_app = typer.Typer(no_args_is_help=True, help="Market data: import, download, list.")
app.add_typer(data_app, name="data")


@app.command()
def backtest(
    data: Annotated[
        Path, typer.Option("--data", help="freqtrade JSON, Binance CSV/zip or Parquet")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for result.json/report.html")],
    strategy: Annotated[
        str, typer.Option(help="built-in name, path/to/file.py[:Class] or an entry point")
    ] = DEFAULT_STRATEGY,
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

    from solbot.domain.instruments import instrument_for
    from solbot.reporting.report import write_report, write_result
    from solbot.runtime.backtest import BacktestConfig, run_backtest
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

    from solbot.data.download import download
    from solbot.data.store import OhlcvStore
    from solbot.venues.clients import market_client

    with errors():
        try:
            timeframe_ms(timeframe)
        except DataError as exc:
            raise UsageError(f"--timeframe: {exc}") from None
        ex = market_client(exchange, exchange_url)
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


def register(root: typer.Typer) -> None:
    """Add this module's commands and command groups to ``root``."""
    root.registered_commands.extend(app.registered_commands)
    root.registered_groups.extend(app.registered_groups)
