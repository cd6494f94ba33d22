"""The kill-switch flag: engaging, clearing and reading it (``KillFlag``, its one owner: the
CLI, the API, the smoke test, the doctor and the service all go through it), and its watcher
(inotify on the data directory, with a polling backstop).

The flag is written whole (a temporary file renamed over it), so a watcher never reads a
half-written reason; the reason is one line of at most ``REASON_MAX`` characters, control
characters made spaces — written by the CLI, the API or by hand, it cannot forge a log line.
Linux inotify through ctypes (no extra dependency); where it is unavailable the poll alone
runs. Either way the callback fires once, soon after the flag appears.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")
REASON_MAX = 500
FLAG_NAME = (
    "kill-switch.flag"  # in the home's data directory (runbook: touch data/kill-switch.flag)
)


def single_line(text: str, limit: int = REASON_MAX) -> str:
    """``text`` as one line: control characters (newlines included) become spaces, runs of
    spaces one, at most ``limit`` characters."""
    flat = "".join(" " if (ord(c) < 32 or 127 <= ord(c) < 160) else c for c in text)
    return " ".join(flat.split())[:limit]


def engage(flag: Path, reason: str) -> None:
    """Create the flag with its reason, atomically."""
    flag.parent.mkdir(parents=True, exist_ok=True)
    tmp = flag.with_name(flag.name + ".tmp")
    tmp.write_text(single_line(reason) + "\n")
    os.replace(tmp, flag)


def flag_reason(flag: Path) -> str | None:
    """The reason in the flag (one line), "" when it has none, None when it is absent."""
    try:
        return single_line(flag.read_text(errors="replace"))
    except FileNotFoundError:
        return None
    except OSError:
        return ""  # there but unreadable: still engaged


@dataclass(frozen=True, slots=True)
class KillFlag:
    """The kill-switch flag of one home: ``<home>/data/kill-switch.flag``."""

    path: Path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> KillFlag:
        return cls(data_dir / FLAG_NAME)

    @classmethod
    def of_home(cls, home: Path) -> KillFlag:
        return cls.in_data_dir(home / "data")

    @property
    def engaged(self) -> bool:
        return self.path.exists()

    def engage(self, reason: str) -> None:
        """Create the flag with its reason (one line), atomically."""
        engage(self.path, reason)

    def clear(self) -> bool:
        """Remove the flag; False when it was not there."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def reason(self) -> str | None:
        """The reason written in the flag, "" when it has none, None when not engaged."""
        return flag_reason(self.path)

    def watch(self, on_flag: Callable[[], None]) -> FlagWatcher:
        return FlagWatcher(self.path, on_flag)

    def __str__(self) -> str:
        return str(self.path)


class FlagWatcher:
    def __init__(self, flag: Path, on_flag: Callable[[], None], poll: float = 0.25) -> None:
        self.flag = flag
        self.on_flag = on_flag
        self.poll = poll
        self._fd: int | None = None
        self._fired = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.flag.parent.mkdir(parents=True, exist_ok=True)
        self._fd = _inotify_watch(self.flag.parent)
        if self._fd is not None:
            loop.add_reader(self._fd, self._on_readable)
        else:
            log.warning("inotify unavailable; watching %s by polling only", self.flag)
        self._task = loop.create_task(self._poll_loop(), name="kill-switch-poll")
        self._check()

    def stop(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._task is not None:
            self._task.cancel()

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        offset = 0
        while offset + _EVENT.size <= len(data):
            _, _, _, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if name.decode(errors="replace") == self.flag.name:
                self._check()

    async def _poll_loop(self) -> None:
        while not self._fired:
            await asyncio.sleep(self.poll)
            self._check()

    def _check(self) -> None:
        if not self._fired and self.flag.exists():
            self._fired = True
            self.on_flag()


def _inotify_watch(directory: Path) -> int | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB
    if libc.inotify_add_watch(fd, str(directory).encode(), mask) < 0:
        os.close(fd)
        return None
    return int(fd)
