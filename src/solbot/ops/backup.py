"""Backups: ``solbot backup create|list|restore|prune``.

An archive ``solbot-backup-YYYYmmddTHHMMSSZ.tar.gz`` (mode 0600) holds

* ``data/solbot.sqlite`` — a consistent copy taken with SQLite's online backup API while the
  bot may be writing (WAL included; no torn pages, no half-written transaction);
* ``config/*.toml`` and ``logs/*`` — the configuration files in the home and the logs;
* ``MANIFEST.json`` — sha256 and size of every file, the database's integrity check and the
  row count of every table.

``.env`` is left out unless asked for: secrets live in SSM (``solbot secrets pull``) and an
archive travels to S3. ``restore`` verifies every checksum, the database's integrity and its
row counts before touching anything, refuses while a bot runs on the home, and keeps the
database it replaces (``solbot.sqlite.pre-restore-<stamp>``): nothing persisted is lost.
Archives live in ``$SOLBOT_HOME/backups`` and, with ``--to s3://bucket/prefix``, in S3.
A successful ``create`` writes ``data/backup-last-success`` (the metric
``solbot_backup_last_success_timestamp_seconds`` and the MissedBackup alert read it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from solbot import __version__
from solbot.infra.backupmark import mark_success
from solbot.infra.instance import holder

NAME = re.compile(r"^solbot-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz$")
DB_NAME = "solbot.sqlite"


class BackupError(Exception):
    """Bad request or an archive that does not verify (exit 2 / 3)."""


class BackupCorrupt(BackupError):
    """The archive's contents do not match its manifest (exit 3)."""


class StorageUnavailable(Exception):
    """S3 could not be reached or refused (exit 4)."""


@dataclass(frozen=True, slots=True)
class Archive:
    name: str
    where: str  # a local path or s3://bucket/key
    size: int
    created: datetime


@dataclass(frozen=True, slots=True)
class Created:
    archive: Archive
    tables: dict[str, int]
    uploaded: str | None


# ---------------------------------------------------------------- locations
def sqlite_path(db_url: str) -> Path:
    if not db_url.startswith("sqlite:///"):
        raise BackupError(
            "the database is not SQLite: back PostgreSQL up with pg_dump (solbot backup "
            "covers the default SQLite store)"
        )
    return Path(db_url.removeprefix("sqlite:///"))


def parse_s3(url: str) -> tuple[str, str]:
    m = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", url)
    if m is None:
        raise BackupError(f"expected s3://bucket/prefix, got {url!r}")
    prefix = (m.group(2) or "").strip("/")
    return m.group(1), f"{prefix}/" if prefix else ""


