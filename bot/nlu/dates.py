"""Dates in chat, relative to `now` in Asia/Shanghai: "明天", "下周三", "12月5日", "月底", "3天后" …

Used for next steps that become follow-up tasks (R14). Always the next date the words can mean:
"周五" on a Saturday is the coming Friday; "12月5日" in late December is next year's.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.clock import SHANGHAI
from bot.nlu.numerals import NUMERAL_CHARS, parse_number

_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_NUM = rf"(?:\d+|[{NUMERAL_CHARS}]+)"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("relative_day", re.compile(r"大后天|后天|明天|明日|今天|今日|昨天|昨日")),
    ("week", re.compile(r"(?P<which>下下|下|这|本|上)?(?:个)?(?:周|星期|礼拜)(?P<day>[一二三四五六日天末])")),
    ("days_later", re.compile(rf"(?P<n>{_NUM})\s*(?:天|日)(?:后|以后|之后)")),
    ("weeks_later", re.compile(rf"(?P<n>{_NUM})\s*(?:个)?(?:周|星期|礼拜)(?:后|以后|之后)")),
    ("month_day", re.compile(
        rf"(?:(?P<year>\d{{4}})\s*年\s*)?(?P<month>{_NUM})\s*月\s*(?P<day>{_NUM})\s*(?:日|号)?"
        r"|(?:(?P<year2>\d{4})[/-])?(?P<month2>\d{1,2})[/-](?P<day2>\d{1,2})(?![\d万kKw%人个次天家位名周月年小时分])"
    )),
    ("day_only", re.compile(rf"(?<![月\d])(?P<day>{_NUM})\s*号")),
    ("month_edge", re.compile(r"(?P<which>下个?|本|这个?)?月(?P<edge>底|末|初)")),
    ("next_week", re.compile(r"下(?:个)?(?:周|星期|礼拜)(?![一二三四五六日天末])")),
)


@dataclass(frozen=True)
class FoundDate:
    value: date
    start: int
    end: int


def today(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def find_date(text: str, now: datetime) -> FoundDate | None:
    """The earliest-positioned date expression in text, resolved against now (Asia/Shanghai)."""
    text = unicodedata.normalize("NFKC", text)
    base = today(now)
    best: FoundDate | None = None
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            value = _resolve(kind, match, base)
            if value is None:
                continue
            if best is None or match.start() < best.start:
                best = FoundDate(value, match.start(), match.end())
            break
    return best


def _int(value: str | None) -> int | None:
    number = parse_number(value) if value else None
    return int(number) if number is not None and number == int(number) else None


def _resolve(kind: str, m: re.Match[str], base: date) -> date | None:
    if kind == "relative_day":
        offsets = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "昨天": -1, "昨日": -1}
        return base + timedelta(days=offsets[m.group(0)])
    if kind == "week":
        return _weekday(base, m.group("which"), _WEEKDAYS[m.group("day")])
    if kind == "next_week":
        return base + timedelta(days=7 - base.weekday())  # next Monday
    if kind in ("days_later", "weeks_later"):
        n = _int(m.group("n"))
        if n is None or not 0 < n <= 366:
            return None
        return base + timedelta(days=n * (7 if kind == "weeks_later" else 1))
    if kind == "month_day":
        year = m.group("year") or m.group("year2")
        month = m.group("month") or m.group("month2")
        day = m.group("day") or m.group("day2")
        return _month_day(base, _int(year), _int(month), _int(day))
    if kind == "day_only":  # "5号": this month's, or next month's once it has passed
        day = _int(m.group("day"))
        if day is None:
            return None
        this = _month_day(base, base.year, base.month, day)
        if this is not None and this >= base:
            return this
        year, month = (base.year + 1, 1) if base.month == 12 else (base.year, base.month + 1)
        return _month_day(base, year, month, day)
    return _month_edge(base, m.group("which") or "", m.group("edge"))


def _weekday(base: date, which: str | None, weekday: int) -> date:
    monday = base - timedelta(days=base.weekday())
    if which in ("下",):
        return monday + timedelta(days=7 + weekday)
    if which == "下下":
        return monday + timedelta(days=14 + weekday)
    if which == "上":
        return monday - timedelta(days=7 - weekday)
    if which in ("这", "本"):
        return monday + timedelta(days=weekday)
    ahead = (weekday - base.weekday()) % 7  # bare "周五": the next Friday, today included
    return base + timedelta(days=ahead)


def _month_day(base: date, year: int | None, month: int | None, day: int | None) -> date | None:
    if month is None or day is None or not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    years = [year] if year is not None else [base.year, base.year + 1]
    for y in years:
        if day > calendar.monthrange(y, month)[1]:
            continue
        candidate = date(y, month, day)
        if year is not None or candidate >= base:
            return candidate
    return None


def _month_edge(base: date, which: str, edge: str) -> date:
    year, month = base.year, base.month
    if which.startswith("下"):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if edge == "初":
        first = date(year, month, 1)
        if not which and first < base:  # bare "月初" after the 1st: next month's
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            first = date(year, month, 1)
        return first
    return date(year, month, calendar.monthrange(year, month)[1])
