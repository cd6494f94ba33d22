"""Process exit codes of the ``solbot`` command (documented in the README); each error kind
of ``domain.errors`` carries its own."""

from solbot.domain.errors import (
    EXIT_DATA,
    EXIT_DATABASE,
    EXIT_INTERNAL,
    EXIT_KILLED,
    EXIT_LOOKAHEAD,
    EXIT_OK,
    EXIT_RECONCILE,
    EXIT_UNHEALTHY,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_DATA",
    "EXIT_DATABASE",
    "EXIT_INTERNAL",
    "EXIT_KILLED",
    "EXIT_LOOKAHEAD",
    "EXIT_OK",
    "EXIT_RECONCILE",
    "EXIT_UNHEALTHY",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
]
