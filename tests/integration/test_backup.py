"""``solbot backup``: an online copy while a real bot writes, backup → wipe → restore gives the
same database, corrupt archives are refused, S3 through moto's server on 127.0.0.1."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from solbot.ops.backup import db_facts
from tests.integration.botproc import Bot, run_solbot
from tests.integration.moto_server import AWS_ENV, moto_server

pytestmark = pytest.mark.integration


def backup(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_solbot(home, "backup", *args, **env)


def dump(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def archive_of(r: subprocess.CompletedProcess[str]) -> Path:
    line = next(x for x in r.stdout.splitlines() if x.startswith("backup "))
    return Path(line.split()[1])


def trading_bot(home: Path) -> Bot:
    bot = Bot(home, env={"SOLBOT_STRATEGY": "ladder"}, speed=200)
    bot.wait_ready()
    bot.wait_until(lambda: bot.get("/api/trades").json(), 60, "a fill")
    return bot


def test_online_backup_then_wipe_and_restore_reproduces_the_database(tmp_path: Path) -> None:
    home = tmp_path
    (home / "solbot.toml").write_text('strategy = "ladder"\n')
    (home / ".env").write_text("SOLBOT_API_TOKEN=never-in-an-archive-0123\n")
    bot = trading_bot(home)
    try:
        while_writing = backup(home, "create")  # the bot keeps writing bars and orders
        assert while_writing.returncode == 0, while_writing.stdout + while_writing.stderr
        assert "rows, ok)" in while_writing.stdout
        refused = backup(home, "restore", str(archive_of(while_writing)))
        assert refused.returncode == 2 and f"pid {bot.proc.pid}" in refused.stderr
        metrics = bot.get("/metrics").text
        line = next(
            x
            for x in metrics.splitlines()
            if x.startswith("solbot_backup_last_success_timestamp_seconds ")
        )
        assert abs(float(line.split()[1]) - time.time()) < 120
    finally:
        bot.signal(__import__("signal").SIGTERM)
        assert bot.wait_exit(20) == 0

    db = home / "data" / "solbot.sqlite"
    made = backup(home, "create")
    assert made.returncode == 0, made.stderr
    archive = archive_of(made)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    assert {"data/solbot.sqlite", "config/solbot.toml", "MANIFEST.json"} <= names
    assert any(n.startswith("logs/") for n in names)
    assert "config/.env" not in names  # secrets stay out unless --include-env
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    before_dump = dump(db)
    integrity, tables = db_facts(db)
    assert integrity == "ok" and tables == manifest["database"]["tables"]
    assert tables["orders"] > 0 and tables["fills"] > 0

    shutil.rmtree(home / "data")  # wipe
    restored = backup(home, "restore", str(archive))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert dump(db) == before_dump  # every row of every table, and the schema
    assert db_facts(db) == ("ok", tables)

    again = backup(home, "restore", str(archive))  # over an existing database: it is kept
    assert again.returncode == 0, again.stderr
    kept = list((home / "data").glob("solbot.sqlite.pre-restore-*"))
    assert len(kept) == 1 and dump(kept[0]) == before_dump

    listed = backup(home, "list")
    assert listed.returncode == 0 and listed.stdout.count("solbot-backup-") == 2


def test_a_corrupt_or_foreign_archive_is_refused_and_the_database_untouched(
    tmp_path: Path,
) -> None:
    home = tmp_path
    (home / "data").mkdir()
    db = home / "data" / "solbot.sqlite"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE orders(id INTEGER PRIMARY KEY, v TEXT);")
    con.executemany("INSERT INTO orders(v) VALUES (?)", [(str(i),) for i in range(500)])
    con.commit()
    con.close()
    made = backup(home, "create")
    assert made.returncode == 0, made.stderr
    archive = archive_of(made)

    # the same archive with one byte of the database changed: the sha256 no longer matches
    members = {}
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            members[m.name] = (m, tar.extractfile(m).read())  # type: ignore[union-attr]
    m, data = members["data/solbot.sqlite"]
    members["data/solbot.sqlite"] = (m, data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    bad = tmp_path / "bad" / archive.name
    bad.parent.mkdir()
    with tarfile.open(bad, "w:gz") as tar:
        for m, data in members.values():
            tar.addfile(m, io.BytesIO(data))
    before = db.read_bytes()
    r = backup(home, "restore", str(bad))
    assert r.returncode == 3 and "does not match its sha256" in r.stderr
    assert db.read_bytes() == before

    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:200])
    r = backup(home, "restore", str(truncated))
    assert r.returncode == 3 and "not a readable archive" in r.stderr
    not_gz = tmp_path / "x.tar.gz"
    not_gz.write_bytes(gzip.compress(b"not a tar"))
    assert backup(home, "restore", str(not_gz)).returncode == 3
    assert backup(home, "restore", str(tmp_path / "none.tar.gz")).returncode == 2
    assert db.read_bytes() == before
    pg = backup(home, "create", SOLBOT_DATABASE_URL="postgresql://postgres@127.0.0.1/test")
    assert pg.returncode == 2 and "pg_dump" in pg.stderr


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("moto") is None, reason="moto[server] is not installed"
)
def test_s3_upload_list_prune_and_restore_through_moto(tmp_path: Path) -> None:
    import boto3

    home = tmp_path
    (home / "data").mkdir()
    db = home / "data" / "solbot.sqlite"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE fills(id INTEGER PRIMARY KEY, qty TEXT);")
    con.executemany("INSERT INTO fills(qty) VALUES (?)", [("0.5",)] * 50)
    con.commit()
    con.close()
    with moto_server() as url:
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="eu-central-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(
            Bucket="solbot-backup",
            CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
        )
        env = {**AWS_ENV, "SOLBOT_BACKUP_TO": "s3://solbot-backup/prod"}
        archives = []
        for _ in range(3):
            r = backup(home, "create", "--endpoint-url", url, **env)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "uploaded s3://solbot-backup/prod/solbot-backup-" in r.stdout
            archives.append(archive_of(r).name)
            time.sleep(1.05)  # archive names have one-second resolution
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="solbot-backup")["Contents"]]
        assert sorted(keys) == [f"prod/{a}" for a in archives]

        pruned = backup(home, "prune", "--keep", "1", "--endpoint-url", url, **env)
        assert pruned.returncode == 0 and "4 removed" in pruned.stdout, pruned.stdout
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="solbot-backup")["Contents"]]
        assert keys == [f"prod/{archives[-1]}"]
        assert [p.name for p in (home / "backups").glob("*.tar.gz")] == [archives[-1]]

        db.unlink()
        (home / "backups" / archives[-1]).unlink()  # only S3 has it now
        r = backup(
            home, "restore", f"s3://solbot-backup/prod/{archives[-1]}", "--endpoint-url", url, **env
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert db_facts(db) == ("ok", {"fills": 50})

        missing = backup(
            home, "create", "--to", "s3://no-such-bucket/x", "--endpoint-url", url, **AWS_ENV
        )
        assert missing.returncode == 4 and "NoSuchBucket" in missing.stderr


def test_online_backup_of_a_large_database_finishes_under_constant_writes(tmp_path: Path) -> None:
    """A backup copied in chunks restarts whenever another connection commits; with a bot
    writing every bar and a database of more than a few thousand pages it never finished.
    The copy is one snapshot: it must finish while a writer commits every millisecond."""
    import threading

    from solbot.ops.backup import create

    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "solbot.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE fills(id INTEGER PRIMARY KEY, blob TEXT)")
    con.executemany("INSERT INTO fills(blob) VALUES (?)", [("x" * 200,)] * 300_000)  # 60 MB
    con.commit()
    con.close()
    stop = threading.Event()

    def write() -> None:
        w = sqlite3.connect(db, timeout=30)
        while not stop.is_set():
            w.execute("INSERT INTO fills(blob) VALUES ('new')")
            w.commit()
            time.sleep(0.001)
        w.close()

    writer = threading.Thread(target=write)
    writer.start()
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(create(tmp_path, f"sqlite:///{db}")), daemon=True
    )
    try:
        worker.start()
        worker.join(timeout=60)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert result, "the online backup did not finish within 60 s under constant writes"
    assert result[0].tables["fills"] >= 300_000  # type: ignore[attr-defined]
