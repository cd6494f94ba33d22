"""The command layer: what each verb does and answers, written once for every transport.

The HTTP API's control routes (``/api/pause``, ``/api/resume``, ``/api/kill``) and the chat
transports call the same actions here, so every command — whoever sends it, however — goes
to the audit log with who gave it and how (``command`` entries: verb, via, who, whether
confirmed). The chat answers are plain text, short enough for a phone; a destructive verb
(``flatten``, ``kill``) first answers with a question and acts only when confirmed.

Only ``runtime.view`` and the domain are imported: the commands read snapshots and use the
view's pause / resume / kill / flatten, never the account itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from solbot.runtime.view import BotView

MAX_TEXT = 3500  # characters, under Telegram's 4096 (Discord's answers are cut at its 2000)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a command, and through what (``api``, ``telegram``, ``discord``)."""

    via: str
    who: str


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    confirm: str | None = None  # a destructive verb that waits for a yes
    acted: bool = False  # the bot's state was changed by it


@dataclass(frozen=True, slots=True)
class Verb:
    name: str
    summary: str
    destructive: bool = False


VERBS: dict[str, Verb] = {
    v.name: v
    for v in (
        Verb("status", "health, trading state, last bar"),
        Verb("account", "equity, P&L, balances, positions"),
        Verb("orders", "open orders"),
        Verb("trades", "the last fills"),
        Verb("daily", "P&L of the last 7 days"),
        Verb("pause", "stop opening new trades (open positions keep their stops)"),
        Verb("resume", "trade again after a pause"),
        Verb("flatten", "cancel every order, sell every position, stay paused", True),
        Verb("kill", "kill switch: cancel every order and stop the bot (exit 10)", True),
        Verb("help", "this list"),
    )
}


def _money(v: Decimal, places: int = 2) -> str:
    return f"{v:,.{places}f}"


def _signed(v: Decimal) -> str:
    return f"{'+' if v >= 0 else ''}{_money(v)}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "none yet"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    return f"{d}d {h}h {m:02d}m" if d else f"{h}h {m:02d}m {s:02d}s"


