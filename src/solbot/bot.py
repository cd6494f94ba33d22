"""The composition root: what ``solbot run`` runs, built from the settings — the store, the
notifier and the metrics registry, the account, its session (paper or live), the shell, the
view the HTTP API serves and the chat control (Telegram, Discord) over the same view.
Nothing below this module builds any of them."""

from __future__ import annotations

import asyncio

from solbot.api.app import serve
from solbot.api.metrics import ViewCollector
from solbot.control.commands import Commands
from solbot.control.discord import DiscordControl
from solbot.control.telegram import TelegramControl
from solbot.infra.metrics import Metrics
from solbot.infra.notify import Notifier
from solbot.persistence.store import Store
from solbot.runtime.account import Account
from solbot.runtime.config import Settings
from solbot.runtime.live import LiveSession
from solbot.runtime.protection import Protector
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
    session: Session = (
        LiveSession(account)
        if s.live
        else PaperSession(s, protect=Protector(account).protect_positions)
    )
    bot = BotService(s, account, session, notifier, metrics)
    view = bot.view = Reader(s, account, session, bot, metrics)
    metrics.add(ViewCollector(view))

    if s.telegram_bot_token is not None:
        telegram = TelegramControl(
            Commands(view),
            s.telegram_bot_token.get_secret_value(),
            s.telegram_api_url,
            frozenset(s.telegram_chat_ids),
            frozenset(s.telegram_user_ids),
            frozenset(s.telegram_alerts),
        )
        bot.services.append(telegram)
        notifier.also.append(telegram.alert)

    discord = None
    if s.discord_public_key is not None:
        discord = DiscordControl(
            Commands(view),
            s.discord_public_key,
            frozenset(s.discord_user_ids),
            frozenset(s.discord_channel_ids),
        )

    async def serve_api() -> tuple[Server, asyncio.Task[None]]:
        return await serve(view, s.host, s.port, discord)

    bot.serve = serve_api
    return bot
