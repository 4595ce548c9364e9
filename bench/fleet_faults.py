"""Which emulated sites misbehave, and how (``bench/fleet_wp.py --faults``): a fleet has slow
sites, sites that never answer, sites that rate-limit and sites whose credentials were revoked."""

from __future__ import annotations

import random

FAULTS = ("slow", "hang", "rate_limited", "auth")


def parse_range(text: str) -> tuple[float, float] | None:
    if not text:
        return None
    low, high = (float(part) for part in text.split(","))
    return low, high


def parse_shares(text: str) -> dict[str, float]:
    shares = {}
    for item in filter(None, text.split(",")):
        name, _, share = item.partition("=")
        if name not in FAULTS:
            raise SystemExit(f"unknown fault {name!r} (one of {', '.join(FAULTS)})")
        shares[name] = float(share)
    return shares


def assign_faults(count: int, shares: dict[str, float], seed: int, first: int = 0) -> dict[int, str]:
    """Site number -> fault, each fault on round(share x count) distinct sites drawn with ``seed``."""
    numbers = list(range(first, count))
    random.Random(seed).shuffle(numbers)
    faults: dict[int, str] = {}
    eligible = len(numbers)
    for name, share in shares.items():
        for _ in range(round(share * eligible)):
            if numbers:
                faults[numbers.pop()] = name
    return faults
