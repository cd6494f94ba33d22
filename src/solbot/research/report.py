"""HTML report of a walk-forward run: out-of-sample equity against buy & hold, drawdown,
and the parameters chosen in each window. Self-contained (plotly.js inlined)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from solbot.domain.messages import ms_to_datetime
from solbot.reporting.metrics import drawdown
from solbot.reporting.page import COLOURS, page, style_figure, tile
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
        go.Scattergl(
            x=times, y=wf.equity[::step], name=wf.strategy, line={"color": COLOURS["equity"]}
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scattergl(
            x=times, y=bh[::step], name="buy & hold", line={"color": COLOURS["reference"]}
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scattergl(
            x=times,
            y=-100 * drawdown(wf.equity)[::step],
            name=f"{wf.strategy} drawdown",
            fill="tozeroy",
            line={"color": COLOURS["down"]},
        ),
        row=2,
        col=1,
    )
    m, b = wf.metrics, wf.buy_hold
    fig.update_yaxes(type="log", row=1, col=1)
    style_figure(fig)
    fig.update_layout(height=800)
    tiles = [
        tile(
            "OOS return",
            f"{m.total_return:+.1%}",
            f"buy & hold {b.total_return:+.1%}",
            m.total_return,
        ),
        tile("Sharpe", f"{m.sharpe:.2f}", f"buy & hold {b.sharpe:.2f}"),
        tile("Max drawdown", f"{m.max_drawdown:.1%}", f"buy & hold {b.max_drawdown:.1%}"),
        tile("Trades", f"{m.trades}", f"{len(wf.windows)} test months"),
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "walk_forward.html"
    title = f"{wf.strategy}: walk-forward, out-of-sample only"
    note = "each month tested with parameters chosen on the 3 months before it"
    path.write_text(page(title, f"{len(wf.windows)} test windows", tiles, fig, note))
    return path


def write_study_report(study: Any, out: Path, strategy: str) -> Path:
    """``study.html`` for a plain ``solbot optimize``: the objective trial by trial and each
    parameter against it. In-sample by nature — the page says so."""
    import optuna.visualization as vis

    done = [t for t in study.trials if t.value is not None]
    figs = [vis.plot_optimization_history(study)]
    if study.best_params:
        figs.append(vis.plot_slice(study))
    for fig in figs:
        style_figure(fig)
        fig.update_layout(height=420, title=None)
    best = study.best_trial if done else None
    tiles = [
        tile("Trials", f"{len(study.trials)}", f"{len(done)} with a value"),
        tile("Best objective", f"{best.value:.3f}" if best else "—", "Sharpe − 2 × max DD"),
        tile(
            "Best parameters",
            ", ".join(f"{k}={v}" for k, v in (best.params if best else {}).items()) or "—",
        ),
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "study.html"
    note = "in-sample: judge parameters by the walk-forward report (--walk-forward), not by this"
    path.write_text(
        page(f"{strategy}: optimiser study {study.study_name}", "in-sample", tiles, figs, note)
    )
    return path
