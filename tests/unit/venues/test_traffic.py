"""The traffic gate's policy with hand-set clocks and headers (``rest-api.md`` "IP Limits")."""

from __future__ import annotations

import itertools

from solbot.venues.traffic import TrafficGate, request_weight


class Clock:
    def __init__(self) -> None:
        self.mono, self.wall = 100.0, 1_699_999_990.0  # 10 s into a minute

    def m(self) -> float:
        return self.mono

    def w(self) -> float:
        return self.wall


def gate(limit: int = 1000) -> tuple[TrafficGate, Clock]:
    c = Clock()
    return TrafficGate(limit=limit, clock=c.m, wall=c.w), c


def test_weights_are_the_documented_ones_per_endpoint() -> None:
    assert request_weight("GET", "https://api.binance.com/api/v3/myTrades?symbol=SOLUSDT") == 20
    assert request_weight("GET", "https://x/api/v3/myTrades?symbol=SOLUSDT&orderId=5") == 5
    assert request_weight("GET", "https://x/api/v3/openOrders?symbol=SOLUSDT") == 6
    assert request_weight("GET", "https://x/api/v3/openOrders") == 80
    assert request_weight("POST", "https://x/api/v3/orderList/oco") == 1
    assert request_weight("GET", "https://x/api/v3/account") == 20


def test_a_429_holds_every_request_reads_and_orders_alike_until_its_retry_after() -> None:
    g, c = gate()
    g.observe(429, {"Retry-After": "3", "X-MBX-USED-WEIGHT-1M": "17"})
    assert g.delay(1, urgent=True) == 3.0 and g.delay(20, urgent=False) == 3.0
    c.mono += 3.0
    assert g.delay(1, urgent=True) == 0.0


def test_a_418_is_a_ban_of_at_least_five_seconds_and_is_reported() -> None:
    seen: list[tuple[str, float]] = []
    g, c = gate()
    g.on_limit = lambda kind, s: seen.append((kind, s))
    g.observe(418, {"retry-after": "120"})
    assert seen == [("banned", 120.0)] and g.ban_left() == 120.0
    c.mono += 120.0
    g.observe(418, {})
    assert seen[-1] == ("banned", 5.0) and g.ban_left() == 5.0


def test_requests_in_flight_together_answering_one_ban_report_it_once() -> None:
    # the market feed (a worker thread) and the venue's poll both hit the same ban: counted
    # twice, two bans became three and trading stayed halted for an operator
    seen: list[tuple[str, float]] = []
    g, c = gate()
    g.on_limit = lambda kind, s: seen.append((kind, s))
    g.observe(418, {"retry-after": "4"})
    g.observe(418, {"retry-after": "4"})
    g.observe(429, {"retry-after": "1"})
    g.observe(429, {"retry-after": "1"})
    assert seen == [("banned", 5.0), ("rate_limited", 1.0)]
    assert g.counts == {"banned": 2, "rate_limited": 2}
    c.mono += 5.0
    g.observe(418, {"retry-after": "4"})  # a new ban
    assert seen[-1] == ("banned", 5.0) and len(seen) == 3


def test_polls_wait_for_the_next_minute_near_the_budget_while_orders_still_go() -> None:
    g, c = gate(limit=1000)  # polls stop at 600, orders and cancels at 900
    g.observe(200, {"x-mbx-used-weight-1m": "590"})
    assert g.delay(20, urgent=False) == 50.0  # 10 s into the minute: 50 s to the next
    assert g.delay(1, urgent=True) == 0.0
    c.wall += 50.0  # the exchange's minute rolls over: its count starts again
    assert g.delay(20, urgent=False) == 0.0 and g.used == 20


def test_the_minute_is_the_exchanges_by_the_synced_clock_offset() -> None:
    g, _ = gate(limit=1000)
    g.offset = 49.0  # the exchange's clock is 49 s ahead of ours: its minute has 59 s gone
    g.observe(200, {"x-mbx-used-weight-1m": "590"})
    assert g.delay(20, urgent=False) == 1.0


