"""Balances per asset (free + locked), reservations for open orders, settlement of fills.

A fee is charged in the asset the fill names: the quote, the base (Binance takes a buy's fee
from what it bought), or a third asset (Binance's "pay fees with BNB"). A spot account can
never spend more than it has: every debit is checked and raises ``InsufficientBalance``
instead of going negative -- except, in our own books of what an exchange reported, a fee in
a third asset (``fee_debt_ok``): the exchange has already charged it to the account, so it is
booked even where this ledger (one symbol's slice of the account) holds none of that asset.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solbot.domain.instruments import Instrument
from solbot.domain.messages import Fill
from solbot.domain.values import ZERO, OrderType, Side


class InsufficientBalance(Exception):
    pass


@dataclass(slots=True)
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


MARKET_BUY_LOCK_BUFFER = Decimal("0.02")
"""A market/stop buy sized in base units reserves its estimated cost plus this margin."""


def reservation(
    instrument: Instrument,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    quote_quantity: Decimal | None,
    price: Decimal | None,
    reference_price: Decimal,
    base_available: Decimal | None = None,
) -> tuple[str, Decimal]:
    """Which asset and how much of it an open order must hold locked.

    A sell holds the base it sells; on a shortable market a sell of more base than is
    available opens a short and holds quote collateral of its full value plus fee instead
    (the caller refuses a sell that would close a long and open a short at once)."""
    fee_rate = max(instrument.maker_fee, instrument.taker_fee)
    if side is Side.SELL:
        short = instrument.shortable and base_available is not None and quantity > base_available
        if not short:
            return instrument.base, quantity
        est = price if price is not None else reference_price
        notional = quantity * est * (1 + MARKET_BUY_LOCK_BUFFER)
        return instrument.quote, instrument.money(notional + instrument.fee(notional, fee_rate))
    if quote_quantity is not None:
        return instrument.quote, quote_quantity
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and price is not None:
        notional = quantity * price
    else:
        est = price if price is not None else reference_price
        notional = quantity * est * (1 + MARKET_BUY_LOCK_BUFFER)
    return instrument.quote, instrument.money(notional + instrument.fee(notional, fee_rate))


@dataclass(slots=True)
class Hold:
    """A reservation for one order, or for an OCO group whose legs share it."""

    asset: str
    amount: Decimal
    orders: int


class Ledger:
    """Account balances with reservations ("holds") for open orders.

    ``hold`` moves free -> locked under a key (an order id or an OCO group), ``settle``
    pays a fill from that key's hold first, ``release`` returns what is left once the last
    order under the key is done. Used both for our own books (the portfolio) and for a
    simulated exchange's books, so both follow the same rules.
    """

    __slots__ = ("_balances", "_holds")

    def __init__(self, initial: dict[str, Decimal] | None = None) -> None:
        self._balances: dict[str, Balance] = {}
        self._holds: dict[str, Hold] = {}
        for asset, amount in (initial or {}).items():
            if amount < ZERO:
                raise ValueError(f"initial balance of {asset} is negative")
            self._balances[asset] = Balance(free=amount)

    def balance(self, asset: str) -> Balance:
        bal = self._balances.get(asset)
        if bal is None:
            bal = self._balances[asset] = Balance()
        return bal

    def free(self, asset: str) -> Decimal:
        return self.balance(asset).free

    def total(self, asset: str) -> Decimal:
        return self.balance(asset).total

    def snapshot(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (b.free, b.locked) for a, b in sorted(self._balances.items())}

    def deposit(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` to the free balance (money that arrived from outside: a top-up)."""
        if amount < ZERO:
            raise ValueError("cannot deposit a negative amount")
        self.balance(asset).free += amount

    def held(self, key: str | None) -> Decimal:
        h = self._holds.get(key) if key is not None else None
        return h.amount if h is not None else ZERO

    def holds_key(self, key: str) -> bool:
        return key in self._holds

    def hold(self, key: str, asset: str, amount: Decimal) -> None:
        """Reserve ``amount`` of ``asset`` for ``key``; raises ``InsufficientBalance``."""
        bal = self.balance(asset)
        if amount < ZERO:
            raise ValueError("cannot hold a negative amount")
        if amount > bal.free:
            raise InsufficientBalance(f"need {amount} {asset}, free {bal.free}")
        bal.free -= amount
        bal.locked += amount
        h = self._holds.get(key)
        if h is None:
            self._holds[key] = Hold(asset, amount, 1)
        else:
            h.amount += amount
            h.orders += 1

    def release(self, key: str) -> None:
        """One order under ``key`` is done; the last one returns the rest to free."""
        h = self._holds.get(key)
        if h is None:
            return
        h.orders -= 1
        if h.orders > 0:
            return
        del self._holds[key]
        bal = self.balance(h.asset)
        amount = min(h.amount, bal.locked)
        bal.locked -= amount
        bal.free += amount

    def can_settle(
        self, fill: Fill, instrument: Instrument, key: str, fee_debt_ok: bool = False
    ) -> bool:
        """Whether the fill can be paid from its hold plus free balance (``fee_debt_ok``: a
        fee in a third asset is booked whatever this ledger holds of it)."""
        held = self.held(key)
        fee_q, fee_b, fee_other = _fee_parts(fill, instrument)
        if fee_other and not fee_debt_ok and fee_other > self.free(fill.fee_asset):
            return False
        if fill.side is Side.BUY:
            return fill.quantity * fill.price + fee_q <= held + self.free(instrument.quote)
        fee_ok = fee_q <= self.free(instrument.quote) + held + fill.quantity * fill.price
        if instrument.shortable:  # base may go negative: a short, backed by quote collateral
            return fee_ok
        return fill.quantity + fee_b <= held + self.free(instrument.base) and fee_ok

    def settle(
        self, fill: Fill, instrument: Instrument, key: str, fee_debt_ok: bool = False
    ) -> None:
        """Apply a fill, paying first from ``key``'s hold, then from free balance."""
        if not self.can_settle(fill, instrument, key, fee_debt_ok):
            raise InsufficientBalance(f"cannot settle fill {fill.trade_id} of {fill.order_id}")
        notional = fill.quantity * fill.price
        fee_q, fee_b, fee_other = _fee_parts(fill, instrument)
        if fill.side is Side.BUY:
            pay_asset, pay = instrument.quote, notional + fee_q
            get_asset, get = instrument.base, fill.quantity - fee_b
        else:
            pay_asset, pay = instrument.base, fill.quantity + fee_b
            get_asset, get = instrument.quote, notional - fee_q
        if fee_other:
            self.balance(fill.fee_asset).free -= fee_other
        spend = self.balance(pay_asset)
        h = self._holds.get(key)
        if h is not None and h.asset != pay_asset:
            h = None  # a short sale's hold is quote collateral: it stays until the order ends
        from_hold = min(pay, h.amount, spend.locked) if h is not None else ZERO
        if h is not None:
            h.amount -= from_hold
        spend.locked -= from_hold
        spend.free -= pay - from_hold
        self.balance(get_asset).free += get


def _fee_parts(fill: Fill, instrument: Instrument) -> tuple[Decimal, Decimal, Decimal]:
    """The fee split by where it is charged: (in quote, in base, in a third asset)."""
    if fill.fee_asset == instrument.base:
        return ZERO, fill.fee, ZERO
    if fill.fee_asset in (instrument.quote, ""):
        return fill.fee, ZERO, ZERO
    return ZERO, ZERO, fill.fee