def _s3(endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except Boto3Error as exc:  # upload_file/download_file wrap the ClientError's message
        code = re.search(r"\((\w+)\)", str(exc))
        raise StorageUnavailable(f"S3 refused {what}: {code[1] if code else 'error'}") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise StorageUnavailable(f"S3 refused {what}: {code}") from None
    except BotoCoreError as exc:
        raise StorageUnavailable(f"S3 unreachable ({what}): {type(exc).__name__}") from None


# ---------------------------------------------------------------- database checks
def db_facts(path: Path) -> tuple[str, dict[str, int]]:
    """(integrity_check result, row count per table) of a SQLite file, read-only."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        integrity = ";".join(r[0] for r in con.execute("PRAGMA integrity_check"))
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        tables = {n: int(con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}
    except sqlite3.DatabaseError as exc:
        return f"unreadable: {exc}", {}
    finally:
        con.close()
    return integrity, tables


def _online_copy(src: Path, dst: Path) -> None:
    """SQLite's backup API: a consistent snapshot even while the bot writes (WAL mode).

    One step (``pages=-1``): the copy reads one snapshot under a single read transaction,
    which in WAL mode does not block the bot's writes. Copying in chunks instead would
    restart from the first page whenever the bot commits in between — with a bar a second
    and a large database, a backup that never ends."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal
    finally:
        target.close()
        source.close()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- create
def create(
    home: Path,
    db_url: str,
    *,
    to: str | None = None,
    endpoint_url: str | None = None,
    include_env: bool = False,
    now: datetime | None = None,
) -> Created:
    db = sqlite_path(db_url)
    if not db.exists():
        raise BackupError(f"no database at {db} (has the bot ever run on {home}?)")
    now = now or datetime.now(UTC)
    local_dir = _mkdir(home / "backups")
    name = f"solbot-backup-{now:%Y%m%dT%H%M%S}Z.tar.gz"
    n = 1
    while (local_dir / name).exists():  # never overwrite: a second backup in one second
        n += 1
        name = f"solbot-backup-{now:%Y%m%dT%H%M%S}Z-{n}.tar.gz"
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=local_dir) as tmp_name:
        tmp = Path(tmp_name)
        files: dict[str, Path] = {}
        (tmp / "data").mkdir()
        _online_copy(db, tmp / "data" / DB_NAME)
        files[f"data/{DB_NAME}"] = tmp / "data" / DB_NAME
        integrity, tables = db_facts(tmp / "data" / DB_NAME)
        if integrity != "ok":
            raise BackupCorrupt(f"the live database fails its integrity check: {integrity}")
        for cfg in sorted(home.glob("*.toml")):
            files[f"config/{cfg.name}"] = cfg
        if include_env and (home / ".env").exists():
            files["config/.env"] = home / ".env"
        logs = home / "logs"
        if logs.is_dir():
            for log in sorted(p for p in logs.iterdir() if p.is_file()):
                files[f"logs/{log.name}"] = log
        manifest = {
            "format": 1,
            "created": now.isoformat(timespec="seconds"),
            "solbot": __version__,
            "home": str(home),
            "database": {"integrity": integrity, "tables": tables},
            "files": {
                arc: {"sha256": _sha256(p), "size": p.stat().st_size} for arc, p in files.items()
            },
        }
        part = tmp / name
        with tarfile.open(part, "w:gz", compresslevel=6) as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("MANIFEST.json")
            info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            for arc, p in files.items():
                tar.add(p, arcname=arc, recursive=False)
        part.chmod(0o600)
        final = local_dir / name
        os.link(part, final)  # fails rather than replace an archive of the same name
    archive = Archive(name, str(final), final.stat().st_size, now)
    uploaded = None
    if to:
        bucket, prefix = parse_s3(to)
        with _s3_errors(f"upload to {to}"):
            client = _s3(endpoint_url)
            client.upload_file(str(final), bucket, prefix + name)
            head = client.head_object(Bucket=bucket, Key=prefix + name)
        if int(head["ContentLength"]) != archive.size:
            raise StorageUnavailable(f"S3 holds {head['ContentLength']} bytes, sent {archive.size}")
        uploaded = f"s3://{bucket}/{prefix}{name}"
    mark_success(home / "data", now, uploaded or str(final))
    return Created(archive, tables, uploaded)


# ---------------------------------------------------------------- list / prune
def _stamp(name: str) -> datetime | None:
    m = NAME.match(name)
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if m else None


def _order(a: Archive) -> tuple[datetime, int, str]:
    m = NAME.match(a.name)
    return a.created, int(m.group(2) or 1) if m else 0, a.where


def list_archives(
    home: Path, to: str | None = None, endpoint_url: str | None = None
) -> list[Archive]:
    """Archives, oldest first: local ones, and those under ``to`` in S3."""
    found: list[Archive] = []
    local = home / "backups"
    if local.is_dir():
        for p in local.iterdir():
            stamp = _stamp(p.name)
            if stamp is not None:
                found.append(Archive(p.name, str(p), p.stat().st_size, stamp))
    if to:
        bucket, prefix = parse_s3(to)
        with _s3_errors(f"list {to}"):
            pages = _s3(endpoint_url).get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    name = str(obj["Key"])[len(prefix) :]
                    stamp = _stamp(name)
                    if stamp is not None:
                        where = f"s3://{bucket}/{obj['Key']}"
                        found.append(Archive(name, where, int(obj["Size"]), stamp))
    return sorted(found, key=_order)


