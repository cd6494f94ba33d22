"""The composition root: what ``solbot run`` runs, built from the settings — the store, the
notifier and the metrics registry, the account, its session (paper or live), the shell and
the view the HTTP API serves. Nothing below this module builds any of them."""

from __future__ import annotations

import asyncio

from solbot.api.app import serve
from solbot.api.metrics import ViewCollector
from solbot.infra.metrics import Metrics
from solbot.infra.notify import Notifier
from solbot.persistence.store import Store
from solbot.runtime.account import Account
from solbot.runtime.config import Settings
from solbot.runtime.live import LiveSession
from solbot.runtime.reader import Reader
from solbot.runtime.service import BotService, Server
from solbot.runtime.session import PaperSession, Session


def build_bot(settings: Settings) -> BotService:
    """The bot of ``settings``, ready to ``run()`` (or to ``build()`` in a test)."""
    s = settings
    store = Store(s.db_url)
    metrics = Metrics()
    notifier = Notifier(
        s.discord_webhook_url,
        s.secrets(),
        label="testnet" if s.exchange_sandbox else "",
        outbox=s.data_dir / "notify-outbox.jsonl",
    )
    account = Account(s, store, notifier, metrics)
    session: Session = LiveSession(account) if s.live else PaperSession(s)
    bot = BotService(s, account, session, notifier, metrics)
    view = bot.view = Reader(s, account, session, bot, metrics)
    metrics.add(ViewCollector(view))

    async def serve_api() -> tuple[Server, asyncio.Task[None]]:
        return await serve(view, s.host, s.port)

    bot.serve = serve_api
    return bot
