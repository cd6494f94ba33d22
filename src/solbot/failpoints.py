"""Crash points for crash tests: kill this process at a named point in the code.

``SOLBOT_FAILPOINTS="fill-recorded=3"`` makes the third pass through ``hit("fill-recorded")``
send SIGKILL to the process itself: a crash at an exact place (between two writes of one
bar, say) instead of wherever a timer happened to land. Points are read once at import; with
the variable unset ``hit`` does nothing but one dictionary lookup. Never set it in
production: it exists so that the crash tests can fail on the bugs they are named after
(``tests/integration/test_crash_restart.py``). The same idea as FreeBSD's fail points or
TiKV's fail-rs, in a few lines.

Points:
* ``fill-recorded``: a paper fill has been written (inside the bar's transaction), the
  bar's checkpoint has not.
* ``bar-done``: a bar's checkpoint has been written, its transaction not yet committed.
* ``order-sending``: a live order's intent is on disk, its request not yet sent.
* ``order-answered``: the exchange has answered a live order; the answer is not yet stored.
"""

from __future__ import annotations

import os
import signal

ENV = "SOLBOT_FAILPOINTS"


def _parse(text: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for part in text.split(","):
        name, _, nth = part.strip().partition("=")
        if name and (nth or "1").isdigit():  # a malformed count arms nothing: the test waiting
            points[name] = int(nth or "1")  # for the kill then fails, naming the point
    return points


_points = _parse(os.environ.get(ENV, ""))
_passes: dict[str, int] = {}


def hit(name: str) -> None:
    """Pass the point ``name``; die here by SIGKILL on its configured pass."""
    if not _points or name not in _points:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] == _points[name]:
        os.kill(os.getpid(), signal.SIGKILL)
