"""Write a backtest's ``result.json`` and its self-contained ``report.html`` (plotly, no CDN)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from solbot.data.bars import BarArrays, FloatArray
from solbot.domain.messages import ms_to_datetime
from solbot.reporting.metrics import Metrics, drawdown
from solbot.reporting.page import COLOURS, page, style_figure, tile
from solbot.reporting.trades import Trade


class Run(Protocol):
    """What a report reads of a run (``runtime.backtest.BacktestResult`` is one)."""

    @property
    def bars(self) -> BarArrays: ...

    @property
    def equity(self) -> FloatArray: ...

    @property
    def trades(self) -> list[Trade]: ...

    @property
    def metrics(self) -> Metrics: ...


MAX_POINTS = 20_000  # larger series are decimated for the chart (every trade is kept)


def result_payload(result: Run, params: dict[str, Any]) -> dict[str, Any]:
    bars = result.bars
    return {
        "symbol": bars.symbol,
        "timeframe": bars.timeframe,
        "bars": len(bars),
        "start": ms_to_datetime(int(bars.ts[0])).isoformat() if len(bars) else None,
        "end": ms_to_datetime(int(bars.ts[-1])).isoformat() if len(bars) else None,
        "params": params,
        "metrics": result.metrics.to_json(),
        "trades": [t.to_json() for t in result.trades],
    }


def write_result(result: Run, out: Path, params: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result_payload(result, params), indent=2))
    tmp.replace(path)
    return path


def _decimate(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_POINTS).astype(np.int64))


def write_report(result: Run, out: Path, title: str) -> Path:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    bars = result.bars
    n = len(bars)
    idx = _decimate(n)
    times = [ms_to_datetime(int(t)) for t in bars.ts[idx]]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=[0.55, 0.25, 0.20],
        subplot_titles=("Price with entries and exits", "Equity", "Drawdown"),
    )
    if n <= 3000:
        fig.add_trace(
            go.Candlestick(
                x=times,
                open=bars.open,
                high=bars.high,
                low=bars.low,
                close=bars.close,
                name=bars.symbol,
                increasing={"line": {"color": COLOURS["up"]}},
                decreasing={"line": {"color": COLOURS["down"]}},
            ),
            row=1,
            col=1,
        )
    else:
        fig.add_trace(
            go.Scattergl(
                x=times,
                y=bars.close[idx],
                name=f"{bars.symbol} close",
                line={"width": 1, "color": "#8aa4c8"},
            ),
            row=1,
            col=1,
        )
    entries = [(ms_to_datetime(t.entry_ts), float(t.entry_price)) for t in result.trades]
    exits = [
        (ms_to_datetime(t.exit_ts), float(t.exit_price))
        for t in result.trades
        if t.exit_ts is not None and t.exit_price is not None
    ]
    for pts, name, symbol, color in (
        (entries, "entry", "triangle-up", COLOURS["up"]),
        (exits, "exit", "triangle-down", COLOURS["down"]),
    ):
        if pts:
            fig.add_trace(
                go.Scattergl(
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    mode="markers",
                    name=name,
                    marker={"symbol": symbol, "size": 8, "color": color},
                ),
                row=1,
                col=1,
            )
    fig.add_trace(
        go.Scattergl(
            x=times, y=result.equity[idx], name="equity", line={"color": COLOURS["equity"]}
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scattergl(
            x=times,
            y=-100 * drawdown(result.equity)[idx],
            name="drawdown %",
            fill="tozeroy",
            line={"color": COLOURS["down"]},
        ),
        row=3,
        col=1,
    )
    m = result.metrics
    style_figure(fig)
    fig.update_layout(height=900, xaxis_rangeslider_visible=False, showlegend=False)
    tiles = [
        tile("Return", f"{m.total_return:+.1%}", f"CAGR {m.cagr:+.1%}", m.total_return),
        tile("Sharpe", f"{m.sharpe:.2f}"),
        tile("Max drawdown", f"{m.max_drawdown:.1%}"),
        tile("Trades", f"{m.trades}", f"fees {float(m.fees_paid):,.2f}"),
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    span = f"{bars.symbol} {bars.timeframe} · {times[0]:%Y-%m-%d} → {times[-1]:%Y-%m-%d}"
    note = "backtest through the engine the bot runs live · plotly.js inlined: works offline"
    path.write_text(page(title, span, tiles, fig, note))
    return path
