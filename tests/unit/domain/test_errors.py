"""The error tree: each kind a module raises leaves ``solbot`` with its documented exit
code, mapped in one place (``cli.common.errors``)."""

from __future__ import annotations

import pytest
import typer

from solbot.cli.common import ExchangeUnavailable, UsageError, errors
from solbot.data.bars import DataError
from solbot.domain.errors import SolbotError
from solbot.engine.params import ParamError
from solbot.persistence.check import DatabaseDamaged
from solbot.runtime.config import ConfigError
from solbot.runtime.restart import ReconcileError
from solbot.runtime.service import KillSwitchEngaged
from solbot.strategies import StrategyError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad key"), 2),
        (UsageError("bad argument"), 2),
        (ParamError("bad parameter"), 2),
        (StrategyError("no such strategy"), 2),
        (DataError("gap"), 3),
        (ExchangeUnavailable("unreachable"), 4),
        (ReconcileError("books differ"), 7),
        (DatabaseDamaged("damaged"), 8),
        (KillSwitchEngaged("flag exists"), 10),
        (SolbotError("unexpected"), 1),
    ],
)
def test_each_error_kind_exits_with_its_documented_code(error: Exception, code: int) -> None:
    with pytest.raises(typer.Exit) as exit_, errors():
        raise error
    assert exit_.value.exit_code == code


def test_bad_values_are_still_value_errors_for_pydantic_and_callers() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(ReconcileError, SolbotError) and not issubclass(ReconcileError, ValueError)
