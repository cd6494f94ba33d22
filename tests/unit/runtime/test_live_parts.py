"""Pieces of live trading that need no exchange: fault specs, error classes, live config."""

from __future__ import annotations

from pathlib import Path

import pytest
from ccxt.base import errors as cx

from solbot.emulator.binance import FaultSpec, FaultSpecError
from solbot.runtime.config import ConfigError, load_settings
from solbot.venues.exchange import classify


def test_fault_spec_parses_and_refuses_nonsense() -> None:
    spec = FaultSpec.parse("429=0.1,timeout=0.05,latency=0.01,retry_after=2,partial=0.5,seed=4")
    assert spec.rates == {"429": 0.1, "timeout": 0.05}
    assert (spec.latency, spec.retry_after, spec.partial, spec.seed) == (0.01, 2, 0.5, 4)
    for bad in ("429", "429=x", "429=1.5", "boom=0.1", "500=0.6,drop=0.6", "partial=0"):
        with pytest.raises(FaultSpecError):
            FaultSpec.parse(bad)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (cx.DDoSProtection("binance 429 Too Many Requests"), "rate_limited"),
        (cx.DDoSProtection("binance 418 I'm a teapot"), "banned"),
        (cx.RequestTimeout("timeout"), "unknown"),
        (cx.ExchangeNotAvailable("503"), "unknown"),
        (cx.OperationFailed('{"code":-1001}'), "unknown"),
        (cx.BadResponse("-1007"), "unknown"),
        (cx.AuthenticationError("-2015"), "auth"),
        (cx.PermissionDenied("no"), "auth"),
        (cx.OrderNotFound("-2013"), "not_found"),
        (cx.InsufficientFunds("-2010"), "rejected"),
        (cx.InvalidOrder("LOT_SIZE"), "rejected"),
        (ValueError("?"), "error"),
    ],
)
def test_errors_are_classified_by_what_must_happen_next(exc: Exception, kind: str) -> None:
    assert classify(exc) == kind


def _live(tmp_path: Path, **env: str) -> None:
    base = {
        "SOLBOT_MARKET": "exchange",
        "SOLBOT_EXCHANGE": "binance",
        "SOLBOT_LIVE": "true",
        "SOLBOT_EXCHANGE_API_KEY": "k" * 20,
        "SOLBOT_EXCHANGE_API_SECRET": "s" * 20,
        "SOLBOT_LIVE_CONFIRM": "real-money",
        "SOLBOT_MAX_ORDER_VALUE": "500",
    }
    merged = {k: v for k, v in {**base, **env}.items() if v != "<unset>"}
    load_settings(home=tmp_path, environ=merged)


def test_live_needs_keys_confirmation_and_an_order_cap(tmp_path: Path) -> None:
    _live(tmp_path)  # complete: accepted
    for key, value, named in (
        ("SOLBOT_LIVE_CONFIRM", "yes", "live_confirm"),
        ("SOLBOT_MAX_ORDER_VALUE", "<unset>", "max_order_value: required"),
        ("SOLBOT_EXCHANGE_API_SECRET", "", "exchange_api_key"),
        ("SOLBOT_MARKET", "synthetic", "live"),
    ):
        env = {key: value}
        with pytest.raises(ConfigError, match=named):
            _live(tmp_path, **env)


class _Risk:
    def __init__(self) -> None:
        from solbot.domain.values import TradingState

        self.state, self.reason = TradingState.ACTIVE, ""


class _Engine:
    def __init__(self) -> None:
        self.risk = _Risk()

    def set_trading_state(self, state: object, reason: str) -> None:
        self.risk.state, self.risk.reason = state, reason


class _Service:  # the parts of the account a live session uses
    def __init__(self) -> None:
        self.engine = _Engine()
        self.kill_reason: str | None = None
        self.sent: list[tuple[str, str]] = []
        self.alerts = self

    def set_trading_state(self, state: object, reason: str) -> None:
        self.engine.set_trading_state(state, reason)

    def trading_state(self) -> tuple[object, str]:
        return self.engine.risk.state, self.engine.risk.reason

    def send(self, severity: str, title: str, text: str) -> None:
        self.sent.append((severity, title))


