"""``solbot backup create`` and ``restore`` on a database of realistic size.

Builds a bot database through the real schema (``Store.migrate``), fills it with N orders and
N fills (years of a busy bot: a fill per order), then times the CLI: an online backup while a
writer keeps inserting (the bot's case), and a restore into a wiped home; checks that every
row came back. Reference in the same run: ``sqlite3``'s own ``.backup`` of the same file via
Python's ``Connection.backup`` with no writer.

Usage: python bench/backup_speed.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from solbot.ops.backup import db_facts  # noqa: E402
from solbot.persistence.store import Store  # noqa: E402


def build(db: Path, rows: int) -> None:
    store = Store(f"sqlite:///{db}")
    store.migrate()
    store.close()
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO orders (order_id, symbol, side, type, quantity, price, post_only, "
        "reduce_only, tag, status, filled_qty, fees, venue_order_id, reason, created_ts, "
        "updated_ts) VALUES (?, 'SOL/USDT', 'buy', 'limit', '1.5', '20.1', 0, 0, '', "
        "'filled', '1.5', '0.03', ?, '', ?, ?)",
        ((f"O-{i}", f"V{i}", i, i) for i in range(rows)),
    )
    con.executemany(
        "INSERT INTO fills (trade_id, order_id, symbol, side, quantity, price, fee, fee_asset, "
        "liquidity, realised_pnl, ts) VALUES (?, ?, 'SOL/USDT', 'buy', '1.5', '20.1', '0.03', "
        "'USDT', 'maker', '0', ?)",
        ((f"T-{i}", f"O-{i}", i) for i in range(rows)),
    )
    con.commit()
    con.close()


def cli(home: Path, *args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", "from solbot.cli import main; main()", "backup", *args],
        env={**os.environ, "SOLBOT_HOME": str(home), "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise SystemExit(f"backup {args[0]} failed: {r.stderr.strip()}")
    return time.perf_counter() - t0


def writer(db: Path, stop: threading.Event, counter: list[int]) -> None:
    con = sqlite3.connect(db, timeout=30)
    con.execute("PRAGMA journal_mode=WAL")
    i = 0
    while not stop.is_set():
        con.execute(
            "INSERT INTO audit_log (at, kind, detail) VALUES ('2026-11-24T00:00:00+00:00', "
            "'bench', ?)",
            (str(i),),
        )
        con.commit()
        i += 1
        time.sleep(0.001)
    counter.append(i)
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.rows:,} orders + {args.rows:,} fills"
    )
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        (home / "data").mkdir(parents=True)
        db = home / "data" / "solbot.sqlite"
        build(db, args.rows)
        size = db.stat().st_size
        _, before = db_facts(db)

        t0 = time.perf_counter()
        src, dst = sqlite3.connect(db), sqlite3.connect(Path(tmp) / "ref.sqlite")
        src.backup(dst)
        src.close()
        dst.close()
        ref = time.perf_counter() - t0

        stop, written = threading.Event(), []
        w = threading.Thread(target=writer, args=(db, stop, written))
        w.start()
        took_create = cli(home, "create")
        stop.set()
        w.join()
        archive = next((home / "backups").glob("*.tar.gz"))
        _, after_writes = db_facts(db)

        shutil.rmtree(home / "data")
        took_restore = cli(home, "restore", str(archive))
        integrity, restored = db_facts(home / "data" / "solbot.sqlite")
        ok = integrity == "ok" and restored["orders"] == before["orders"] == args.rows
        ok = ok and before["audit_log"] <= restored["audit_log"] <= after_writes["audit_log"]
        print(f"database {size / 1e6:.0f} MB; archive {archive.stat().st_size / 1e6:.1f} MB")
        print(f"reference: sqlite3 Connection.backup alone, no writer: {ref:.2f} s")
        print(
            f"solbot backup create (online copy, integrity check, counts, tar.gz, sha256) "
            f"while {written[0]:,} rows were written: {took_create:.2f} s "
            f"({took_create / ref:.1f}x the bare copy)"
        )
        print(f"solbot backup restore (verify, integrity, counts, swap): {took_restore:.2f} s")
        print(f"restored: integrity {integrity}, every table's rows as archived: {ok}")


if __name__ == "__main__":
    main()
