"""R8 calendar: tier windows (a month or a calendar quarter) and payout months, in Asia/Shanghai."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bot.clock import SHANGHAI

PERIOD_KINDS = ("month", "quarter")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def day_of(at: datetime) -> date:
    """The Asia/Shanghai day of an instant."""
    return at.astimezone(SHANGHAI).date()


# The store hands over UTC instants. Per UTC day, what takes one to Asia/Shanghai wall time (+8 h: a look-up
# and an addition instead of a zone conversion, 10,000s of times per summary); VARIES on a day the offset
# changes (it is the same at both ends of every other day: the zone never changed twice in a day).
SHIFTS: dict[date, timedelta] = {}
VARIES = timedelta.max


def shift_of(utc_day: date) -> timedelta:
    """`SHIFTS[utc_day]`, computed and remembered."""
    if len(SHIFTS) >= 100_000:
        SHIFTS.clear()
    first = datetime.combine(utc_day, time(0), UTC)
    start = first.astimezone(SHANGHAI).utcoffset()
    end = (first + timedelta(days=1, microseconds=-1)).astimezone(SHANGHAI).utcoffset()
    shift = SHIFTS[utc_day] = start if start is not None and start == end else VARIES
    return shift


def window_key(day: date, quarter: bool) -> int:
    """The tier window holding a day: months (or quarters) since year 0."""
    month = day.year * 12 + day.month - 1
    return month // 3 if quarter else month


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after the one holding `day` (negative goes back)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_month(text: str) -> date | None:
    """"YYYY-MM" → its first day; None when it is not a month."""
    m = _MONTH.fullmatch(text.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12:
        return None
    return date(int(m.group(1)), int(m.group(2)), 1)


def midnight(day: date) -> datetime:
    """00:00 of a day in Asia/Shanghai: where months and periods start."""
    return datetime.combine(day, time(0), SHANGHAI)


@dataclass(frozen=True, slots=True)
class Period:
    """A tier window: [start, end) in Asia/Shanghai days."""

    kind: str  # month | quarter
    start: date
    end: date  # the first day of the next period

    @property
    def label(self) -> str:
        """"2026-03" for a month, "2026-Q1" for a quarter."""
        if self.kind == "quarter":
            return f"{self.start.year:04d}-Q{(self.start.month - 1) // 3 + 1}"
        return month_label(self.start)

    def bounds(self) -> tuple[datetime, datetime]:
        return midnight(self.start), midnight(self.end)


def period_of(day: date, kind: str) -> Period:
    """The month or calendar quarter holding `day`."""
    if kind == "quarter":
        start = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        return Period(kind, start, add_months(start, 3))
    if kind == "month":
        start = day.replace(day=1)
        return Period(kind, start, add_months(start, 1))
    raise ValueError(f"unknown period kind {kind!r}")


def payout_date(month: date, payout_day: int) -> date:
    """R8: the day money earned in `month` is paid: `payout_day` of the next month (a calendar day)."""
    return add_months(month, 1).replace(day=payout_day)