def test_a_ban_halts_and_its_end_resumes_but_repeated_bans_keep_trading_halted() -> None:
    from solbot.domain.values import TradingState
    from solbot.runtime.live import BANS_BEFORE_OPERATOR, LiveSession

    svc = _Service()
    session = LiveSession(svc)  # type: ignore[arg-type]
    session.alarm("P1", "exchange banned this IP (HTTP 418); nothing sent for 5s")
    assert svc.engine.risk.state is TradingState.HALTED and "418" in svc.engine.risk.reason
    session.recovered("ban over")
    assert svc.engine.risk.state is TradingState.ACTIVE
    # another halt reason in between (e.g. the daily loss limit) is not lifted by a ban's end
    session.alarm("P1", "exchange banned this IP (HTTP 418); nothing sent for 5s")
    svc.engine.set_trading_state(TradingState.HALTED, "daily loss limit")
    session.recovered("ban over")
    assert svc.engine.risk.reason == "daily loss limit"
    svc.engine.set_trading_state(TradingState.ACTIVE, "new day")
    for _ in range(BANS_BEFORE_OPERATOR):
        session.alarm("P1", "exchange banned this IP (HTTP 418); nothing sent for 5s")
    session.recovered("ban over")
    assert svc.engine.risk.state is TradingState.HALTED
    assert "bans within an hour" in svc.engine.risk.reason
    assert ("P1", "Exchange bans repeat") in svc.sent
    # an authentication failure (P0) halts and is never lifted by a ban's end
    svc2 = _Service()
    s2 = LiveSession(svc2)  # type: ignore[arg-type]
    s2.alarm("P0", "exchange refused our API key (authentication/permission)")
    s2.recovered("ban over")
    assert svc2.engine.risk.state is TradingState.HALTED


class _MovingRec:
    """A reconciler whose looks always differ and whose trades never stop arriving."""

    def __init__(self, moving: bool) -> None:
        self.moving, self.adopted, self.looks = moving, False, 0

    async def exchange_totals(self) -> dict[str, object]:
        self.looks += 1
        return {"SOL": 2}

    def differences(self, theirs: dict[str, object]) -> list[str]:
        return ["SOL ours 1 exchange 2"]

    async def foreign_orders(self) -> list[str]:
        return []

    async def moved(self) -> bool:
        return self.moving

    def adopt(self, theirs: dict[str, object], report: str) -> None:
        self.adopted = True


@pytest.mark.parametrize("moving", [True, False])
def test_accepting_the_exchange_state_never_adopts_balances_read_while_our_orders_moved(
    moving: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--accept-exchange-state took the last look's balances even when our trades were still
    arriving after it (balances from before our latest fill): now it adopts only a still look
    and otherwise refuses the start (exit 7), to be tried again."""
    import asyncio

    from solbot.runtime import restart
    from solbot.runtime.live import LiveSession
    from solbot.runtime.restart import START_LOOKS, ReconcileError

    monkeypatch.setattr(restart, "START_LOOK_PAUSE", 0.0)

    class Settings:
        accept_exchange_state = True

    class Store:
        def audit(self, *a: object, **k: object) -> None:
            return None

    svc = _Service()
    svc.sleeves = []  # type: ignore[attr-defined]
    svc.settings = Settings()  # type: ignore[attr-defined]
    svc.store = Store()  # type: ignore[attr-defined]
    session = LiveSession(svc)  # type: ignore[arg-type]
    rec = session.rec = _MovingRec(moving)  # type: ignore[assignment]
    session.protector.protect_positions = lambda: None  # type: ignore[method-assign]
    if moving:
        with pytest.raises(ReconcileError, match="still moving while we looked"):
            asyncio.run(session.reconcile_start())
        assert not rec.adopted and rec.looks == START_LOOKS
    else:
        asyncio.run(session.reconcile_start())
        assert rec.adopted and rec.looks == 1
