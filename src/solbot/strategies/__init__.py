"""Strategies. ``REGISTRY`` maps the built-in names to strategy classes; ``resolve`` also
finds a user's own strategy wherever ``--strategy`` / ``SOLBOT_STRATEGY`` names it:

* a built-in name (``tsmom``, the default ``DEFAULT_STRATEGY``; ``solbot``, ``trend``, …);
* a Python file, ``path/to/file.py`` (its one ``Strategy`` subclass) or
  ``path/to/file.py:ClassName``;
* an installed package's entry point in the group ``solbot.strategies``
  (``[project.entry-points."solbot.strategies"] mystrat = "mypkg.strat:MyStrategy"``).

A spec that cannot be loaded — no such file, a syntax error, no strategy class, two without a
name, a parameter the class does not take — raises ``StrategyError`` (a ``ValueError``: one
line, exit 2 from the CLI) naming the spec and what is wrong.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

from solbot.defaults import DEFAULT_STRATEGY
from solbot.domain.errors import ConfigurationError
from solbot.engine.params import check_params
from solbot.engine.strategy import Strategy
from solbot.strategies.donchian import DonchianBreakout
from solbot.strategies.grid import RangeGrid
from solbot.strategies.ladder import Ladder
from solbot.strategies.meanrev import MeanReversion
from solbot.strategies.switcher import RegimeSwitcher
from solbot.strategies.trend import TrendFollow
from solbot.strategies.tsmom import TimeSeriesMomentum

REGISTRY: dict[str, type[Strategy]] = {
    DonchianBreakout.name: DonchianBreakout,
    Ladder.name: Ladder,
    RangeGrid.name: RangeGrid,
    TrendFollow.name: TrendFollow,
    MeanReversion.name: MeanReversion,
    RegimeSwitcher.name: RegimeSwitcher,
    TimeSeriesMomentum.name: TimeSeriesMomentum,
}
ENTRY_POINTS = "solbot.strategies"
assert DEFAULT_STRATEGY in REGISTRY  # solbot.defaults names a built-in one

_loaded: dict[tuple[Path, int, int], ModuleType] = {}  # (file, mtime ns, size) -> module
_ran: dict[Path, str] = {}  # file -> sha256 of the source last loaded from it


class StrategyError(ConfigurationError):
    """A strategy spec that cannot be loaded or built (one line)."""


def create(spec: str, **params: object) -> Strategy:
    """The strategy ``spec`` names, built with ``params`` (declared ones converted to their
    types and checked against their ranges first)."""
    cls = resolve(spec)
    try:
        return cls(**check_params(cls.parameters, params))
    except StrategyError:
        raise
    except ValueError as exc:  # the class's own check of its parameters (it names them)
        raise StrategyError(str(exc)) from None
    except TypeError as exc:  # an unknown or missing parameter of a class that does not check
        raise StrategyError(f"strategy {spec!r}: bad parameters: {exc}") from None


def resolve(spec: str) -> type[Strategy]:
    """The strategy class ``spec`` names (see the module's docstring)."""
    if spec in REGISTRY:
        return REGISTRY[spec]
    path_part, _, class_name = spec.partition(":") if spec.count(":") == 1 else (spec, "", "")
    if path_part.endswith(".py"):
        return _from_file(Path(path_part), class_name or None, spec)
    found = _entry_point(spec)
    if found is not None:
        return found
    raise StrategyError(
        f"unknown strategy {spec!r}; choose from {', '.join(sorted(REGISTRY))}, a file "
        f"path/to/file.py[:Class], or an installed {ENTRY_POINTS!r} entry point"
    )


def source_file(spec: str) -> Path | None:
    """The file a file spec loads from (to carry into a release and hash), else None."""
    path_part = spec.partition(":")[0] if spec.count(":") == 1 else spec
    return Path(path_part).resolve() if path_part.endswith(".py") else None


def source_sha256(spec: str) -> str | None:
    """The sha256 of the source a file spec ran (the bytes last loaded from it in this
    process; the file's own before it is loaded), else None: what ran is what was tested."""
    path = source_file(spec)
    if path is None:
        return None
    if path in _ran:
        return _ran[path]
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _from_file(path: Path, class_name: str | None, spec: str) -> type[Strategy]:
    path = path.resolve()
    try:
        st = path.stat()
    except OSError:
        raise StrategyError(f"strategy file {str(path)!r} does not exist") from None
    key = (path, st.st_mtime_ns, st.st_size)
    module = _loaded.get(key)
    if module is None:
        module = _import_file(path)
        _loaded[key] = module
    mine = [
        c
        for c in vars(module).values()
        if inspect.isclass(c)
        and issubclass(c, Strategy)
        and c.__module__ == module.__name__
        and not inspect.isabstract(c)
    ]
    if class_name is not None:
        chosen = vars(module).get(class_name)
        if not (inspect.isclass(chosen) and issubclass(chosen, Strategy)):
            raise StrategyError(f"{spec}: {path.name} has no Strategy subclass {class_name!r}")
        return chosen
    if not mine:
        raise StrategyError(f"{spec}: {path.name} defines no Strategy subclass")
    if len(mine) > 1:
        names = ", ".join(sorted(c.__name__ for c in mine))
        raise StrategyError(f"{spec}: {path.name} defines {names}; name one as {spec}:Class")
    return mine[0]


def _import_file(path: Path) -> ModuleType:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    name = f"solbot_user_strategies.{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"strategy file {str(path)!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up
    try:
        source = path.read_bytes()  # run exactly the bytes hashed
        exec(compile(source, str(path), "exec"), module.__dict__)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise StrategyError(
            f"strategy file {path.name}: syntax error at line {exc.lineno}: {exc.msg}"
        ) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise StrategyError(
            f"strategy file {path.name}: importing it failed: {type(exc).__name__}: {exc}"
        ) from None
    _ran[path] = hashlib.sha256(source).hexdigest()
    return module


def _entry_point(name: str) -> type[Strategy] | None:
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        if ep.name != name:
            continue
        try:
            cls = ep.load()
        except Exception as exc:
            raise StrategyError(
                f"strategy {name!r} (entry point {ep.value}): loading failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
            raise StrategyError(f"strategy {name!r} (entry point {ep.value}) is not a Strategy")
        return cls
    return None
