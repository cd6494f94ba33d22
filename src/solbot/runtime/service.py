"""The shell of the running bot: one asyncio loop, the instance lock, signals, the tasks and
their supervision, the kill-switch watcher, systemd's watchdog, and the order of shutdown.

What trades is the account (``runtime.account``) over a session (``runtime.session``: paper
or live); what the outside sees is the view (``runtime.view``), served by the HTTP API. The
composition root (``solbot.bot.build_bot``) builds them and hands them in here.

A kill flag to the exit: the watcher sees the flag -> ``kill`` -> the account halts, cancels,
(flattens), persists and alerts -> stop requested -> ``_shutdown``: intake stopped, the
session leaves the venue clean, books and audit written, alerts drained, API closed, exit 10.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from solbot import __version__
from solbot.domain.errors import KillSwitchError
from solbot.infra import logs, sdnotify
from solbot.infra.instance import InstanceLock
from solbot.infra.metrics import Metrics
from solbot.infra.notify import ErrorAlerts, Notifier
from solbot.runtime.account import Account
from solbot.runtime.config import Settings
from solbot.runtime.exitcodes import EXIT_INTERNAL, EXIT_KILLED, EXIT_OK
from solbot.runtime.session import Session
from solbot.runtime.view import BotView

log = logging.getLogger(__name__)

# s: how long a stop waits for Discord; what has not gone by then is sent at the next start
# (a kill flag's exit within 1 s and a SIGTERM's within 2 s hold with the webhook unreachable)
NOTIFY_ON_STOP = 0.5


class KillSwitchEngaged(KillSwitchError):
    pass


class Server(Protocol):
    async def stop_fast(self) -> None: ...


Serve = Callable[[], Awaitable[tuple[Server, asyncio.Task[None]]]]


class SideService(Protocol):
    """A service beside trading (chat control): its end never stops the bot."""

    name: str

    async def run(self) -> None: ...
    async def stop(self, timeout: float) -> None: ...


class BotService:
    def __init__(
        self,
        settings: Settings,
        account: Account,
        session: Session,
        notifier: Notifier,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.account = account
        self.session = session
        self.notifier = notifier
        self.metrics = metrics
        self.serve: Serve | None = None  # the API server, set by the composition root
        self.view: BotView | None = None  # what the API reads, set by the composition root
        self.services: list[SideService] = []  # chat control, added by the composition root
        self.started_monotonic = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.exit_code = EXIT_OK
        self.stop_reason = ""
        self.stop_event = asyncio.Event()
        self._stopping = False
        self.instance = InstanceLock(settings.data_dir)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic

    @property
    def stopping(self) -> bool:
        return self._stopping or self.stop_event.is_set()

    def build(self) -> None:
        """The account over the session (tests build without running)."""
        self.account.build(self.session, self.started_at)

    def kill(self, reason: str) -> None:
        """The kill switch: the account halts and cancels (see ``Account.kill``), then the
        bot stops with EXIT_KILLED."""
        if self.account.kill(reason, self.settings.flatten_on_kill):
            self.exit_code = EXIT_KILLED
            self.request_stop("kill switch")

    def request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        self.stop_event.set()
        self.account.changed()

    # ---------------------------------------------------------------- running
    async def run(self) -> int:
        s = self.settings
        if s.kill_switch.engaged:
            raise KillSwitchEngaged(
                f"kill switch flag {s.kill_flag} exists; "
                f"clear it with 'solbot kill --clear' to trade again"
            )
        self.instance.acquire()  # one bot per home (AlreadyRunning: exit 2)
        try:
            return await self._run()
        finally:
            self.instance.release()

    async def _run(self) -> int:
        s, acct, session = self.settings, self.account, self.session
        await session.connect()
        try:
            self.build()  # opens every market's data too: a bad replay file fails the start
            await session.reconcile_start()
        except BaseException:
            await session.close()
            acct.store.close()
            raise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
        watcher = s.kill_switch.watch(lambda: self.kill(self._flag_reason()))
        assert self.serve is not None, "the composition root sets the API server"
        server, server_task = await self.serve()
        watcher.start()
        several = len(acct.sleeves) > 1
        named = [
            (
                f"market {sl.symbol}" if several else "market",
                sl.market(acct.sleeve_bar, self.stop_event.is_set),
            )
            for sl in acct.sleeves
        ]
        named.append(("loop-lag", self.metrics.loop_lag()))
        named.extend(session.tasks())
        wd = sdnotify.watchdog_interval()
        if wd:
            named.append(("watchdog", self._watchdog(wd)))
        tasks = [asyncio.create_task(coro, name=name) for name, coro in named]
        for t in tasks:
            t.add_done_callback(self._task_ended)
        side = [asyncio.create_task(svc.run(), name=svc.name) for svc in self.services]
        self.notifier.start()
        alerts = ErrorAlerts(self.notifier)
        logging.getLogger("solbot").addHandler(alerts)
        mode = session.describe()
        symbols = ", ".join(sl.symbol for sl in acct.sleeves)
        sdnotify.notify(f"READY=1\nSTATUS=trading {symbols} ({s.market.value})")
        log.info(
            "solbot %s up: %s %s %s on %s, API http://%s:%d",
            __version__,
            symbols,
            s.timeframe,
            mode,
            s.market.value,
            s.host,
            s.port,
        )
        self.notifier.send("P3", "Bot started", f"{symbols} {mode} on {s.market.value}")
        await self.stop_event.wait()
        await self._shutdown(server, server_task, tasks, watcher.stop, side)
        logging.getLogger("solbot").removeHandler(alerts)
        return self.exit_code

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A core task must run until shutdown; if one dies, the bot stops with an error (exit
        1) rather than run on half-blind (systemd restarts it and reconciliation catches up)."""
        if task.cancelled() or self._stopping or task.exception() is None:
            return  # a replay feed may simply end: the API stays up
        exc = task.exception()
        what = f"{type(exc).__name__}: {exc}"
        log.error("task %s died (%s); stopping", task.get_name(), what, exc_info=exc)
        self.notifier.send("P1", "Bot task died", f"{task.get_name()}: {what}"[:300])
        if self.exit_code == EXIT_OK:
            self.exit_code = EXIT_INTERNAL
        self.request_stop(f"task {task.get_name()} died")

    def _flag_reason(self) -> str:
        return self.settings.kill_switch.reason() or "kill-switch.flag created"

    async def _watchdog(self, interval: float) -> None:
        while True:
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _shutdown(
        self,
        server: Server,
        server_task: asyncio.Task[None],
        tasks: list[asyncio.Task[None]],
        stop_watcher: Callable[[], None],
        side: list[asyncio.Task[None]],
    ) -> None:
        acct = self.account
        self._stopping = True
        sdnotify.notify("STOPPING=1")
        log.info("stopping: %s", self.stop_reason)
        # a hung step dumps every stack to the journal before systemd's TimeoutStopSec=30
        faulthandler.dump_traceback_later(20.0, exit=False)
        for t in tasks:  # stop intake first
            t.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=5.0)
        for t in pending:
            log.error("shutdown: task %s did not stop within 5 s", t.get_name())
        stop_watcher()
        log.debug("shutdown: intake stopped")
        killed = acct.kill_reason is not None
        if not killed and self.settings.cancel_on_stop:
            acct.cancel_all()
        await self.session.stop(cancel=killed or self.settings.cancel_on_stop)
        acct.write_books()
        acct.store.audit("stop", {"reason": self.stop_reason, "exit_code": self.exit_code})
        if not killed:
            self.notifier.send("P2", "Bot stopped", self.stop_reason)
        log.debug("shutdown: books persisted")
        await self.notifier.drain(timeout=NOTIFY_ON_STOP)  # the rest: the outbox
        await asyncio.gather(*(svc.stop(NOTIFY_ON_STOP) for svc in self.services))
        for t in side:
            t.cancel()
        if side:
            await asyncio.wait(side, timeout=1.0)
        log.debug("shutdown: notifications and chat drained")
        await server.stop_fast()
        server_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(server_task, timeout=1.0)
        log.debug("shutdown: HTTP server closed")
        acct.store.close()
        faulthandler.cancel_dump_traceback_later()
        log.info("stopped (exit code %d)", self.exit_code)
        logs.flush()
