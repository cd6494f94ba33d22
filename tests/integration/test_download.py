"""``solbot data download`` through the real ccxt binance client against a loopback stub."""

from __future__ import annotations

import numpy as np

from solbot.data.store import OhlcvStore
from solbot.data.synthetic import synthetic_market
from tests.integration.binance_stub import BinanceStub
from tests.integration.test_cli import solbot

T0 = 1_704_067_200_000  # 2024-01-01


def test_download_pages_through_ccxt_and_resumes(tmp_path):
    market, _ = synthetic_market(bars=2600, seed=9, start_ms=T0)
    with BinanceStub(market) as stub:
        first = solbot(
            "data",
            "download",
            "--exchange-url",
            stub.url,
            "--since",
            "2024-01-01",
            "--until",
            "2024-03-01",
            cwd=tmp_path,
        )
        assert first.returncode == 0, first.stderr
        pages = [q for p, q in stub.requests if p == "/api/v3/klines"]
        assert len(pages) >= 2  # 1,440 bars need more than one page
        assert all(q["symbol"] == ["SOLUSDT"] and q["interval"] == ["1h"] for q in pages)
        stored = OhlcvStore(tmp_path / "data").load("SOL/USDT", "1h")
        assert stored is not None and len(stored) == 60 * 24
        np.testing.assert_allclose(stored.close, np.round(market.close[:1440], 4))

        stub.requests.clear()
        again = solbot(
            "data",
            "download",
            "--exchange-url",
            stub.url,
            "--since",
            "2024-01-01",
            "--until",
            "2024-04-01",
            cwd=tmp_path,
        )
        assert again.returncode == 0, again.stderr
        starts = [int(q["startTime"][0]) for p, q in stub.requests if p == "/api/v3/klines"]
        assert starts and min(starts) == T0 + 1440 * 3_600_000  # resumed, nothing refetched
        stored = OhlcvStore(tmp_path / "data").load("SOL/USDT", "1h")
        assert len(stored) == 91 * 24
        assert np.all(np.diff(stored.ts) == 3_600_000)


def test_download_of_an_unknown_symbol_is_a_usage_error(tmp_path):
    market, _ = synthetic_market(bars=10, seed=9, start_ms=T0)
    with BinanceStub(market) as stub:
        r = solbot(
            "data",
            "download",
            "--exchange-url",
            stub.url,
            "--symbol",
            "DOGE/USDT",
            "--since",
            "2024-01-01",
            "--until",
            "2024-01-02",
            cwd=tmp_path,
        )
    assert r.returncode == 2 and "DOGE/USDT" in r.stderr


def test_download_when_exchange_unreachable_exits_4(tmp_path):
    r = solbot(
        "data",
        "download",
        "--exchange-url",
        "http://127.0.0.1:9",
        "--since",
        "2024-01-01",
        "--until",
        "2024-01-02",
        cwd=tmp_path,
    )
    assert r.returncode == 4, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
