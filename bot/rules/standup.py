"""R16 Monday stand-up: which week a moment belongs to, and when that week's prompt and team table go. Pure.

The prompt goes at the configured weekday and time, or when working hours (R18) next open after it; the
table goes the same gap later (default 09:00 → 10:00). A week whose stand-up day would move into the next
week (a week of holidays) has no stand-up. After the stand-up day ends, a missed prompt or table is not
sent late: a Thursday table of Monday's stand-up helps nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.clock import SHANGHAI
from bot.rules.calendar import WorkCalendar


@dataclass(frozen=True)
class StandupDay:
    week: date  # the Monday (Asia/Shanghai) of the week: StandupAnswer.week
    prompt: datetime  # when every rep is asked
    table: datetime  # when the team table goes at the latest (earlier once the whole team answered)
    closes: datetime  # midnight after the table's day: nothing of this stand-up is sent after it

    @property
    def gap(self) -> timedelta:
        """How long reps have to answer before the table."""
        return self.table - self.prompt


def week_of(at: datetime) -> date:
    """The Monday (Asia/Shanghai) of the week `at` falls in."""
    day = at.astimezone(SHANGHAI).date()
    return day - timedelta(days=day.weekday())


def standup_day(at: datetime, *, weekday: int, prompt_at: time, table_at: time,
                calendar: WorkCalendar) -> StandupDay | None:
    """The stand-up of the week `at` falls in, or None when that week has none."""
    week = week_of(at)
    day = week + timedelta(days=weekday - 1)
    prompt = calendar.next_open(datetime.combine(day, prompt_at, SHANGHAI))
    if week_of(prompt) != week:
        return None
    table = prompt + (datetime.combine(day, table_at) - datetime.combine(day, prompt_at))
    closes = datetime.combine(table.astimezone(SHANGHAI).date() + timedelta(days=1), time(0), SHANGHAI)
    return StandupDay(week=week, prompt=prompt, table=table, closes=closes)