def test_a_bots_share_of_the_hosts_budget_scales_its_limit() -> None:
    g, _ = gate(limit=1000)
    g.share = 0.5  # staging and production on one IP
    g.observe(200, {"x-mbx-used-weight-1m": "295"})
    assert g.delay(6, urgent=False) > 0 and g.delay(6, urgent=True) == 0.0


def test_exchange_info_rate_limits_set_the_weight_limit() -> None:
    g, _ = gate()
    g.set_limits(
        [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
        ]
    )
    assert g.limit == 6000


def test_polls_are_paced_across_the_minute_not_spent_in_one_burst() -> None:
    g, c = gate(limit=1000)  # polls: 600 a minute; 10 s in, (10 + 10 * 5/6) / 60 of it: 183
    g.observe(200, {"x-mbx-used-weight-1m": "160"})
    assert g.delay(20, urgent=False) == 0.0  # 180 used: on pace
    assert abs(g.delay(20, urgent=False) - 2.0) < 1e-9  # 200 would be due at 12 s
    assert g.delay(20, urgent=True) == 0.0  # orders are not paced (but count: 220 used)
    c.wall += 7.0  # at 17 s, 240 is on pace (due at 16.8 s)
    assert g.delay(20, urgent=False) == 0.0


def test_a_client_polling_all_the_time_is_never_starved_before_the_minutes_end() -> None:
    # the soak's bot polls every 0.1 s (26 weight a sync): with the old pace it had its share
    # spent by second 50 and sent nothing for 10 s; a 4 s ban there went unseen
    g, c = gate(limit=6000)  # Binance spot's: polls get 3,600 a minute
    c.wall = 1_700_000_040.0  # a minute's start (1_700_000_040 = 28,333,334 minutes)
    sent: list[float] = []
    t = 0.0
    while t < 60.0:
        c.wall = 1_700_000_040.0 + t
        if g.delay(26, urgent=False) == 0.0:
            sent.append(t)
        t = round(t + 0.1, 1)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert g.used <= 3600 and len(sent) >= 100
    assert max(gaps) < 1.0 and 60.0 - sent[-1] < 1.0, (max(gaps), sent[-1])


def test_inside_urgent_reads_go_by_the_orders_share() -> None:
    from solbot.venues.traffic import urgent

    g, _ = gate(limit=1000)
    g.observe(200, {"x-mbx-used-weight-1m": "700"})
    assert g.delay(6, urgent=False) > 0
    with urgent():  # the kill switch's verification, a stop's cancel, an unknown outcome
        assert g.delay(6, urgent=False) == 0.0


class FakeClient:
    """ccxt's call path in small: fetch2 signs (after its own throttling), then fetch sends."""

    def __init__(self, gate_during_throttle: TrafficGate | None = None) -> None:
        self.sent: list[str] = []
        self.gate_during_throttle = gate_during_throttle

    def sign(self, path, api="public", method="GET", params=None):  # type: ignore[no-untyped-def]
        return {"url": f"https://api.binance.com/api/v3/{path}", "method": method}

    async def fetch2(self, path, api="public", method="GET", params=None, config=None):  # type: ignore[no-untyped-def]
        if self.gate_during_throttle is not None:  # a 429 arrives while this one is throttled
            self.gate_during_throttle.observe(429, {"Retry-After": "5"})
        req = self.sign(path, api, method, params)
        return await self.fetch(req["url"], method)

    async def fetch(self, url, method="GET", headers=None, body=None):  # type: ignore[no-untyped-def]
        self.sent.append(url)
        return {}

    def on_rest_response(self, code, reason, url, method, headers, body, *rest):  # type: ignore[no-untyped-def]
        return body


def test_a_429_that_arrives_after_the_gates_check_still_stops_the_send() -> None:
    import asyncio

    import pytest

    from solbot.venues.traffic import TrafficHeld

    g, _ = gate()
    client = FakeClient(gate_during_throttle=g)
    g.install(client)
    with pytest.raises(TrafficHeld):
        asyncio.run(client.fetch2("openOrders"))
    assert client.sent == []  # nothing went out inside the Retry-After


