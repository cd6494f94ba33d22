"""The dashboard's view of the bot: everything the page at ``/`` shows, as JSON-ready values,
from the view's snapshots (``api.dashboard`` serves it and streams it)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Protocol

from solbot import __version__
from solbot.domain.messages import Bar
from solbot.runtime.sleeve import Sleeve
from solbot.runtime.view import AccountSnapshot, StatusSnapshot


class Source(Protocol):
    """What the dashboard reads (``runtime.reader.Reader``)."""

    def account(self) -> AccountSnapshot: ...

    def status(self) -> StatusSnapshot: ...

    def fills(self, limit: int, symbol: str | None) -> list[dict[str, Any]]: ...

    def regimes(self, sl: Sleeve, bars: list[Bar]) -> list[str]: ...


BARS = 300  # bars on the price chart
FILLS = 200


def _dec(v: Decimal) -> str:
    return "0" if v == 0 else format(v, "f")


def dashboard(view: Source, sl: Sleeve, since: int) -> dict[str, Any]:
    """Everything on the page; series only past ``since`` (a bar open time, ms). The account
    is the whole account; price, position, orders and fills are ``sl``'s."""
    acct, status = view.account(), view.status()
    books = acct.books(sl.symbol)
    money = sl.instrument.money
    recent = list(sl.recent_bars)[-BARS:]
    regimes = view.regimes(sl, recent)
    bars = [(b, r) for b, r in zip(recent, regimes, strict=True) if b.ts > since]
    fills = [
        {
            "ts": f["ts"],
            "side": f["side"],
            "price": _dec(f["price"]),
            "qty": _dec(f["quantity"]),
            "fee": f"{_dec(f['fee'])} {f['fee_asset']}",
            "pnl": _dec(f["realised_pnl"]),
        }
        for f in view.fills(FILLS, sl.symbol)
        if f["ts"] > since
    ]
    pos = books.position
    sleeve_status = {x.symbol: x for x in status.symbols}
    return {
        "version": __version__,
        "symbol": sl.symbol,
        "symbols": [
            {
                "symbol": b.symbol,
                "weight": _dec(b.weight),
                "equity": _dec(b.equity),
                "position": _dec(b.position.qty),
                "base": b.base,
                "trading_state": sleeve_status[b.symbol].trading_state.value,
                "last_data": sleeve_status[b.symbol].last_bar_ts,
            }
            for b in acct.sleeves
        ],
        "timeframe": status.timeframe,
        "mode": status.mode,
        "market": status.market,
        "now": time.time(),
        "status": {
            "healthy": status.healthy,
            "problems": list(status.problems),
            "trading_state": status.trading_state.value,
            "reason": status.trading_state_reason,
            "paused": status.paused,
            "kill_switch": status.kill_engaged,
            "kill_reason": status.kill_reason,
            "uptime": round(status.uptime_seconds, 1),
            "last_data": sleeve_status[sl.symbol].last_bar_ts,
            "bars_processed": status.bars_processed,
            "token_configured": status.token_configured,
        },
        "account": {
            "quote": books.quote,
            "base": books.base,
            "equity": _dec(acct.equity),
            "daily_pnl": _dec(acct.daily_pnl),
            "total_pnl": _dec(acct.total_pnl),
            "day_start_equity": _dec(acct.day_start_equity),
            "daily_loss_limit": _dec(money(acct.day_start_equity * acct.daily_loss_limit)),
            "daily_loss_limit_ratio": _dec(acct.daily_loss_limit),
            "balances": {a: _dec(f + lk) for a, (f, lk) in books.balances.items()},
            "exposure": _dec(acct.exposure),
            "exposure_cap": _dec(acct.exposure_cap),
        },
        "position": {
            "qty": _dec(pos.qty),
            "avg_price": _dec(pos.avg_price) if not pos.is_flat else None,
            "unrealised": _dec(pos.unrealised_pnl),
            "realised": _dec(pos.realised_pnl),
        },
        "orders": [
            {
                "id": o.order_id,
                "side": o.side,
                "type": o.type,
                "qty": _dec(o.quantity),
                "price": _dec(o.price) if o.price is not None else None,
                "status": o.status,
            }
            for o in books.open_orders
        ],
        "bars": [[b.ts, b.open, b.high, b.low, b.close] for b, _ in bars],
        "regimes": [r for _, r in bars],
        "equity": [[ts, v] for ts, v in acct.equity_points if ts > since],
        "fills": fills,
    }
