"""The health of one exchange connection, shared by the venues of several symbols on one
client: one IP (its traffic gate), one clock, the counts the metrics show."""

from __future__ import annotations

from dataclasses import dataclass, field

from solbot.venues.traffic import TrafficGate


@dataclass(slots=True)
class VenueHealth:
    """Shared by the venues of several symbols on one client: one IP, one clock."""

    traffic: TrafficGate = field(default_factory=TrafficGate)
    errors: dict[str, int] = field(default_factory=dict)
    unknown_outcomes: int = 0
    resends: int = 0
    lookups_found: int = 0
    not_resent: int = 0  # market orders whose outcome stayed unknown: left to reconciliation
    clock_offset_ms: float = 0.0  # the exchange's clock minus ours, at the last sync
    clock_synced: float = 0.0  # monotonic time of the last sync
    clock_strikes: int = 0
    clock_problem: str | None = None
    ban_reported: bool = False  # a 418 was alarmed: its end is reported once
    stream_trades: int = 0  # trades booked from the user data stream before any poll
