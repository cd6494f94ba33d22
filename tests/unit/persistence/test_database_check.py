"""The database is checked before anything is written to it at start (persistence/check.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from solbot.persistence.check import MARKER, DatabaseDamaged, check_database, mark_account


def _db(path: Path, rows: int = 2000) -> None:
    con = sqlite3.connect(path)
    con.execute("create table t (a integer primary key, b text)")
    con.executemany("insert into t (b) values (?)", [("x" * 200,)] * rows)
    con.execute("create index tb on t (b)")
    con.commit()
    con.close()


def test_a_fresh_home_starts_and_is_marked_then_an_empty_or_missing_database_is_refused(
    tmp_path: Path,
) -> None:
    db = tmp_path / "solbot.sqlite"
    url = f"sqlite:///{db}"
    check_database(url, tmp_path)  # nothing there, nothing held: a new account
    _db(db)
    mark_account(url, tmp_path)
    assert (tmp_path / MARKER).exists()
    check_database(url, tmp_path)  # a sound database passes
    db.write_bytes(b"")  # truncated to 0 bytes: was a fresh 10,000 USDT account
    with pytest.raises(DatabaseDamaged, match="is empty, but this home held an account"):
        check_database(url, tmp_path)
    db.unlink()
    with pytest.raises(DatabaseDamaged, match=r"is missing.*solbot backup restore"):
        check_database(url, tmp_path)
    sqlite3.connect(db).close()  # a database with no tables is empty too
    with pytest.raises(DatabaseDamaged, match="is empty"):
        check_database(url, tmp_path)


def test_a_damaged_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "solbot.sqlite"
    url = f"sqlite:///{db}"
    db.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(DatabaseDamaged, match="is damaged"):
        check_database(url, tmp_path)
    assert db.read_bytes() == b"\x00garbage" * 1000
    db.unlink()
    _db(db)
    raw = bytearray(db.read_bytes())
    page = 4096
    for i in range(3 * page + 100, 3 * page + 600):  # a b-tree page in the middle
        raw[i] ^= 0x5A
    db.write_bytes(bytes(raw))
    with pytest.raises(DatabaseDamaged, match=r"integrity check|is damaged"):
        check_database(url, tmp_path)
    assert db.read_bytes() == bytes(raw)  # not written to
    check_database("postgresql://postgres@127.0.0.1/test", tmp_path)  # the server checks it
