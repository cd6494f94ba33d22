"""``solbot run | kill | status | account | notify`` — the bot service's commands.

Exit codes beyond the common ones (see ``solbot.cli``): 10 the kill switch is engaged
(``run`` stopped by it or refused to start; systemd must not restart), 7 ``run --live``
found the exchange's books different from ours and did not trade, 5 ``status`` found the
bot unhealthy (HTTP 503).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from solbot.cli.common import (
    ConfigOpt,
    HomeOpt,
    UsageError,
    err,
    errors,
    fail,
    out,
    run_loop,
    settings_or_exit,
)
from solbot.runtime.exitcodes import (
    EXIT_KILLED,
    EXIT_UNHEALTHY,
    EXIT_USAGE,
)
from solbot.runtime.exitcodes import EXIT_UNREACHABLE as EXIT_EXCHANGE

if TYPE_CHECKING:
    pass

app = typer.Typer()


notify_app = typer.Typer(no_args_is_help=True, help="Discord notifications.")
app.add_typer(notify_app, name="notify")


@app.command()
def run(
    home: HomeOpt = None,
    config: ConfigOpt = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 3001)")] = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    replay: Annotated[Path | None, typer.Option(help="replay this data file")] = None,
    speed: Annotated[float | None, typer.Option(help="bars per second (paper)")] = None,
    exchange: Annotated[
        str | None,
        typer.Option(help="live market data from this ccxt exchange (fills stay simulated)"),
    ] = None,
    exchange_url: Annotated[str | None, typer.Option(help="REST base URL override")] = None,
    symbol: Annotated[str | None, typer.Option()] = None,
    symbols: Annotated[
        str | None,
        typer.Option(help="several symbols in one bot, e.g. SOL/USDT,BTC/USDT,ETH/USDT (paper)"),
    ] = None,
    timeframe: Annotated[str | None, typer.Option()] = None,
    strategy: Annotated[str | None, typer.Option()] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="send real orders to --exchange (also needs API keys, "
            "SOLBOT_LIVE_CONFIRM=real-money and SOLBOT_MAX_ORDER_VALUE)",
        ),
    ] = False,
    accept_exchange_state: Annotated[
        bool,
        typer.Option(
            "--accept-exchange-state",
            help="live: adopt the exchange's balances when they differ from ours",
        ),
    ] = False,
) -> None:
    """Run the bot: paper trading on the synthetic market unless told otherwise."""
    from solbot.bot import build_bot
    from solbot.infra import logs

    market = "replay" if replay else "exchange" if exchange else None
    s = settings_or_exit(
        home,
        config,
        port=port,
        host=host,
        replay_file=replay,
        speed=speed,
        exchange=exchange,
        exchange_url=exchange_url,
        symbol=symbol,
        symbols=symbols,
        timeframe=timeframe,
        strategy=strategy,
        market=market,
        live=live or None,
        accept_exchange_state=accept_exchange_state or None,
    )
    nested = sorted(p.name for p in s.home.glob("*-backup") if (p / "current").is_symlink())
    if nested:  # the runbook's `cp -r BACKUP HOME` into an existing HOME nests the copy
        fail(
            EXIT_USAGE,
            f"{s.home / nested[0]} is a release backup copied into the app dir (plain "
            f"`cp -r` nests it, nothing was restored); restore with `cp -rT` or "
            f"`solbot rollback`, then remove it",
        )
    if s.kill_flag.exists():
        fail(
            EXIT_KILLED,
            f"kill switch flag {s.kill_flag} exists; not trading "
            f"(clear it with: solbot kill --clear)",
        )
    logs.configure(s.logs_dir, s.log_level, s.secrets(), s.log_rotation)
    with errors():
        service = build_bot(s)
        try:  # the kill switch, reconciliation, a damaged database: their own exit codes
            code = run_loop(service.run())
        except OSError as exc:
            raise UsageError(str(exc)) from None
    # Everything is persisted and the logs are flushed: leave without the interpreter's
    # teardown (hundreds of ms of module finalisation that a kill switch should not wait on).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
def kill(
    home: HomeOpt = None,
    config: ConfigOpt = None,
    reason: Annotated[
        str, typer.Option(help="why (shown in alerts and the audit log)")
    ] = "operator: solbot kill",
    clear: Annotated[bool, typer.Option("--clear", help="remove the flag")] = False,
) -> None:
    """Engage the kill switch (create <home>/data/kill-switch.flag), or clear it. The home
    is found as the bot finds it (--home > SOLBOT_HOME > the config file > the profile's)."""
    from solbot.runtime.config import ConfigError, resolve_home

    try:
        root = resolve_home(home, config)
    except ConfigError as exc:
        fail(2, str(exc))
        raise AssertionError from exc  # unreachable: fail() exits
    from solbot.infra.killswitch import KillFlag

    flag = KillFlag.of_home(root)
    if clear:
        if flag.clear():
            out.print(f"kill switch cleared: {flag} removed")
        else:
            out.print(f"kill switch was not engaged ({flag} absent)")
        return
    flag.engage(reason)  # appears atomically, with its reason already inside
    out.print(f"kill switch engaged: {flag}")


def _get(url: str, path: str) -> Any:
    import httpx

    try:
        return httpx.get(url.rstrip("/") + path, timeout=5.0)
    except httpx.HTTPError as exc:
        fail(EXIT_EXCHANGE, f"bot API not reachable at {url}: {type(exc).__name__}")
        raise AssertionError from exc


def _url(url: str | None, home: Path | None) -> str:
    if url:
        return url
    s = settings_or_exit(home, None)
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
    return f"http://{host}:{s.port}"


UrlOpt = Annotated[str | None, typer.Option("--url", help="API base URL")]


@app.command()
def status(
    url: UrlOpt = None,
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show /api/status for a person. Exit 5 when the bot reports itself unhealthy."""
    r = _get(_url(url, home), "/api/status")
    body = r.json()
    if as_json:
        out.print_json(json.dumps(body))
    else:
        t = Table(show_header=False)
        for key in (
            "status",
            "problems",
            "mode",
            "market",
            "symbol",
            "version",
            "uptime_seconds",
            "last_market_data_time",
            "bars_processed",
            "trading_state",
            "trading_state_reason",
            "paused",
            "kill_switch",
        ):
            t.add_row(key.replace("_", " "), str(body.get(key)))
        symbols = body.get("symbols") or []
        for sym in symbols if len(symbols) > 1 else []:
            t.add_row(
                f"  {sym['symbol']}",
                f"{sym['trading_state']} · weight {sym['weight']} · {sym['bars_processed']} bars"
                f" · last data {sym['last_market_data_time']}",
            )
        out.print(t)
    if r.status_code == 503:
        raise typer.Exit(EXIT_UNHEALTHY)
    if r.status_code != 200:
        fail(EXIT_EXCHANGE, f"unexpected HTTP {r.status_code} from /api/status")


@app.command()
def account(
    url: UrlOpt = None,
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show /api/account for a person."""
    r = _get(_url(url, home), "/api/account")
    if r.status_code != 200:
        fail(EXIT_EXCHANGE, f"unexpected HTTP {r.status_code} from /api/account")
    body = r.json()
    if as_json:
        out.print_json(json.dumps(body))
        return
    t = Table(show_header=False)
    for key in ("balance", "equity", "dailyPnL", "totalPnL", "fees"):
        t.add_row(key, f"{body[key]} {body['asset']}")
    for asset, b in body["balances"].items():
        t.add_row(f"balance {asset}", f"free {b['free']} / locked {b['locked']}")
    for p in body["positions"]:
        t.add_row(
            f"position {p['symbol']}",
            f"{p['qty']} @ {p['avgPrice']} (unrealised {p['unrealisedPnL']})",
        )
    symbols = body.get("symbols") or []
    if len(symbols) > 1:
        t.add_row("exposure", f"{body['exposure']} {body['asset']} (cap {body['exposureCap']})")
        for sym in symbols:
            t.add_row(
                f"sleeve {sym['symbol']}",
                f"equity {sym['equity']} (total PnL {sym['totalPnL']}, weight {sym['weight']})",
            )
    out.print(t)


discord_app = typer.Typer(no_args_is_help=True, help="Control from Discord (slash commands).")
app.add_typer(discord_app, name="discord")


@discord_app.command("register")
def discord_register(home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Register the bot's slash commands (/status … /kill) with the Discord application.
    Exit 2: application id or bot token not set; 4: Discord did not take them."""
    from solbot.control.discord import register_commands

    s = settings_or_exit(home, config)
    if not s.discord_application_id or s.discord_bot_token is None:
        fail(2, "config: discord_application_id and discord_bot_token: both needed to register")
        return
    status, line = register_commands(
        s.discord_api_url, s.discord_application_id, s.discord_bot_token.get_secret_value()
    )
    if status != 200:
        fail(EXIT_EXCHANGE, line)
    out.print(line)


@notify_app.command("test")
def notify_test(home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Send a P3 test message to the configured Discord webhook."""
    from solbot.infra.notify import send_once

    s = settings_or_exit(home, config)
    if s.discord_webhook_url is None:
        fail(2, "config: discord_webhook_url: not set (SOLBOT_DISCORD_WEBHOOK_URL)")
        return
    ok = asyncio.run(
        send_once(
            s.discord_webhook_url, "P3", "Test notification", f"solbot notify test from {s.home}"
        )
    )
    if not ok:
        fail(EXIT_EXCHANGE, "Discord did not accept the test message")
    out.print("test notification delivered")


@notify_app.command("send")
def notify_send(
    title: Annotated[str, typer.Option(help="one line")],
    message: Annotated[str, typer.Option(help="the body")] = "",
    severity: Annotated[str, typer.Option(help="P0 (critical) … P3 (low)")] = "P3",
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Send one message to the configured Discord webhook (deploy pipelines report with it).
    Exit 2: no webhook configured or a bad severity; 4: Discord did not accept it."""
    from solbot.infra.notify import send_once

    if severity not in ("P0", "P1", "P2", "P3"):
        fail(2, f"--severity: expected P0, P1, P2 or P3, got {severity!r}")
    s = settings_or_exit(home, config)
    if s.discord_webhook_url is None:
        fail(2, "config: discord_webhook_url: not set (SOLBOT_DISCORD_WEBHOOK_URL)")
        return
    if not asyncio.run(send_once(s.discord_webhook_url, severity, title, message)):
        fail(EXIT_EXCHANGE, "Discord did not accept the message")
    out.print(f"{severity} notification delivered")


__all__ = ["account", "err", "kill", "run", "status"]


def register(root: typer.Typer) -> None:
    """Add this module's commands and command groups to ``root``."""
    root.registered_commands.extend(app.registered_commands)
    root.registered_groups.extend(app.registered_groups)
