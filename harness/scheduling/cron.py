"""Crontab expressions, read with crontab's meaning, turned into APScheduler triggers.

APScheduler 3.x numbers weekdays from Monday (0 = Monday), and its `from_crontab` keeps that
numbering, so "0 6 * * 1" would fire on Tuesdays. We read the day-of-week field the way
crontab(5) does (0 or 7 = Sunday, 1 = Monday, names sun…sat) and hand APScheduler day
names, which mean the same in both.

Crontab fires when *either* day-of-month or day-of-week matches if both are restricted;
APScheduler needs both to match. Rather than fire on different days than the user
expects, such an expression is refused with a one-line explanation.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from ..errors import ConfigError, Position

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# crontab's numbering: index = crontab day number
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# APScheduler's order, used only to print the list in a stable Monday-first order
_APS_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TERM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")
EXAMPLE = 'e.g. "0 6 * * *" (every day at 06:00) or "0 6 * * 1-5" (weekdays)'


def _day_number(token: str, expr: str) -> int:
    if token.isdigit():
        n = int(token)
        if 0 <= n <= 7:
            return n
    elif token[:3] in _CRON_DAYS and len(token) == 3:
        return _CRON_DAYS.index(token)
    raise ValueError(f"day of week {token!r} in {expr!r} is not 0-7 (0 or 7 = Sunday) or sun…sat")


def crontab_days(field: str) -> set[int]:
    """The crontab days (0 = Sunday … 6 = Saturday) a day-of-week field selects."""
    days: set[int] = set()
    for term in field.lower().split(","):
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"day of week {term!r} is not valid (expected *, N, N-M, */S, names sun…sat)")
        step = int(m["step"]) if m["step"] else 1
        if step < 1:
            raise ValueError(f"step in {term!r} must be at least 1")
        spec = m["range"]
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec:
            a, b = spec.split("-", 1)
            first, last = _day_number(a, term), _day_number(b, term)
            if last < first:
                raise ValueError(f"day range {term!r} runs backwards (write it as two ranges, e.g. fri-sat,sun)")
        else:
            first = _day_number(spec, term)
            last = 6 if m["step"] else first  # "1/2" means from Monday on, every second day
        days.update(d % 7 for d in range(first, last + 1, step))
    return days


def resolve_timezone(name: str | None) -> tzinfo:
    """A zoneinfo timezone; None means the host's local zone."""
    if name is None:
        from tzlocal import get_localzone

        return get_localzone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (expected an IANA name such as Asia/Tokyo or UTC)") from None


def crontab_trigger(expr: str, timezone: str | tzinfo | None = None) -> CronTrigger:
    """A CronTrigger firing exactly when crontab would fire `expr` in `timezone`.

    Raises ValueError with a message fit for one line.
    """
    text = (expr or "").strip()
    text = MACROS.get(text.lower(), text)
    if text.startswith("@"):
        raise ValueError(f"schedule {expr!r}: unknown macro (expected one of {', '.join(MACROS)})")
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"schedule {expr!r} has {len(parts)} fields, expected 5 (minute hour day month weekday), {EXAMPLE}")
    minute, hour, day, month, dow = parts
    if day != "*" and dow != "*":
        raise ValueError(
            f"schedule {expr!r} restricts both day of month and day of week; crontab would fire on "
            "either, APScheduler only on both, so give one of them as *"
        )
    days = crontab_days(dow)
    aps_dow = "*" if len(days) == 7 else ",".join(d for d in _APS_ORDER if _CRON_DAYS.index(d) in days)
    tz = timezone if isinstance(timezone, tzinfo) else resolve_timezone(timezone)
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=aps_dow, timezone=tz)
    except ValueError as e:
        raise ValueError(f"schedule {expr!r}: {e}") from None


def trigger_for(expr: str, timezone: str | None, *, path: str = "", schedule_pos: Position | None = None,
                timezone_pos: Position | None = None) -> CronTrigger:
    """`crontab_trigger` for a suite file: a mistake is a ConfigError at its line and column."""
    try:
        tz = resolve_timezone(timezone)
    except ValueError as e:
        raise ConfigError(str(e), timezone_pos, path=path or None) from None
    try:
        return crontab_trigger(expr, tz)
    except ValueError as e:
        raise ConfigError(str(e), schedule_pos, path=path or None) from None


def next_fires(trigger: CronTrigger, count: int, now: datetime) -> list[datetime]:
    """The next `count` fire times after `now`, in the trigger's timezone."""
    out: list[datetime] = []
    previous = None
    t = now
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, t)
        if fire is None:
            break
        out.append(fire)
        previous, t = fire, fire + timedelta(microseconds=1)
    return out


def fires_between(trigger: CronTrigger, after: datetime, until: datetime, limit: int = 10_000) -> list[datetime]:
    """Fire times in (after, until], oldest first (at most `limit`, the newest kept)."""
    out: list[datetime] = []
    previous = None
    t = after + timedelta(microseconds=1)
    while True:
        fire = trigger.get_next_fire_time(previous, t)
        if fire is None or fire > until:
            return out
        out.append(fire)
        if len(out) > limit:
            del out[0]
        previous, t = fire, fire + timedelta(microseconds=1)
