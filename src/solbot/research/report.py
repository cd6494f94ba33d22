"""HTML report of a walk-forward run: out-of-sample equity against buy & hold, drawdown,
and the parameters chosen in each window. Self-contained (plotly.js inlined)."""

from __future__ import annotations

from pathlib import Path

from solbot.domain.messages import ms_to_datetime
from solbot.reporting.metrics import drawdown
from solbot.research.optimize import WalkForward


def write_walk_forward_report(wf: WalkForward, out: Path) -> Path:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    step = max(1, len(wf.ts) // 20_000)
    times = [ms_to_datetime(int(t)) for t in wf.ts[::step]]
    bh = 10000.0 * wf.close / wf.close[0]
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.05,
        subplot_titles=("Out-of-sample equity (log)", "Drawdown %"),
    )
    fig.add_trace(
        go.Scattergl(x=times, y=wf.equity[::step], name=wf.strategy, line={"color": "#f5a524"}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scattergl(x=times, y=bh[::step], name="buy & hold", line={"color": "#8aa4c8"}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scattergl(
            x=times,
            y=-100 * drawdown(wf.equity)[::step],
            name=f"{wf.strategy} drawdown",
            fill="tozeroy",
            line={"color": "#e5484d"},
        ),
        row=2,
        col=1,
    )
    m, b = wf.metrics, wf.buy_hold
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(
        template="plotly_dark",
        height=800,
        hovermode="x unified",
        title={
            "text": f"{wf.strategy}: walk-forward ({len(wf.windows)} test months)<br><sub>"
            f"OOS return {m.total_return:+.1%}, Sharpe {m.sharpe:.2f}, max DD "
            f"{m.max_drawdown:.1%}, trades {m.trades} · buy & hold {b.total_return:+.1%}, "
            f"max DD {b.max_drawdown:.1%}</sub>"
        },
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "walk_forward.html"
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path
