"""``solbot optimize`` — Optuna search, walk-forward evaluation and Monte Carlo."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from solbot.cli.common import Gaps, errors, load_checked, metrics_table, out, progress_bar
from solbot.defaults import DEFAULT_STRATEGY
from solbot.runtime.exitcodes import EXIT_LOOKAHEAD

app = typer.Typer()


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


@app.command()
def optimize(
    data: Annotated[Path, typer.Option("--data", help="any supported data file")],
    strategy: Annotated[
        str, typer.Option(help="built-in name, path/to/file.py[:Class] or an entry point")
    ] = DEFAULT_STRATEGY,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials (per window)")] = 30,
    storage: Annotated[
        str | None, typer.Option(help="study storage URL (default: sqlite in --out)")
    ] = None,
    study: Annotated[str | None, typer.Option(help="study name (shared by workers)")] = None,
    walk: Annotated[
        bool,
        typer.Option(
            "--walk-forward", help="rolling 3 m train / 1 m test, report only test windows"
        ),
    ] = False,
    seed: Annotated[int, typer.Option()] = 0,
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/optimize"),
    objective: Annotated[
        str,
        typer.Option(
            help="sharpe, sortino, calmar, sharpe-dd (Sharpe - 2 × max drawdown), profit-dd "
            "(return - 2 × max drawdown) or module:function (of the backtest's Metrics)"
        ),
    ] = "sharpe-dd",
    min_trades: Annotated[
        int, typer.Option(min=0, help="trials with fewer round trips are penalised")
    ] = 0,
    jobs: Annotated[
        int, typer.Option(min=1, help="processes: trials (or walk-forward windows) in parallel")
    ] = 1,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="stop a trial early when it trails the median at 1/4, 2/4, 3/4"
        ),
    ] = False,
) -> None:
    """Search a strategy's declared parameters (``Strategy.parameters``) with Optuna."""
    from solbot.research.optimize import optimize as run_optimize
    from solbot.research.optimize import walk_forward
    from solbot.research.report import write_walk_forward_report
    from solbot.strategies import source_sha256

    with errors():
        bars = load_checked(data, Gaps.warn)
        out_dir.mkdir(parents=True, exist_ok=True)
        bar, update = progress_bar("walk-forward" if walk else "trials")
        if walk:
            with bar:
                wf = walk_forward(
                    bars, strategy, trials=trials, seed=seed, progress=update,
                    objective=objective, min_trades=min_trades, jobs=jobs, prune=prune,
                )  # fmt: skip
            payload = {
                "strategy": strategy,
                "strategy_sha256": source_sha256(strategy),  # a file's (deploy --tested)
                "trials_per_window": trials,
                "objective": objective,
                "min_trades": min_trades,
                "pruned": prune,
                "out_of_sample": wf.metrics.to_json(),
                "buy_and_hold": wf.buy_hold.to_json(),
                "monte_carlo": wf.monte_carlo,
                "windows": [
                    vars(w)
                    if not hasattr(w, "__slots__")
                    else {s: getattr(w, s) for s in w.__slots__}
                    for w in wf.windows
                ],
            }
            (out_dir / "walk_forward.json").write_text(json.dumps(_clean(payload), indent=2))
            out.print(
                metrics_table(
                    f"{strategy}: walk-forward, test windows only ({len(wf.windows)} × 1 month)",
                    wf.metrics.to_json(),
                )
            )
            out.print(metrics_table("buy & hold, same months", wf.buy_hold.to_json()))
            out.print(f"Monte Carlo (500 resamples of trade order): {wf.monte_carlo}")
            out.print(f"report: {write_walk_forward_report(wf, out_dir)}")
            return
        url = storage or f"sqlite:///{(out_dir / 'optuna.sqlite').resolve()}"
        name = study or f"{strategy}-{bars.symbol.replace('/', '')}-{bars.timeframe}"
        with bar:
            params, value, st = run_optimize(
                bars, strategy, trials, seed=seed, storage=url, study_name=name,
                progress=update, objective=objective, min_trades=min_trades, jobs=jobs,
                prune=prune,
            )  # fmt: skip
        (out_dir / "best.json").write_text(
            json.dumps(
                {
                    "strategy": strategy,
                    "params": params,
                    "objective": value,
                    "trials": len(st.trials),
                },
                indent=2,
            )
        )
        out.print(
            f"study {name!r} at {url}: {len(st.trials)} trials, best objective "
            f"{value:.3f} with {params}"
        )
        from solbot.research.report import write_study_report

        out.print(f"report: {write_study_report(st, out_dir, strategy)}")
        out.print("in-sample: judge parameters by the walk-forward report, not by this number")


