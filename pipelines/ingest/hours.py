"""Calling hours: when a recipient may be called, in their own timezone(s), and how to tell each provider.

A campaign has one local window ("08:00-21:00", end exclusive) and a set of days; a state's
rule (pipelines.ingest.states) may narrow both for its residents and take out its legal
holidays. A chunk's recipients share one zone set and one state; they may be called at an
instant only when it falls inside the window on an allowed day that is not a holiday, in
*every* zone of the set (+1 709 is both Halifax and St John's).

The providers cannot be told that directly:
- magpipe compares one daily window and a set of weekdays with its own clock (the account's
  timezone, configured; default UTC). We compute, minute by minute over the next
  HORIZON_DAYS (so a DST change in that span is respected), which account-clock
  (weekday, minute) slots are allowed on every occurrence, then pick the longest single
  daily window × days that fits inside them. A local window that wraps past midnight on the
  account clock keeps its longer part: calls are lost, never made at the wrong hour.
- batchcall has no window, only a start instant (trigger_timestamp) and a timezone label:
  the batch is triggered at the first minute the window is open in every zone with at
  least MIN_RUN_MINUTES of it left. It cannot be stopped at the window's end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pipelines.errors import UsageError
from schemas.provider import AccountWindow

if TYPE_CHECKING:  # numpy is imported by the functions that use it: `submit` and `sync` start without it
    import numpy as np

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = Monday-based weekday
LEGAL_START, LEGAL_END = 8 * 60, 21 * 60  # 08:00–21:00 at the called party's location (US TCPA)
HORIZON_DAYS = 14
MIN_RUN_MINUTES = 60
SAMPLE_MINUTES = 15  # a zone's UTC offset is read this often; no zone changes it twice within
THURSDAY = 3  # 1970-01-01, minute 0 of Unix time


@dataclass(frozen=True)
class CallingHours:
    """A local daily window [start, end) in minutes after midnight, on some weekdays (0 = Monday)."""

    start: int = LEGAL_START
    end: int = LEGAL_END
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    holidays: str = ""  # days with no calls, comma-separated: "US-LA" (that state's legal holidays) and/or ISO dates

    @classmethod
    def parse(cls, window: str | None = None, days: str | None = None, holidays: str | None = None) -> CallingHours:
        start, end = (LEGAL_START, LEGAL_END) if not window else parse_window(window)
        return cls(start, end, parse_days(days) if days else tuple(range(7)), holidays or "")

    def narrowed(self, window: tuple[int, int] | None, days: tuple[int, ...] | None, holidays: str) -> CallingHours:
        """These hours within a rule's: the later start, the earlier end, the days both allow, the holidays of both.

        An empty result (start ≥ end, no day) is kept as such: it never opens (never_callable)."""
        start, end = (max(self.start, window[0]), min(self.end, window[1])) if window else (self.start, self.end)
        allowed = tuple(day for day in self.days if days is None or day in days)
        joined = ",".join(part for part in (self.holidays, holidays) if part)
        return CallingHours(start, max(start, end), allowed, joined)

    @property
    def window_text(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @property
    def days_text(self) -> str:
        if self.days == tuple(range(7)):
            return "mon-sun"
        if self.days == tuple(range(5)):
            return "mon-fri"
        if self.days == tuple(range(6)):
            return "mon-sat"
        return ",".join(DAY_NAMES[d] for d in self.days) or "no day"

    @property
    def within_legal(self) -> bool:
        return self.start >= LEGAL_START and self.end <= LEGAL_END

    def check(self, allow_any_hour: bool) -> None:
        """Refuse a window reaching outside 08:00–21:00 unless the operator said so."""
        if not self.within_legal and not allow_any_hour:
            raise UsageError(
                f"calling window {self.window_text} reaches outside 08:00-21:00 recipient time; "
                "use --allow-any-hour if you really may call then"
            )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_window(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        raise UsageError(f"calling window {text!r} is not HH:MM-HH:MM (for example 09:00-17:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or end <= start:
        raise UsageError(f"calling window {text!r}: need start < end within one day (00:00-24:00)")
    return start, end


def parse_days(text: str) -> tuple[int, ...]:
    """'mon-fri', 'mon,wed,fri', 'sat-sun', 'daily' / 'all' → Monday-based weekday numbers."""
    words = text.strip().casefold()
    if words in ("daily", "all", "every", "everyday"):
        return tuple(range(7))
    chosen: set[int] = set()
    for part in words.split(","):
        ends = [p.strip()[:3] for p in part.split("-")]
        if not all(e in DAY_NAMES for e in ends) or len(ends) > 2:
            raise UsageError(f"calling days {text!r}: use day names like mon-fri or mon,wed,fri")
        first, last = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
        chosen.update(span)
    return tuple(sorted(chosen))


def chunk_hours(chunk) -> CallingHours:
    """The hours a planned chunk (schemas.ledger.ChunkRecord) was given: its window, days and holidays."""
    return CallingHours.parse(chunk.window, chunk.days, chunk.holidays)


@lru_cache(maxsize=64)
def holiday_days(spec: str, first_year: int, last_year: int) -> frozenset[int]:
    """The days of a holidays spec within these years, as day numbers since 1970-01-01 (local dates)."""
    epoch = date(1970, 1, 1).toordinal()
    days: set[int] = set()
    for item in filter(None, (part.strip() for part in spec.split(","))):
        if item.startswith("US-"):
            import holidays as calendars  # only imports whose states have holidays load it

            days.update(day.toordinal() - epoch for day in calendars.US(subdiv=item[3:], years=range(first_year, last_year + 1)))
        else:
            days.add(date.fromisoformat(item).toordinal() - epoch)
    return frozenset(days)


def _holidays_in(hours: CallingHours, first_minute: int, last_minute: int) -> frozenset[int]:
    """The holidays of `hours` around these Unix minutes (a year either side of their UTC years)."""
    first = datetime.fromtimestamp(first_minute * 60, UTC).year - 1
    last = datetime.fromtimestamp(last_minute * 60, UTC).year + 1
    return holiday_days(hours.holidays, first, last)


# ------------------------------------------------------------------ the minute grid


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_minutes(zone: str, start: int, count: int) -> np.ndarray:
    """Unix minutes start … start+count-1 (UTC) → the same instants as local wall-clock minutes since 1970-01-01 in `zone`.

    The offset is the zone's at each instant: it is read every SAMPLE_MINUTES, and where two
    readings differ the minute of the change is found by bisection, so DST changes land on
    the minute they happen (offsets and their changes fall on whole minutes since 1900).
    """
    import numpy as np

    tz = _zone(zone)

    def offset(minute: int) -> int:
        return int(datetime.fromtimestamp(minute * 60, tz).utcoffset().total_seconds()) // 60

    samples = list(range(start, start + count, SAMPLE_MINUTES)) + [start + count - 1]
    offsets = [offset(minute) for minute in samples]
    changes, values = [start], [offsets[0]]
    for (before, after), (old, new) in zip(zip(samples, samples[1:]), zip(offsets, offsets[1:])):
        if old != new:
            low, high = before, after  # offset(low) == old, offset(high) == new
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == old else (low, middle)
            changes.append(high)
            values.append(new)
    lengths = np.diff(np.array([*changes, start + count]))
    return np.arange(start, start + count, dtype=np.int64) + np.repeat(np.array(values, dtype=np.int64), lengths)


def allowed_minutes(zones: str, hours: CallingHours, start_minute: int, count: int) -> np.ndarray:
    """For each Unix minute from start_minute: may the recipients of this zone set be called?"""
    import numpy as np

    ok = np.ones(count, dtype=bool)
    days = np.zeros(7, dtype=bool)
    days[list(hours.days)] = True
    for zone in zones.split("|"):
        local = _local_minutes(zone, start_minute, count)
        of_day = local % 1440
        weekday = (local // 1440 + THURSDAY) % 7
        ok &= (of_day >= hours.start) & (of_day < hours.end) & days[weekday]
        if hours.holidays:
            holidays = _holidays_in(hours, start_minute, start_minute + count)
            ok &= ~np.isin(local // 1440, np.fromiter(holidays, dtype=np.int64, count=len(holidays)))
    return ok


def _minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


# ------------------------------------------------------------------ batchcall: when to trigger


def next_open(zones: str, hours: CallingHours, now: datetime) -> datetime | None:
    """The first moment ≥ now when the window is open in every zone with enough of it left; None if never."""
    start = _minute(now)
    first = _first_open(zones, hours, start)
    if first is None:
        return None
    return now if first == 0 else datetime.fromtimestamp((start + first) * 60, UTC)


@lru_cache(maxsize=4096)
def _first_open(zones: str, hours: CallingHours, start: int) -> int | None:
    """Minutes from `start` to the first open minute with enough of the window left (0: now); cached per minute, so
    the chunks of one zone set submitted within a minute share one grid."""
    ok = allowed_minutes(zones, hours, start, (HORIZON_DAYS + 1) * 1440)
    runs = _runs(ok)
    if not runs:
        return None
    need = min(MIN_RUN_MINUTES, max(length for _, length in runs))
    return next((first for first, length in runs if length >= need), None)


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """(start index, length) of each run of True."""
    import numpy as np

    padded = np.concatenate([[False], ok, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


# ------------------------------------------------------------------ one window on the account clock (magpipe)


def first_in_window(window: AccountWindow, account_timezone: str, moment: datetime) -> datetime | None:
    """The first minute at or after `moment` inside the provider's window on the account clock (None: not within a
    week) — when a provider that dials only inside that window begins."""
    zone = ZoneInfo(account_timezone)
    local = moment.astimezone(zone)
    first, last = (time.fromisoformat(window.start_time), time.fromisoformat(window.end_time))
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if (day.isoweekday() % 7) not in window.days:
            continue
        opens = datetime.combine(day, first, zone)
        closes = datetime.combine(day, last, zone) + timedelta(seconds=59)
        candidate = max(opens, local)
        if candidate <= closes:
            return candidate.astimezone(UTC)
    return None


def account_window(zones: str, hours: CallingHours, account_timezone: str, now: datetime) -> AccountWindow | None:
    """The longest daily window × weekdays on the account clock inside the allowed hours; None if none."""
    return _account_window(zones, hours, account_timezone, _minute(now) - _minute(now) % 1440)


@lru_cache(maxsize=1024)
def _account_window(zones: str, hours: CallingHours, account_timezone: str, start: int) -> AccountWindow | None:
    """account_window for the 14 days from the UTC midnight `start` (cached: one grid per zone set and day)."""
    import numpy as np

    count = HORIZON_DAYS * 1440
    ok = allowed_minutes(zones, hours, start, count)
    local = _local_minutes(account_timezone, start, count)
    grid = np.ones((7, 1440), dtype=bool)
    weekday, of_day = (local // 1440 + THURSDAY) % 7, local % 1440
    grid[weekday[~ok], of_day[~ok]] = False
    best = _best_window(grid)
    if best is None:
        return None
    first, last, days = best
    return AccountWindow(_hhmm(first), _hhmm(last), tuple(sorted((d + 1) % 7 for d in days)))


def _best_window(grid: np.ndarray) -> tuple[int, int, list[int]] | None:
    """(first minute, last minute, weekdays) maximising days × minutes with every slot allowed."""
    import numpy as np

    sums = np.concatenate([np.zeros((7, 1), dtype=np.int32), np.cumsum(grid, axis=1, dtype=np.int32)], axis=1)
    runs = [_runs(grid[d]) for d in range(7)]
    starts = sorted({a for day in runs for a, _ in day})
    ends = sorted({a + n - 1 for day in runs for a, n in day})
    best, best_score = None, 0
    for first in starts:
        for last in ends:
            if last < first:
                continue
            width = last - first + 1
            days = [d for d in range(7) if sums[d, last + 1] - sums[d, first] == width]
            score = width * len(days)
            if score > best_score:
                best, best_score = (first, last, days), score
    return best


def timezone_label(zones: str) -> str:
    """The one IANA name a provider field can hold: the zone set's first member."""
    return zones.split("|")[0]


