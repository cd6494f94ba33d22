"""One bot per home: the flock on data/solbot.lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from solbot.infra.instance import AlreadyRunning, InstanceLock, holder


def test_second_lock_on_the_same_home_is_refused_and_names_the_holder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = InstanceLock(data)
    first.acquire()
    assert holder(data) == os.getpid()
    with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
        InstanceLock(data).acquire()
    first.release()
    assert holder(data) is None
    again = InstanceLock(data)
    again.acquire()  # free once released
    again.release()


def test_a_dead_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code = (
        "import os, sys; from pathlib import Path; from solbot.infra.instance import InstanceLock;"
        f"InstanceLock(Path({str(data)!r})).acquire(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert (data / "solbot.lock").exists()
    assert holder(data) is None
    lock = InstanceLock(data)
    lock.acquire()
    lock.release()
