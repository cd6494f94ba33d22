"""The database is checked before anything is written to it at start.

A damaged SQLite file was traded on (and written into) until something failed, and a 0-byte
file silently started a fresh 10,000 USDT account. Now, before the migrations run:

* a file that is not a database, or whose ``PRAGMA quick_check`` is not ``ok``, refuses the
  start: ``DatabaseDamaged`` (exit 8, which the systemd units do not restart on), one line
  naming the file and ``solbot backup restore``; the file is not written to;
* a missing or empty database (0 bytes, or no tables) where this home held an account — the
  marker ``data/account.json`` that the first start wrote — refuses the same way; a home that
  never held one starts fresh and gets its marker.

PostgreSQL is checked by its server; only the marker's rule would apply there, and a fresh
schema on a server is what an operator asks for, so it is left alone.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from solbot.domain.errors import DatabaseError

MARKER = "account.json"


class DatabaseDamaged(DatabaseError):
    """The database cannot be trusted: the start is refused before it is written to."""


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return None if not path or path == ":memory:" else Path(path)


def _restore_hint(path: Path) -> str:
    return (
        f"not writing to it. Restore the last backup with `solbot backup restore ARCHIVE` "
        f"(`solbot backup list` shows them); to start a new account instead, move "
        f"{path.name} and {MARKER} aside"
    )


def check_database(url: str, data_dir: Path) -> None:
    """Raise ``DatabaseDamaged`` for a damaged database, or an empty one in a home that held
    an account (before the migrations run)."""
    path = sqlite_path(url)
    if path is None:
        return
    marker = data_dir / MARKER
    empty = not path.exists() or path.stat().st_size == 0
    if not empty:
        try:
            con = sqlite3.connect(path, timeout=5.0)
            try:
                con.execute("PRAGMA query_only = 1")
                rows = con.execute("PRAGMA quick_check").fetchall()
                tables = con.execute("select count(*) from sqlite_master where type = 'table'")
                empty = tables.fetchone()[0] == 0
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise DatabaseDamaged(
                f"database {path} is damaged ({exc}); {_restore_hint(path)}"
            ) from None
        if rows != [("ok",)]:
            first = str(rows[0][0]) if rows else "no answer"
            raise DatabaseDamaged(
                f"database {path} fails its integrity check ({first[:200]}); {_restore_hint(path)}"
            )
    if empty and marker.exists():
        state = "missing" if not path.exists() else "empty"
        raise DatabaseDamaged(
            f"database {path} is {state}, but this home held an account ({marker}); "
            f"{_restore_hint(path)}"
        )


def mark_account(url: str, data_dir: Path) -> None:
    """Note, once, that this home holds an account (after the migrations ran)."""
    path = sqlite_path(url)
    marker = data_dir / MARKER
    if path is not None and not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(json.dumps({"database": str(path), "since": datetime.now(UTC).isoformat()}))
        os.replace(tmp, marker)
