"""The quiet-bot alarm: trading ACTIVE, not paused, market data flowing — and no order for
longer than the strategy ever went without one in its backtest.

The silent stop is the failure an operator sees last: the dashboard is alive, bars arrive,
and nothing has been sent for hours (a strategy stuck in a state, an exchange filter that
denies every order, a regime the strategy sits out longer than it ever did). The watch
counts live bars (not history, not while paused or halted: those are quiet by choice) since
the last order any symbol sent; past the threshold the account alerts P2 once per quiet
spell, and ``solbot_bars_since_order`` / ``solbot_quiet_after_bars`` let Prometheus alert
too (``SolbotQuiet``).

The threshold: ``SOLBOT_QUIET_BARS`` when set (0 = off); else derived from a backtest's
``result.json`` of the same strategy and parameters — ``SOLBOT_QUIET_RESULT``, or by default
the one ``solbot deploy --tested`` checked and carried into the release
(``<home>/current/tested/result.json``): 1.5 times the longest run of bars between two of its
orders (entries and exits), in the bot's timeframe; off where that is unknown (no result,
another strategy's, or fewer than three orders in it).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from pathlib import Path
from typing import Any

from solbot.data.bars import timeframe_ms

log = logging.getLogger(__name__)

MARGIN = 1.5
MIN_ORDERS = 3


def threshold_from_result(
    path: Path,
    strategy: str,
    params: dict[str, Any],
    timeframe: str,
    strategy_sha256: str | None = None,
) -> tuple[int, str]:
    """(bars, why) from a backtest's result.json; 0 bars when it cannot tell. A strategy
    file is the same strategy when its bytes are (``strategy_sha256``): a deployed copy
    runs from another path than the one backtested."""
    try:
        result = json.loads(path.read_text())
        given = dict(result["params"])
        trades = list(result["trades"])
        result_tf = str(result["timeframe"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return 0, f"{path}: not a backtest result ({type(exc).__name__})"
    tested, tested_sha = given.pop("strategy", None), given.pop("strategy_sha256", None)
    same = tested_sha == strategy_sha256 if tested_sha else tested == strategy
    if not same:
        return 0, f"{path}: a backtest of another strategy"
    if given != dict(params):
        return 0, f"{path}: a backtest with other parameters ({given} != {params})"
    bars = sorted(
        int(b)
        for t in trades
        for b in (t.get("entry_bar"), t.get("exit_bar"))
        if isinstance(b, int | float)
    )
    if len(bars) < MIN_ORDERS:
        return 0, f"{path}: {len(bars)} orders, too few to know the strategy's pace"
    longest = max(b - a for a, b in itertools.pairwise(bars))
    scale = timeframe_ms(result_tf) / timeframe_ms(timeframe)
    n = max(1, math.ceil(longest * scale * MARGIN))
    return n, f"{MARGIN}x the longest gap between orders in {path.name} ({longest} bars)"


class QuietWatch:
    """Counts live bars since the last order; says when a quiet spell passes the threshold."""

    def __init__(self, after_bars: int) -> None:
        self.after_bars = after_bars  # 0: off
        self.since_order = 0
        self.orders_seen: int | None = None
        self.alerted = False

    def bar(self, orders: int, trading: bool) -> bool:
        """One live bar; ``orders``: how many orders the account has made so far;
        ``trading``: ACTIVE and not paused. True once when the spell crosses the threshold."""
        changed = self.orders_seen is not None and orders != self.orders_seen
        self.orders_seen = orders
        if changed or not trading:
            self.since_order = 0
            self.alerted = False
            return False
        self.since_order += 1
        if self.after_bars and self.since_order >= self.after_bars and not self.alerted:
            self.alerted = True
            return True
        return False
