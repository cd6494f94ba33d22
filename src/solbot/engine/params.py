"""Declared strategy parameters: a strategy lists what it can be tuned by, with a type, a
default, the values it accepts and the range the optimiser searches.

    class MyStrategy(Strategy):
        parameters = {
            "period": Int(20, 2, 500, search=(10, 60), help="lookback in bars"),
            "k": Float(2.0, 0.1, 10.0, search=(1.5, 3.0)),
            "stake": Dec("0.25", "0.01", "1"),
            "mode": Choice("fast", ("fast", "slow")),
            "enabled": Flag(True),
        }

They drive ``--param KEY=VALUE`` and ``SOLBOT_STRATEGY_PARAMS`` (each value converted to its
type and checked, one line naming the parameter when it is not valid) and ``solbot
optimize``'s search space (``search``, else the whole valid range; ``optimize=False`` keeps a
parameter out of it). The strategy's ``__init__`` still receives them as keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from solbot.domain.errors import ConfigurationError


class ParamError(ConfigurationError):
    """A parameter value its declaration does not accept (one line)."""


@dataclass(frozen=True, slots=True)
class Param:
    kind: str  # "int", "float", "decimal", "choice", "flag"
    default: Any
    low: Any = None
    high: Any = None
    choices: tuple[Any, ...] = ()
    search: tuple[Any, Any] | None = None
    optimize: bool = True
    help: str = ""

    def check(self, name: str, raw: Any) -> Any:
        """``raw`` (a string from the command line, or a JSON value) as this parameter's
        type, or ``ParamError`` naming the parameter."""
        value = self._convert(name, raw)
        if self.kind in ("int", "float", "decimal"):
            if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high
            ):
                raise ParamError(f"parameter {name}: {raw!r} is outside [{self.low}, {self.high}]")
        elif self.kind == "choice" and value not in self.choices:
            shown = ", ".join(map(str, self.choices))
            raise ParamError(f"parameter {name}: {raw!r} is not one of {shown}")
        return value

    def _convert(self, name: str, raw: Any) -> Any:
        try:
            if self.kind == "int":
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                return int(raw) if not isinstance(raw, str) else int(raw.strip())
            if self.kind == "float":
                if isinstance(raw, bool):
                    raise ValueError
                value = float(raw)
                if not math.isfinite(value):
                    raise ValueError
                return value
            if self.kind == "decimal":
                if isinstance(raw, bool | float):
                    raw = repr(raw) if not isinstance(raw, bool) else None
                dec = Decimal(str(raw))
                if not dec.is_finite():
                    raise ValueError
                return dec
            if self.kind == "flag":
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in ("true", "1", "yes", "on"):
                    return True
                if text in ("false", "0", "no", "off"):
                    return False
                raise ValueError
            if self.kind == "choice":
                for c in self.choices:  # "3" on the command line for a numeric choice
                    if raw == c or str(raw) == str(c):
                        return c
                return raw
        except (ValueError, TypeError, InvalidOperation):
            pass
        else:
            raise AssertionError(f"unknown parameter kind {self.kind!r}")
        kinds = {"int": "an integer", "float": "a number", "decimal": "a decimal number",
                 "flag": "true or false"}  # fmt: skip
        raise ParamError(f"parameter {name}: {raw!r} is not {kinds.get(self.kind, self.kind)}")

    @property
    def space(self) -> tuple[Any, Any]:
        """The range the optimiser searches."""
        return self.search if self.search is not None else (self.low, self.high)

    def suggest(self, trial: Any, name: str) -> Any:
        """This parameter's value for an Optuna trial."""
        lo, hi = self.space
        if self.kind == "int":
            return trial.suggest_int(name, int(lo), int(hi))
        if self.kind == "float":
            return trial.suggest_float(name, float(lo), float(hi))
        if self.kind == "decimal":
            return Decimal(repr(trial.suggest_float(name, float(lo), float(hi))))
        if self.kind == "flag":
            return trial.suggest_categorical(name, [False, True])
        return trial.suggest_categorical(name, list(self.choices))

    @property
    def searchable(self) -> bool:
        if not self.optimize:
            return False
        if self.kind in ("flag", "choice"):
            return True
        lo, hi = self.space
        return lo is not None and hi is not None


def Int(  # noqa: N802 - a declaration reads like a type
    default: int,
    low: int | None = None,
    high: int | None = None,
    *,
    search: tuple[int, int] | None = None,
    optimize: bool = True,
    help: str = "",
) -> Param:
    return Param("int", default, low, high, search=search, optimize=optimize, help=help)


def Float(  # noqa: N802
    default: float,
    low: float | None = None,
    high: float | None = None,
    *,
    search: tuple[float, float] | None = None,
    optimize: bool = True,
    help: str = "",
) -> Param:
    return Param("float", default, low, high, search=search, optimize=optimize, help=help)


def Dec(  # noqa: N802
    default: str | Decimal,
    low: str | Decimal | None = None,
    high: str | Decimal | None = None,
    *,
    search: tuple[str | Decimal, str | Decimal] | None = None,
    optimize: bool = True,
    help: str = "",
) -> Param:
    def d(x: str | Decimal | None) -> Decimal | None:
        return None if x is None else Decimal(str(x))

    space = None if search is None else (d(search[0]), d(search[1]))
    return Param("decimal", d(default), d(low), d(high), search=space, optimize=optimize, help=help)


def Choice(  # noqa: N802
    default: Any, choices: tuple[Any, ...], *, optimize: bool = True, help: str = ""
) -> Param:
    if default not in choices:
        raise ValueError(f"default {default!r} is not one of {choices}")
    return Param("choice", default, choices=tuple(choices), optimize=optimize, help=help)


def Flag(default: bool, *, optimize: bool = False, help: str = "") -> Param:  # noqa: N802
    return Param("flag", bool(default), optimize=optimize, help=help)


def check_params(declared: dict[str, Param], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` with every declared parameter converted and checked; undeclared ones are
    passed on as they are (the strategy's ``__init__`` decides)."""
    return {k: declared[k].check(k, v) if k in declared else v for k, v in given.items()}
