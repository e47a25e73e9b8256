"""R18 working hours: when a nudge or escalation may reach a person (Asia/Shanghai). Pure.

The window is [start, end) on working days: the configured weekdays, minus holidays, plus make-up
working days (调休). Outside it a message waits for the next opening: one due at 23:00 on Saturday
opens Monday 09:00 with the default calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.clock import SHANGHAI

MAX_CLOSED_DAYS = 400  # a calendar closed this long is a configuration error, not a long holiday


@dataclass(frozen=True)
class WorkCalendar:
    start: time
    end: time
    weekdays: frozenset[int]  # ISO: 1 = Monday … 7 = Sunday
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # weekend days worked instead of a holiday (调休)

    @classmethod
    def parse(cls, start: str, end: str, weekdays: Iterable[int], holidays: Iterable[str] = (),
              workdays: Iterable[str] = ()) -> WorkCalendar:
        return cls(
            time.fromisoformat(start), time.fromisoformat(end), frozenset(weekdays),
            frozenset(date.fromisoformat(d) for d in holidays), frozenset(date.fromisoformat(d) for d in workdays),
        )

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(SHANGHAI)
        return self.is_working_day(local.date()) and self.start <= local.time() < self.end

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when the window is open, else the moment it next opens (aware, Asia/Shanghai)."""
        if self.is_open(at):
            return at
        local = at.astimezone(SHANGHAI)
        day = local.date()
        if self.is_working_day(day) and local.time() < self.start:
            return datetime.combine(day, self.start, SHANGHAI)
        for _ in range(MAX_CLOSED_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                return datetime.combine(day, self.start, SHANGHAI)
        raise ValueError("the working calendar never opens")

    def working_day_of(self, at: datetime) -> date:
        """The working day a moment belongs to for "once per working day" rules (R3): the day the window
        next opens on (a nudge due Saturday night counts for Monday)."""
        return self.next_open(at).astimezone(SHANGHAI).date()