def test_an_answer_from_the_minute_before_read_after_the_rollover_does_not_fill_this_one() -> None:
    # the fault soak's bot sent nothing for 64 s: a poll sent at 59.9 s was answered with that
    # minute's 3,600 and read at 60.1 s, which the gate took for the new minute's use
    g, c = gate(limit=6000)
    c.wall = 1_700_000_039.9  # the last 0.1 s of a minute
    sent = g.exchange_minute()
    c.wall += 0.2  # the answer is read in the next minute
    g.observe(200, {"x-mbx-used-weight-1m": "3600"}, sent_minute=sent)
    assert g.used == 0 and g.delay(26, urgent=False) == 0.0
    g.observe(200, {"x-mbx-used-weight-1m": "3600"}, sent_minute=g.exchange_minute())
    assert g.used == 3600  # an answer of this minute still counts


def test_a_clock_sync_held_at_the_gate_times_its_round_trip_from_the_send(monkeypatch) -> None:
    """The soak saw every other minute silent: a resync waited 20 s at the gate, the
    midpoint of ask-to-answer put the exchange's clock 10 s ahead, and each new minute's
    budget was taken from the old minute's answers. The round trip now starts at the send."""
    import asyncio

    from solbot.venues import traffic
    from solbot.venues.clock import ExchangeClock
    from solbot.venues.live import VenueHealth

    now = [1_800_000_000.0]
    gate = TrafficGate(clock=lambda: now[0], wall=lambda: now[0])

    async def no_wait(seconds: float) -> None:
        now[0] += seconds  # the gate's wait passes on our fake clock

    monkeypatch.setattr(traffic.asyncio, "sleep", no_wait)

    class Binance:  # a ccxt client's shape, as the gate wraps it
        def __init__(self) -> None:
            self.options: dict[str, object] = {}

        def sign(self, path, api, method, params):  # type: ignore[no-untyped-def]
            return {"url": "https://api.binance.com/api/v3/time"}

        async def fetch2(self, path, api="public", method="GET", params=None):  # type: ignore[no-untyped-def]
            return await self.fetch("https://api.binance.com/api/v3/time", method)

        async def fetch(self, url, method="GET", headers=None, body=None):  # type: ignore[no-untyped-def]
            now[0] += 0.1  # 0.1 s each way
            server = now[0] * 1000 + 3000  # the exchange's clock: 3 s ahead of ours
            now[0] += 0.1
            self.on_rest_response(200, "OK", url, method, {}, "")
            return {"serverTime": server}

        def on_rest_response(self, *args):  # type: ignore[no-untyped-def]
            return None

        async def fetch_time(self) -> float:
            return float((await self.fetch2("time"))["serverTime"])

    ex = Binance()
    gate.install(ex)
    gate.hold_until = now[0] + 20.0  # a 429's Retry-After: the resync waits 20 s
    venue = ExchangeClock()
    venue.ex, venue.health = ex, VenueHealth(traffic=gate)  # type: ignore[attr-defined]
    offset = asyncio.run(venue.sync_clock())
    assert abs(offset - 3000) < 1, offset  # was 13,100 ms
    assert abs(gate.offset - 3.0) < 0.001


def test_an_answer_sent_just_after_our_rollover_may_be_the_minute_befores() -> None:
    """The 300 s soak, after the clock fix: our estimate of the exchange's clock was 8 ms
    ahead, a poll sent 3 ms "into" the new minute reached the exchange in the old one, and
    its 3,606 held every poll for that whole minute (every other minute silent)."""
    g, c = gate(limit=6000)
    c.wall = 1_700_000_040.003  # 3 ms into a minute, by our estimate
    sent_at = g.exchange_time()
    g.observe(200, {"x-mbx-used-weight-1m": "3606"}, sent_at=sent_at)
    assert g.used == 0 and g.delay(26, urgent=False) == 0.0  # our own count goes on
    c.wall += 5.0
    g.observe(200, {"x-mbx-used-weight-1m": "3606"}, sent_at=g.exchange_time())
    assert g.used == 3606  # well inside the minute: the exchange's count is taken