class Commands:
    def __init__(self, view: BotView) -> None:
        self.view = view
        self._answers: dict[str, Callable[[], str]] = {
            "status": self.status_text,
            "account": self.account_text,
            "orders": self.orders_text,
            "trades": self.trades_text,
            "daily": self.daily_text,
            "help": self.help_text,
        }

    # ---------------------------------------------------------------- actions
    def _record(self, verb: str, by: Caller, **detail: Any) -> None:
        self.view.record("command", {"verb": verb, "via": by.via, "who": by.who, **detail})

    def pause(self, by: Caller) -> None:
        self._record("pause", by)
        self.view.pause()

    def resume(self, by: Caller) -> None:
        self._record("resume", by)
        self.view.resume()

    def kill(self, reason: str, by: Caller) -> str:
        """The reason used (one line, bounded)."""
        self._record("kill", by, reason=reason)
        return self.view.kill(reason)

    def flatten(self, by: Caller) -> list[str]:
        self._record("flatten", by)
        return self.view.flatten(f"flatten by {by.via} {by.who}")

    # ---------------------------------------------------------------- chat
    @staticmethod
    def parse(text: str) -> tuple[str, str]:
        """``/verb@botname args`` -> (verb, args); verb "" when the text is no command."""
        text = text.strip()
        if not text.startswith("/"):
            return "", text
        head, _, args = text[1:].partition(" ")
        return head.split("@", 1)[0].lower(), args.strip()

    def run(self, text: str, by: Caller, confirmed: bool = False) -> Reply:
        """Answer one chat command. A destructive verb answers with a question (``confirm``
        set) unless ``confirmed``; the transport asks it and calls again with the answer."""
        verb, args = self.parse(text)
        if verb not in VERBS:
            self._record(verb or "(text)", by, known=False)
            return Reply(f"Unknown command{f' /{verb}' if verb else ''}.\n\n{self.help_text()}")
        if verb in self._answers:
            self._record(verb, by)
            return Reply(self._answers[verb]()[:MAX_TEXT])
        if VERBS[verb].destructive and not confirmed:
            self._record(verb, by, confirmed=False)
            return Reply(self._question(verb), confirm=verb)
        if verb == "pause":
            self.pause(by)
            return Reply("Paused: no new trades; open positions keep their stops.", acted=True)
        if verb == "resume":
            self.resume(by)
            return Reply("Resumed: trading.", acted=True)
        if verb == "flatten":
            sold = self.flatten(by)
            what = ", ".join(sold) if sold else "nothing (no position)"
            return Reply(f"Flattened: orders cancelled, sold {what}. Paused.", acted=True)
        reason = self.kill(args or f"kill by {by.via} {by.who}", by)
        return Reply(f"Kill switch engaged: {reason}. The bot stops (exit 10).", acted=True)

    def _question(self, verb: str) -> str:
        if verb == "kill":
            return (
                "Engage the kill switch? Every order is cancelled and the bot stops; "
                "it will not start again until the flag is cleared."
            )
        return "Flatten? Every order is cancelled, every position sold at market, then paused."

    # ---------------------------------------------------------------- answers
    def help_text(self) -> str:
        return "\n".join(
            f"/{v.name} — {v.summary}{' (asks first)' if v.destructive else ''}"
            for v in VERBS.values()
        )

    def status_text(self) -> str:
        st = self.view.status()
        health = "healthy" if st.healthy else "UNHEALTHY: " + "; ".join(st.problems)
        state = st.trading_state.value.upper()
        lines = [
            f"{st.symbol} {st.timeframe}, {st.mode} on {st.market} — {state} ({health})",
            f"last bar {_when(st.last_bar_ts)}; {st.bars_processed} bars; up "
            f"{_duration(st.uptime_seconds)}",
            f"paused: {'yes' if st.paused else 'no'}; kill switch: "
            f"{'ENGAGED (' + (st.kill_reason or '') + ')' if st.kill_engaged else 'off'}",
        ]
        if st.trading_state_reason:
            lines.append(f"state reason: {st.trading_state_reason}")
        if len(st.symbols) > 1:
            lines += [
                f"{s.symbol}: {s.trading_state.value}, {s.bars_processed} bars" for s in st.symbols
            ]
        return "\n".join(lines)

    def account_text(self) -> str:
        a = self.view.account()
        lines = [
            f"equity {_money(a.equity)} {a.asset}; today {_signed(a.daily_pnl)}; "
            f"total {_signed(a.total_pnl)}; fees {_money(a.fees)}",
            f"exposure {_money(a.exposure)} {a.asset} (cap {a.exposure_cap:.0%} of equity)",
        ]
        for asset, (free, locked) in sorted(a.balances.items()):
            if free or locked:
                lines.append(f"{asset}: {free.normalize():f} free, {locked.normalize():f} locked")
        for p in a.positions():
            lines.append(
                f"position {p.symbol}: {p.qty.normalize():f} @ {_money(p.avg_price, 4)}, "
                f"unrealised {_signed(p.unrealised_pnl)}"
            )
        if not a.positions():
            lines.append("no position")
        return "\n".join(lines)

    def orders_text(self) -> str:
        a = self.view.account()
        lines = []
        for b in a.sleeves:
            for o in b.open_orders:
                price = f" @ {o.price.normalize():f}" if o.price is not None else ""
                lines.append(
                    f"{b.symbol} {o.order_id}: {o.side} {o.type} {o.quantity.normalize():f}"
                    f"{price} ({o.status})"
                )
        return "\n".join(lines) if lines else "no open orders"

    def trades_text(self, limit: int = 10) -> str:
        rows = self.view.fills(limit, None)
        if not rows:
            return "no trades yet"
        return "\n".join(
            f"{_when(int(r['ts']))} {r['symbol']} {r['side']} "
            f"{Decimal(r['quantity']).normalize():f} @ {Decimal(r['price']).normalize():f}"
            f" (fee {Decimal(r['fee']).normalize():f} {r['fee_asset']})"
            for r in rows
        )

    def daily_text(self, days: int = 7) -> str:
        rows = self.view.daily(days)
        if not rows:
            return "no trading day yet"
        out = []
        for d in rows:
            pct = d.pnl / d.start_equity * 100 if d.start_equity else Decimal(0)
            halted = " (halted: daily loss limit)" if d.halted else ""
            out.append(f"{d.day}: {_signed(d.pnl)} ({pct:+.2f} %){halted}")
        return "\n".join(out)
