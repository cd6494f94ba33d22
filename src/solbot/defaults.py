"""Defaults that the settings and the CLI share, importable without what they name.

``DEFAULT_STRATEGY`` is what runs when nothing names a strategy: ``tsmom``, daily time-series
momentum with volatility targeting, the only built-in strategy with an out-of-sample edge
after costs on SOL, BTC and ETH (``docs/strategy.md`` gives the figures and where it falls
short). ``solbot``, the regime switcher that was the default before, and the others remain
options (``SOLBOT_STRATEGY``, ``--strategy``).
"""

from __future__ import annotations

DEFAULT_STRATEGY = "tsmom"