def prune(
    home: Path, keep: int, to: str | None = None, endpoint_url: str | None = None
) -> list[Archive]:
    """Delete all but the newest ``keep`` archives, locally and (with ``to``) in S3."""
    if keep < 1:
        raise BackupError("--keep: at least 1")
    removed: list[Archive] = []
    everything = list_archives(home, to, endpoint_url)
    for where_s3 in (False, True):
        group = [a for a in everything if a.where.startswith("s3://") == where_s3]
        for a in group[: max(0, len(group) - keep)]:
            if where_s3:
                bucket, _, key = a.where.removeprefix("s3://").partition("/")
                with _s3_errors(f"delete {a.where}"):
                    _s3(endpoint_url).delete_object(Bucket=bucket, Key=key)
            else:
                Path(a.where).unlink(missing_ok=True)
            removed.append(a)
    return removed


# ---------------------------------------------------------------- restore
@dataclass(frozen=True, slots=True)
class Restored:
    source: str
    tables: dict[str, int]
    kept: Path | None  # where the replaced database went
    extracted: Path  # config and logs from the archive, for the operator to look at


def _fetch(source: str, dest: Path, endpoint_url: str | None) -> Path:
    if not source.startswith("s3://"):
        path = Path(source)
        if not path.is_file():
            raise BackupError(f"no such archive: {source}")
        return path
    bucket, key = parse_s3(source)
    key = key.rstrip("/")
    if not NAME.match(key.rsplit("/", 1)[-1]):
        raise BackupError(f"{source}: not a solbot backup name")
    target = dest / key.rsplit("/", 1)[-1]
    with _s3_errors(f"download {source}"):
        _s3(endpoint_url).download_file(bucket, key, str(target))
    return target


def verify(archive: Path, into: Path) -> dict[str, Any]:
    """Extract ``archive`` into ``into`` and check it against its manifest; the manifest."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupCorrupt(f"{archive.name}: not a readable archive ({exc})") from None
    try:
        manifest: dict[str, Any] = json.loads((into / "MANIFEST.json").read_text())
        files: dict[str, Any] = manifest["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise BackupCorrupt(f"{archive.name}: no valid MANIFEST.json ({exc})") from None
    extra = set(names) - set(files) - {"MANIFEST.json"}
    if extra:
        raise BackupCorrupt(f"{archive.name}: files not in the manifest: {sorted(extra)}")
    for arc, want in files.items():
        path = into / arc
        if not path.is_file():
            raise BackupCorrupt(f"{archive.name}: {arc} is missing")
        if _sha256(path) != want["sha256"]:
            raise BackupCorrupt(f"{archive.name}: {arc} does not match its sha256")
    db = into / "data" / DB_NAME
    integrity, tables = db_facts(db)
    if integrity != "ok":
        raise BackupCorrupt(f"{archive.name}: database integrity check: {integrity}")
    if tables != manifest["database"]["tables"]:
        raise BackupCorrupt(f"{archive.name}: row counts differ from the manifest")
    return manifest


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _unique(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists() or candidate.with_name(candidate.name + "-wal").exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def restore(home: Path, db_url: str, source: str, *, endpoint_url: str | None = None) -> Restored:
    db = sqlite_path(db_url)
    pid = holder(home / "data")
    if pid is not None:
        raise BackupError(f"a bot (pid {pid}) is running on {home}; stop it before restoring")
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S}Z"
    work = Path(tempfile.mkdtemp(prefix=".restore-", dir=_mkdir(home / "backups")))
    try:
        manifest = verify(_fetch(source, work, endpoint_url), work / "x")
        (work / "x" / "data" / DB_NAME).rename(work / DB_NAME)
        extracted = _unique(home / f"restored-{stamp}")
        (work / "x").rename(extracted)  # config and logs from the archive, for a person
        db.parent.mkdir(parents=True, exist_ok=True)
        kept = None
        if db.exists():  # the database being replaced, with its WAL, is kept beside it
            kept = _unique(db.with_name(f"{db.name}.pre-restore-{stamp}"))
            for suffix in ("", "-wal", "-shm"):
                part = db.with_name(db.name + suffix)
                if part.exists():
                    part.rename(kept.with_name(kept.name + suffix))
        staged = db.with_name(f".{db.name}.restoring")
        shutil.copy2(work / DB_NAME, staged)
        os.replace(staged, db)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    integrity, tables = db_facts(db)
    if integrity != "ok" or tables != manifest["database"]["tables"]:
        raise BackupCorrupt(f"restored database at {db} does not check out: {integrity}")
    return Restored(source, tables, kept, extracted)
