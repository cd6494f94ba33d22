"""``solbot emulator`` — a local Binance-spot-compatible exchange (see
``solbot.emulator.binance``) that the bot and real ccxt can trade against on loopback."""

from __future__ import annotations

import contextlib
import os
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from solbot.cli.common import UsageError, errors, out

app = typer.Typer()


def _balances(spec: str) -> dict[str, Decimal]:
    out_: dict[str, Decimal] = {}
    for part in spec.split(","):
        asset, sep, amount = part.strip().partition("=")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = Decimal(-1)
        if not sep or not asset or value < 0:
            raise UsageError(f"--balances: expected ASSET=AMOUNT[,...], got {part!r}")
        out_[asset.upper()] = value
    return out_


def _symbols(spec: str) -> list[str]:
    out_ = [p.strip().upper() for p in spec.split(",") if p.strip()]
    for sym in out_:
        base, sep, quote = sym.partition("/")
        if not (base and sep and quote):
            raise UsageError(f"--symbols: expected BASE/QUOTE[,...], got {sym!r}")
    if not out_ or len(set(out_)) != len(out_):
        raise UsageError("--symbols: list each market once")
    return out_


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8765,
    faults: Annotated[
        str | None,
        typer.Option(help="e.g. 429=0.05,500=0.05,timeout=0.03,drop=0.03,418=0.01,latency=0.01"),
    ] = None,
    speed: Annotated[float, typer.Option(help="bars per second of the synthetic market")] = 4.0,
    timeframe: Annotated[str, typer.Option()] = "1m",
    seed: Annotated[int, typer.Option()] = 8,
    balances: Annotated[str, typer.Option(help="starting balances")] = "USDT=10000,SOL=0",
    symbols: Annotated[
        str, typer.Option(help="its spot markets, e.g. SOL/USDT,BTC/USDT,ETH/USDT")
    ] = "SOL/USDT",
    behaviour: Annotated[
        str | None,
        typer.Option(
            help="Binance's documented behaviour: clock=2.5,lookup_lag=3,bnb=600,"
            "weight_limit=600,ban=5,ws_lifetime=30,ws_ping=20,kline_updates=3 "
            "(solbot/emulator/behaviour.py names each one's source)"
        ),
    ] = None,
    fees_in_quote: Annotated[
        bool,
        typer.Option(
            "--fees-in-quote",
            help="charge every fee in USDT (default: like Binance, a buy's fee in SOL)",
        ),
    ] = False,
) -> None:
    """Run a local Binance spot emulator. API key and secret come from SOLBOT_EXCHANGE_API_KEY
    and SOLBOT_EXCHANGE_API_SECRET (defaults: emulator-key / emulator-secret)."""
    import asyncio

    from solbot.emulator.binance import (
        Behaviour,
        BehaviourError,
        BinanceEmulator,
        FaultSpec,
        FaultSpecError,
        serve_emulator,
    )

    with errors():
        try:
            spec = FaultSpec.parse(faults)
        except FaultSpecError as exc:
            raise UsageError(f"--faults: {exc}") from None
        try:
            modes = Behaviour.parse(behaviour)
        except BehaviourError as exc:
            raise UsageError(f"--behaviour: {exc}") from None
        if speed <= 0:
            raise UsageError("--speed must be positive")
        emu = BinanceEmulator(
            os.environ.get("SOLBOT_EXCHANGE_API_KEY", "emulator-key"),
            os.environ.get("SOLBOT_EXCHANGE_API_SECRET", "emulator-secret"),
            _balances(balances),
            spec,
            speed=speed,
            timeframe=timeframe,
            seed=seed,
            fee_in_received=not fees_in_quote,
            symbols=_symbols(symbols),
            behaviour=modes,
        )
        markets = ", ".join(emu.markets)
        out.print(f"Binance spot emulator on http://127.0.0.1:{port} ({markets}, {timeframe})")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_emulator(emu, "127.0.0.1", port))


def register(root: typer.Typer) -> None:
    """Add this module's commands and command groups to ``root``."""
    root.registered_commands.extend(app.registered_commands)
    root.registered_groups.extend(app.registered_groups)
