"""Logging, configured once by the entry point: stdout (journald) and a rotated app.log
(by size here, or by logrotate — the file is reopened when logrotate has moved it).

Level names are in capitals (``grep ERROR logs/app.log``). Every configured secret is
replaced by ``***`` in every record, whichever handler writes it.
"""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler, WatchedFileHandler
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        for s in self.secrets:
            msg = msg.replace(s, "***")
        record.msg, record.args = msg, None
        return True


def configure(logs_dir: Path, level: str, secrets: list[str], rotation: str = "internal") -> None:
    logs_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    redact = RedactSecrets(secrets)
    fmt = logging.Formatter(FORMAT)
    out = logging.StreamHandler(sys.stdout)
    fileh: logging.FileHandler
    if rotation == "logrotate":
        fileh = WatchedFileHandler(logs_dir / "app.log")
    else:
        fileh = RotatingFileHandler(logs_dir / "app.log", maxBytes=20_000_000, backupCount=5)
    for h in (out, fileh):
        h.setFormatter(fmt)
        h.addFilter(redact)
        root.addHandler(h)
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def flush() -> None:
    for h in logging.getLogger().handlers:
        h.flush()
