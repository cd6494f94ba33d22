"""Accounts for unit tests: the real ``Account`` over a paper session, its store in the
test's home, alerts recorded instead of sent."""

from __future__ import annotations

from pathlib import Path

from solbot.infra.metrics import Metrics
from solbot.persistence.store import Store
from solbot.runtime.account import Account
from solbot.runtime.config import Settings, load_settings
from solbot.runtime.session import PaperSession


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, severity: str, title: str, text: str) -> None:
        self.sent.append((severity, title, text))


def account_of(settings: Settings) -> Account:
    """An account of ``settings``, not built yet (a test may replace its market data)."""
    return Account(settings, Store(settings.db_url), Alerts(), Metrics())


def paper_account(home: Path, **environ: str) -> Account:
    acct = account_of(load_settings(home, environ=environ))
    acct.build(PaperSession(acct.settings))
    return acct
