"""The restaurant's booking book: availability, new bookings and cancellations, in memory.

Each call gets a fresh book (same starting bookings), so calls never influence one
another and a run is reproducible. Availability is what makes the agent's answers
checkable: a fully booked time must be refused with an alternative, and an agent that
"confirms" it anyway (the hallucination fault) leaves an overbooking in the side effects.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from .knowledge import Facts

__all__ = ["Booking", "Backend", "parse_blocked", "WEEKDAYS"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_BLOCKED = re.compile(r"^\s*(?P<day>\d{4}-\d{2}-\d{2}|mon|tue|wed|thu|fri|sat|sun)\s+(?P<time>\d{1,2}:\d{2})\s*$")


@dataclass
class Booking:
    id: str
    date: str  # ISO
    time: str  # HH:MM
    party_size: int
    name: str
    phone: str | None = None
    cancelled: bool = False

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("cancelled")
        if d["phone"] is None:
            d.pop("phone")
        return d


def parse_blocked(entry: str) -> tuple[str, str]:
    """'sat 19:00' or '2026-11-28 19:00' -> (day, 'HH:MM'); ValueError otherwise."""
    m = _BLOCKED.match(entry.lower())
    if not m:
        raise ValueError(f"expected 'sat 19:00' or '2026-11-28 19:00', got {entry!r}")
    hour, minute = (int(x) for x in m["time"].split(":"))
    if hour > 23 or minute > 59:
        raise ValueError(f"not a time of day: {m['time']!r} in {entry!r}")
    return m["day"], f"{hour:02d}:{minute:02d}"


class Backend:
    def __init__(self, facts: Facts, today: date, fully_booked: list[str], id_rng: random.Random):
        self.facts = facts
        self.today = today
        self._blocked = {parse_blocked(e) for e in fully_booked}
        self._id_rng = id_rng
        self.bookings: dict[str, Booking] = {}
        # Callers in the golden set cancel these; dates follow `today` so they stay in the future.
        for bid, days, at, size, name in (
            ("B1001", 2, "19:00", 4, "山田"),
            ("B1002", 3, "18:30", 2, "Smith"),
            ("B1003", 8, "12:00", 3, "佐藤"),
            ("B1004", 9, "20:00", 5, "Johnson"),
        ):
            self.bookings[bid] = Booking(bid, self._open_day(days).isoformat(), at, size, name)

    def _open_day(self, days: int) -> date:
        d = self.today + timedelta(days=days)
        while self.is_closed(d):
            d += timedelta(days=1)
        return d

    # --- rules ------------------------------------------------------------------------
    def is_closed(self, d: date) -> bool:
        return d.weekday() in self.facts.closed_weekdays

    def in_hours(self, at: str) -> bool:
        t = time.fromisoformat(at)
        return self.facts.opens <= t <= self.facts.last_seating

    def is_free(self, d: date, at: str) -> bool:
        return (d.isoformat(), at) not in self._blocked and (WEEKDAYS[d.weekday()], at) not in self._blocked

    def alternative(self, d: date, at: str) -> str | None:
        """The nearest free seating time on the same day, later times first on a tie."""
        step = timedelta(minutes=self.facts.seating_step_min)
        base = datetime.combine(d, time.fromisoformat(at))
        for k in range(1, 24):
            for cand in (base + k * step, base - k * step):
                hhmm = cand.strftime("%H:%M")
                if cand.date() == d and self.in_hours(hhmm) and self.is_free(d, hhmm):
                    return hhmm
        return None

    # --- changes ----------------------------------------------------------------------
    def book(self, d: date, at: str, party_size: int, name: str, phone: str | None = None) -> Booking:
        """Record a booking. Availability is the caller's job (an agent that skips it overbooks)."""
        bid = self._new_id()
        b = Booking(bid, d.isoformat(), at, party_size, name, phone)
        self.bookings[bid] = b
        return b

    def find(self, booking_id: str) -> Booking | None:
        b = self.bookings.get(booking_id.upper())
        return b if b is not None and not b.cancelled else None

    def cancel(self, booking_id: str) -> Booking | None:
        b = self.find(booking_id)
        if b is not None:
            b.cancelled = True
        return b

    def _new_id(self) -> str:
        while True:
            bid = f"B{self._id_rng.randint(2000, 9999)}"
            if bid not in self.bookings:
                return bid
