"""``solbot optimize``: SQLite by default; two workers sharing one study on PostgreSQL."""

from __future__ import annotations

import json
import subprocess

import pytest

from solbot.data.store import write_parquet
from solbot.data.synthetic import synthetic_market
from tests.integration.botproc import solbot_cmd
from tests.pg import pg_schema

pytestmark = pytest.mark.integration
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def data_file(tmp_path):
    bars, _ = synthetic_market(bars=24 * 31 * 5, seed=5)
    path = tmp_path / "synthetic.parquet"
    write_parquet(bars, path)
    return path


def test_optimize_with_sqlite_storage_then_walk_forward(tmp_path, data_file):
    r = subprocess.run(
        solbot_cmd(
            "optimize",
            "--data",
            str(data_file),
            "--strategy",
            "donchian",
            "--trials",
            "4",
            "--out",
            str(tmp_path / "o"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    best = json.loads((tmp_path / "o" / "best.json").read_text())
    assert best["trials"] == 4 and set(best["params"]) == {"entry_period", "exit_period"}
    assert (tmp_path / "o" / "optuna.sqlite").exists()
    study = (tmp_path / "o" / "study.html").read_text()
    assert "solbot.css" not in study and "--panel" in study  # the dashboard's stylesheet, inlined
    assert study.count("Plotly.newPlot") == 2 and "in-sample" in study
    wf = subprocess.run(
        solbot_cmd(
            "optimize",
            "--data",
            str(data_file),
            "--strategy",
            "solbot",
            "--trials",
            "2",
            "--walk-forward",
            "--out",
            str(tmp_path / "w"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wf.returncode == 0, wf.stderr
    report = json.loads((tmp_path / "w" / "walk_forward.json").read_text())
    assert report["windows"] and "max_drawdown_es95" in report["monte_carlo"]
    assert (tmp_path / "w" / "walk_forward.html").exists()


def test_two_workers_share_one_study_on_postgresql(tmp_path, data_file):
    with pg_schema("opt") as url:
        # Optuna creates its tables on first use; create them once so the workers do not race.
        import optuna

        optuna.create_study(storage=url, study_name="shared", direction="maximize")
        args = [
            "optimize",
            "--data",
            str(data_file),
            "--strategy",
            "donchian",
            "--trials",
            "6",
            "--storage",
            url.replace("postgresql+psycopg://", "postgresql://"),  # as a user types it
            "--study",
            "shared",
        ]
        workers = [
            subprocess.Popen(
                solbot_cmd(*args, "--seed", str(i), "--out", str(tmp_path / f"w{i}")),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outs = [w.communicate(timeout=300) for w in workers]
        assert all(w.returncode == 0 for w in workers), outs
        study = optuna.load_study(study_name="shared", storage=url)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(done) == 12


def test_check_lookahead_command(data_file):
    r = subprocess.run(
        solbot_cmd(
            "check-lookahead", "--data", str(data_file), "--strategy", "trend", "--checkpoints", "5"
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "no look-ahead" in r.stdout
    bad = subprocess.run(
        solbot_cmd("check-lookahead", "--data", str(data_file), "--strategy", "nope"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unknown strategy" in bad.stderr


def test_walk_forward_with_two_jobs_finds_what_one_job_finds(data_file):
    """The windows' searches run in two processes; each is its own seeded study, so the
    parameters chosen and the out-of-sample result are the same as with one."""
    from solbot.data.importers import load_bars as load_any
    from solbot.research.optimize import walk_forward

    bars = load_any(data_file)
    one = walk_forward(bars, "trend", trials=4, seed=3, objective="sortino", min_trades=2)
    two = walk_forward(bars, "trend", trials=4, seed=3, objective="sortino", min_trades=2, jobs=2)
    assert len(one.windows) >= 2
    assert [w.params for w in one.windows] == [w.params for w in two.windows]
    assert [w.train_score for w in one.windows] == [w.train_score for w in two.windows]
    assert one.metrics == two.metrics


def test_a_parallel_study_runs_every_trial_once_on_its_sqlite_storage(tmp_path, data_file):
    from solbot.data.importers import load_bars as load_any
    from solbot.research.optimize import optimize

    bars = load_any(data_file)
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    params, value, study = optimize(bars, "trend", 7, seed=1, storage=url, study_name="p", jobs=2)
    assert len(study.trials) == 7 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert set(params) == {"entry_period", "adx_min", "trail_atr", "tp_r"}
    assert value == max(t.value for t in study.trials)
