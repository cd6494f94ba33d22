"""Readers for freqtrade JSON, Binance public-data kline CSV/zip and our Parquet files.

Binance public-data files carry millisecond open times up to 2024 and microsecond open
times from 2025-01 on; both are accepted (per value, so a mixed set also loads).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from solbot.data.bars import BarArrays, DataError, timeframe_name

_FREQTRADE_NAME = re.compile(r"^([A-Z0-9]+)_([A-Z0-9]+)-(\d+[smhdw])(?:-\w+)?\.json$", re.I)
_BINANCE_NAME = re.compile(r"^([A-Z0-9]+)-(\d+[smhdw])-", re.I)
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
_US_THRESHOLD = 10**14  # open times above this are microseconds (ms stays < 1e14 until 5138)


def _guess_timeframe(ts: np.ndarray) -> str:
    if len(ts) < 2:
        raise DataError("cannot infer the timeframe from fewer than two bars")
    d = np.diff(ts)
    d = d[d > 0]
    if not len(d):
        raise DataError("cannot infer the timeframe: all timestamps are equal")
    return timeframe_name(int(np.min(d)))


def _split_symbol(pair: str) -> str:
    pair = pair.upper()
    for q in _QUOTES:
        if pair.endswith(q) and len(pair) > len(q):
            return f"{pair[: -len(q)]}/{q}"
    return pair


def read_freqtrade_json(path: Path) -> BarArrays:
    try:
        rows = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except RecursionError:
        raise DataError(f"{path}: not [ms, o, h, l, c, v] rows (JSON nested too deeply)") from None
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{path}: expected a non-empty JSON list of [ms, o, h, l, c, v] rows")
    try:
        a = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: rows must be lists of 6 numbers") from exc
    if a.ndim != 2 or a.shape[1] != 6:
        raise DataError(f"{path}: rows must be lists of 6 numbers")
    m = _FREQTRADE_NAME.match(path.name)
    symbol = f"{m.group(1).upper()}/{m.group(2).upper()}" if m else "SOL/USDT"
    bars = _named(path, lambda: BarArrays.from_rows(a, symbol=symbol, timeframe="1h"))
    bars.timeframe = m.group(3) if m else _guess_timeframe(bars.ts)
    return bars


def _parse_binance_csv(text: str, source: str) -> list[list[float]]:
    rows: list[list[float]] = []
    for lineno, rec in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not rec:
            continue
        if lineno == 1 and not rec[0].strip().lstrip("-").isdigit():
            continue  # header line (Binance added headers to some files)
        if len(rec) < 6:
            raise DataError(f"{source}: line {lineno}: expected at least 6 columns, got {len(rec)}")
        try:
            t = int(rec[0])
            vals = [float(x) for x in rec[1:6]]
        except ValueError as exc:
            raise DataError(f"{source}: line {lineno}: not a number ({exc})") from exc
        if t > _US_THRESHOLD:
            t //= 1000
        rows.append([float(t), *vals])
    return rows


def read_binance_kline(path: Path) -> BarArrays:
    """A Binance public-data kline file (``SOLUSDT-1h-2024-01.csv`` or its ``.zip``)."""
    rows: list[list[float]] = []
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if not names:
                    raise DataError(f"{path}: zip holds no .csv file")
                for name in sorted(names):
                    text = zf.read(name).decode("utf-8")
                    rows.extend(_parse_binance_csv(text, f"{path}:{name}"))
        else:
            rows = _parse_binance_csv(path.read_text(encoding="utf-8"), str(path))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a valid zip file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    if not rows:
        raise DataError(f"{path}: no kline rows")
    m = _BINANCE_NAME.match(path.name)
    symbol = _split_symbol(m.group(1)) if m else "SOL/USDT"
    bars = _named(path, lambda: BarArrays.from_rows(np.array(rows), symbol=symbol))
    bars.timeframe = m.group(2) if m else _guess_timeframe(bars.ts)
    return bars


def _named(path: Path, make: Callable[[], BarArrays]) -> BarArrays:
    """``make()``, its data errors naming the file."""
    try:
        return make()
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def load_bars(path: str | Path) -> BarArrays:
    """Load any supported file by its extension (no validation; see ``validate``)."""
    from solbot.data.store import read_parquet

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory, expected a data file")
    suffix = p.suffix.lower()
    if suffix == ".json":
        return read_freqtrade_json(p)
    if suffix in (".csv", ".zip"):
        return read_binance_kline(p)
    if suffix == ".parquet":
        return read_parquet(p)
    raise DataError(
        f"{p}: unsupported format {suffix or '(none)'}; use .json, .csv, .zip or .parquet"
    )