@app.command()
def portfolio(
    data: Annotated[list[Path], typer.Option("--data", help="one file per symbol")],
    strategy: Annotated[str, typer.Option()] = DEFAULT_STRATEGY,
    allocation: Annotated[str, typer.Option(help="equal or vol (inverse volatility)")] = "equal",
    exposure_cap: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="max value of all positions / equity for new buys"),
    ] = 1.0,
    cash: Annotated[str, typer.Option(help="initial quote balance of the account")] = "30000",
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/portfolio"),
) -> None:
    """Backtest one strategy on several symbols sharing one account."""
    from decimal import Decimal, InvalidOperation

    from solbot.cli.common import UsageError
    from solbot.runtime.multi import run_multi
    from solbot.strategies import source_sha256

    with errors():
        try:
            amount = Decimal(cash)
        except InvalidOperation:
            raise UsageError(f"--cash: not a number: {cash!r}") from None
        sets = [load_checked(p, Gaps.warn) for p in data]
        if len(sets) < 2:
            raise UsageError("--data: give two or more files (one per symbol)")
        start = max(int(d.ts[0]) for d in sets)
        sets = [d.between(start, None) for d in sets]  # trade the common period only
        res = run_multi(sets, strategy, amount, allocation, exposure_cap)
        out_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "strategy": strategy,
            "strategy_sha256": source_sha256(strategy),  # a file's: the bytes that ran
            "allocation": allocation,
            "weights": res.weights,
            "exposure_cap": exposure_cap,
            "max_exposure": res.max_exposure,
            "denied_by_cap": res.denied_by_cap,
            "portfolio": res.metrics.to_json(),
            "symbols": {s: r.metrics.to_json() for s, r in res.results.items()},
        }
        (out_dir / "result.json").write_text(json.dumps(_clean(payload), indent=2))
        weights = ", ".join(f"{s} {w:.1%}" for s, w in res.weights.items())
        out.print(
            metrics_table(
                f"{strategy} on {len(sets)} symbols ({allocation}: {weights}; "
                f"exposure cap {exposure_cap:.0%})",
                res.metrics.to_json(),
            )
        )
        out.print(
            f"buys denied by the exposure cap: {res.denied_by_cap}; highest exposure "
            f"{res.max_exposure:.1%}"
        )
        out.print(f"result: {out_dir / 'result.json'}")


@app.command("check-lookahead")
def check_lookahead_command(
    data: Annotated[Path, typer.Option("--data", help="any supported data file")],
    strategy: Annotated[str, typer.Option()] = DEFAULT_STRATEGY,
    checkpoints: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Prove a strategy does not look ahead: its decisions must be identical when the data
    ends at randomly chosen bars. Exit 0 when they are, 6 when they are not."""
    from solbot.research.lookahead import check_lookahead
    from solbot.strategies import resolve

    with errors():
        cls = resolve(strategy)
        bars = load_checked(data, Gaps.warn)
        report = check_lookahead(bars, cls, checkpoints=checkpoints, seed=seed)
        if report.ok:
            out.print(
                f"{strategy}: no look-ahead — {report.decisions} decisions identical at "
                f"{report.checkpoints} truncation points"
            )
            return
        out.print(
            f"{strategy}: LOOK-AHEAD — decisions differ when the data ends at bar "
            f"{report.mismatch_at}: {report.detail}"
        )
        raise typer.Exit(EXIT_LOOKAHEAD)


@app.command("new-strategy")
def new_strategy(
    name: Annotated[str, typer.Argument(help="the strategy's name (lower case, e.g. mystrat)")],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for NAME.py")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented strategy template, NAME.py, that backtests as it is."""
    from solbot.research.template import write_template

    with errors():
        path = write_template(name, out_dir, force)
        out.print(f"wrote {path}")
        out.print(f"next: solbot backtest --data FILE --strategy {path} --out runs/{name}")


def register(root: typer.Typer) -> None:
    """Add this module's commands and command groups to ``root``."""
    root.registered_commands.extend(app.registered_commands)
    root.registered_groups.extend(app.registered_groups)
