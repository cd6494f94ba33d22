"""The crash-test hook: parsed once, inert unless armed, and it really kills."""

from __future__ import annotations

import signal
import subprocess
import sys

from solbot import failpoints


def test_points_parse_and_a_malformed_count_arms_nothing() -> None:
    assert failpoints._parse("") == {}
    assert failpoints._parse("fill-recorded=3, bar-done") == {"fill-recorded": 3, "bar-done": 1}
    assert failpoints._parse("x=abc,y=-1") == {}


def test_the_nth_pass_kills_the_process_and_earlier_passes_do_not() -> None:
    code = (
        "from solbot import failpoints\n"
        "failpoints.hit('p'); print('first', flush=True)\n"
        "failpoints.hit('other')\n"
        "failpoints.hit('p'); print('second', flush=True)\n"
    )
    env = {"SOLBOT_FAILPOINTS": "p=2", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == -signal.SIGKILL and out.stdout == "first\n"
