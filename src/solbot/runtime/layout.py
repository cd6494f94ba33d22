"""How one account is laid out over its symbols' sleeves when the bot starts: each symbol's
market data opened (several replays put in step), symbols dropped from the configuration
checked for what they still hold, and each sleeve's share of the capital (fixed at the
account's first start)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from solbot.domain.values import ZERO
from solbot.persistence.store import Store
from solbot.runtime.config import ConfigError
from solbot.runtime.feeds import ReplayFeed
from solbot.runtime.multi import allocation_weights

if TYPE_CHECKING:
    from solbot.runtime.config import Settings
    from solbot.runtime.sleeve import Sleeve

log = logging.getLogger(__name__)


def open_feeds(sleeves: Sequence[Sleeve]) -> None:
    """Opens each symbol's market data (a bad file fails the start). Several replayed files
    start at different times: all replay from the latest first bar, so the symbols move
    together in time (as they would live)."""
    feeds = [sl.feed() for sl in sleeves]
    replays = [f for f in feeds if isinstance(f, ReplayFeed)]
    if len(feeds) < 2 or len(replays) != len(feeds):
        return
    common = max(int(f.data.ts[0]) for f in replays)
    for f in replays:
        f.start_ts = common


def refuse_orphans(store: Store, symbols: set[str]) -> None:
    """A symbol dropped from the configuration must not leave a position or resting orders
    behind unwatched: refuse to start (ConfigError: exit 2) until it is traded out."""
    for sleeve, assets in store.sleeves().items():
        if sleeve in symbols or not sleeve:
            continue
        base = sleeve.partition("/")[0]
        open_orders = store.orders(limit=1000, open_only=True, symbol=sleeve)
        if assets.get(base, ZERO) != ZERO or open_orders:
            raise ConfigError(
                f"symbols: the books hold {assets.get(base, ZERO)} {base} and "
                f"{len(open_orders)} open order(s) of {sleeve}, which is no longer traded; "
                f"add it back to close them first"
            )
        log.warning("%s is no longer traded; its books stay on disk", sleeve)


def allocation(
    settings: Settings, store: Store, sleeves: Sequence[Sleeve], kept: str | None, fresh: bool
) -> dict[str, Decimal]:
    """Each sleeve's share of the capital: the ``kept`` weights (the account's ``allocation``
    checkpoint) while the symbols are the same, else equal or inverse-volatility weights
    (``fresh``: some sleeve has no books yet), stored for the next start."""
    weights = {k: Decimal(v) for k, v in json.loads(kept).items()} if kept else {}
    if set(weights) == {sl.symbol for sl in sleeves}:
        return weights
    s = settings
    if s.allocation == "vol" and len(sleeves) > 1 and fresh:
        data = [sl.calibration(s.calibration_days) for sl in sleeves]
        vol = allocation_weights(data, "vol", s.calibration_days)
        weights = {k: Decimal(repr(v)) for k, v in vol.items()}
    else:
        weights = {sl.symbol: Decimal(1) / Decimal(len(sleeves)) for sl in sleeves}
    store.put(allocation=json.dumps({k: str(v) for k, v in weights.items()}))
    if len(sleeves) > 1:
        log.info("allocation (%s): %s", s.allocation, weights)
    return weights