def closed_zone(zone_sets, hours: CallingHours, now: datetime | None = None) -> str | None:
    """The first zone set in which the window never opens in all zones at once, or None."""
    moment = now or datetime.now(UTC)
    return next((zones for zones in zone_sets if not _opens_soon(zones, hours, moment) and next_open(zones, hours, moment) is None), None)


def _opens_soon(zones: str, hours: CallingHours, now: datetime) -> bool:
    """A quick proof that next_open finds a minute: a window start of one of the zones, on one of the
    coming days, that allowed_minutes would allow in every zone of the set.

    Each candidate minute is checked exactly as the minute grid would check it; False only
    means no proof was found, and the grid decides. A proof takes about 20 µs, the grid ~2 ms
    per zone set (an import meets dozens).
    """
    first = _minute(now)
    last = first + (HORIZON_DAYS + 1) * 1440
    members = zones.split("|")
    for zone in members:
        today = now.astimezone(_zone(zone))
        for day in range(HORIZON_DAYS + 1):
            wall = (today + timedelta(days=day)).replace(hour=hours.start // 60, minute=hours.start % 60, second=0, microsecond=0)
            minute = _minute(wall)
            if first <= minute < last and all(_allowed_at(member, hours, minute) for member in members):
                return True
    return False


def _allowed_at(zone: str, hours: CallingHours, minute: int) -> bool:
    """allowed_minutes for one zone and one Unix minute."""
    local = datetime.fromtimestamp(minute * 60, _zone(zone))
    if hours.holidays and local.date().toordinal() - date(1970, 1, 1).toordinal() in _holidays_in(hours, minute, minute):
        return False
    return hours.start <= local.hour * 60 + local.minute < hours.end and local.weekday() in hours.days
