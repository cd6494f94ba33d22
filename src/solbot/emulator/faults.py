"""Fault injection for the exchange emulator: which faults, how often, with what options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "418", "500", "timeout", "drop")


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """``"429=0.05,418=0.01,500=0.05,timeout=0.03,drop=0.03,latency=0.01,retry_after=1,
    ban=5,hang=3,partial=0.5,seed=1"`` — probabilities per request for the fault kinds."""

    rates: dict[str, float] = field(default_factory=dict)
    latency: float = 0.0
    retry_after: int = 1
    ban: float = 5.0
    hang: float = 3.0
    partial: float | None = None
    seed: int = 1

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        if not spec:
            return cls()
        rates: dict[str, float] = {}
        opts: dict[str, Any] = {}
        for part in spec.split(","):
            key, sep, value = part.strip().partition("=")
            if not sep:
                raise FaultSpecError(f"fault {part!r}: expected key=value")
            try:
                num = float(value)
            except ValueError:
                raise FaultSpecError(f"fault {key}: {value!r} is not a number") from None
            if key in FAULT_KINDS:
                if not 0 <= num <= 1:
                    raise FaultSpecError(f"fault {key}: probability must be in [0, 1]")
                rates[key] = num
            elif key in ("latency", "ban", "hang"):
                opts[key] = num
            elif key in ("retry_after", "seed"):
                opts[key] = int(num)
            elif key == "partial":
                if not 0 < num <= 1:
                    raise FaultSpecError("fault partial: fraction must be in (0, 1]")
                opts[key] = num
            else:
                raise FaultSpecError(
                    f"unknown fault {key!r} (kinds: {', '.join(FAULT_KINDS)}; "
                    "options: latency, retry_after, ban, hang, partial, seed)"
                )
        if sum(rates.values()) > 1:
            raise FaultSpecError("fault probabilities add up to more than 1")
        return cls(rates=rates, **opts)
