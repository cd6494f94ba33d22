"""The errors the bot reports to a person, as a tree. Each kind carries the process exit code
``solbot`` leaves with (``cli.common.errors`` maps any of them in one place; the codes are
documented in the README and ``runtime.exitcodes``):

    SolbotError                  1  unexpected
    ├── ConfigurationError       2  bad arguments or settings (also a ValueError)
    ├── MarketDataError          3  bad or unusable market data (also a ValueError)
    ├── ExchangeError            4  the exchange could not be reached or refused
    ├── ReconciliationError      7  live: our books and the exchange's disagree
    ├── DatabaseError            8  the database is damaged, or empty where it held an account
    └── KillSwitchError         10  the kill switch is engaged: systemd must not restart

Modules subclass these where they raise (``runtime.config.ConfigError``,
``data.bars.DataError``, ``persistence.check.DatabaseDamaged``, ...)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_UNREACHABLE = 4
EXIT_UNHEALTHY = 5
EXIT_LOOKAHEAD = 6  # check-lookahead found a decision that used later data
EXIT_RECONCILE = 7  # live: our books and the exchange's disagree (fail closed)
EXIT_DATABASE = 8  # the database is damaged, or empty where the home held an account
EXIT_KILLED = 10  # kill switch engaged: systemd must not restart (RestartPreventExitStatus)


class SolbotError(Exception):
    exit_code = EXIT_INTERNAL


class ConfigurationError(SolbotError, ValueError):
    exit_code = EXIT_USAGE


class MarketDataError(SolbotError, ValueError):
    exit_code = EXIT_DATA


class ExchangeError(SolbotError):
    exit_code = EXIT_UNREACHABLE


class ReconciliationError(SolbotError):
    exit_code = EXIT_RECONCILE


class DatabaseError(SolbotError):
    exit_code = EXIT_DATABASE


class KillSwitchError(SolbotError):
    exit_code = EXIT_KILLED
