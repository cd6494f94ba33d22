"""Local OHLCV store: one Parquet file per symbol and timeframe under ``<root>/ohlcv``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solbot.data.bars import BarArrays, DataError

SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
    ]
)


def write_parquet(bars: BarArrays, path: Path) -> None:
    table = pa.table(
        [
            pa.array(bars.ts, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            bars.open,
            bars.high,
            bars.low,
            bars.close,
            bars.volume,
        ],
        schema=SCHEMA.with_metadata(
            {"symbol": bars.symbol, "timeframe": bars.timeframe, **bars.meta}
        ),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)  # atomic: a crash never leaves a half-written store file


def read_parquet(path: Path) -> BarArrays:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in SCHEMA.names if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    cols = [
        np.ascontiguousarray(table.column(c).to_numpy(), dtype=np.float64)
        for c in ("open", "high", "low", "close", "volume")
    ]
    o, h, lo, c, v = cols
    return BarArrays(
        np.asarray(ts, dtype=np.int64),
        o,
        h,
        lo,
        c,
        v,
        symbol=meta.pop("symbol", "SOL/USDT"),
        timeframe=meta.pop("timeframe", "1h"),
        meta={k: v for k, v in meta.items() if not k.startswith("ARROW")},
    )


def merge(old: BarArrays, new: BarArrays) -> BarArrays:
    """Union by timestamp; on conflict the newer download wins."""
    ts = np.concatenate([old.ts, new.ts])
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[:-1] = ts[1:] != ts[:-1]  # keep the last of equal timestamps (the new one)

    def col(name: str) -> np.ndarray:
        return np.concatenate([getattr(old, name), getattr(new, name)])[order][keep]

    return BarArrays(
        ts[keep],
        col("open"),
        col("high"),
        col("low"),
        col("close"),
        col("volume"),
        old.symbol,
        old.timeframe,
        {**old.meta, **new.meta},
    )


@dataclass(frozen=True, slots=True)
class StoreEntry:
    symbol: str
    timeframe: str
    rows: int
    first_ts: int
    last_ts: int
    path: Path


class OhlcvStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "ohlcv"

    def path(self, symbol: str, timeframe: str) -> Path:
        return self.root / f"{symbol.replace('/', '_')}-{timeframe}.parquet"

    def load(self, symbol: str, timeframe: str) -> BarArrays | None:
        p = self.path(symbol, timeframe)
        return read_parquet(p) if p.exists() else None

    def save(self, bars: BarArrays, replace: bool = False) -> BarArrays:
        existing = None if replace else self.load(bars.symbol, bars.timeframe)
        out = merge(existing, bars) if existing is not None else bars
        write_parquet(out, self.path(bars.symbol, bars.timeframe))
        return out

    def entries(self) -> list[StoreEntry]:
        out = []
        for p in sorted(self.root.glob("*.parquet")):
            meta = pq.read_schema(p).metadata or {}
            pf = pq.ParquetFile(p)
            rows = pf.metadata.num_rows
            ts = pq.read_table(p, columns=["ts"]).column("ts").cast(pa.int64()).to_numpy()
            out.append(
                StoreEntry(
                    meta.get(b"symbol", b"?").decode(),
                    meta.get(b"timeframe", b"?").decode(),
                    rows,
                    int(ts[0]) if rows else 0,
                    int(ts[-1]) if rows else 0,
                    p,
                )
            )
        return out
