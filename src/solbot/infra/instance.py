"""One bot per home directory.

Two bots on the same home would trade the same account twice and write the same database.
The service holds an exclusive ``flock`` on ``data/solbot.lock`` for its whole life (the
kernel drops it when the process dies, even by SIGKILL, so a crash never leaves a stale
lock); the file also names the holder's pid. ``solbot backup restore`` and ``solbot doctor``
ask the same lock whether a bot is running.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunning(OSError):
    """Another bot holds this home's lock."""


def lock_path(data_dir: Path) -> Path:
    return data_dir / "solbot.lock"


class InstanceLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = lock_path(data_dir)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder(self.path.parent)
            who = f" (pid {pid})" if pid else ""
            raise AlreadyRunning(
                f"another solbot{who} is running on {self.path.parent.parent}; "
                f"stop it first (one bot per home)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def holder(data_dir: Path) -> int | None:
    """The pid of the bot running on this data directory, or None when none is."""
    path = lock_path(data_dir)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
