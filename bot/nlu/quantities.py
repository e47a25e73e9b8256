"""Durations (R14 check-ins) and money amounts, as reps actually type them.

Durations: "1小时", "45分钟", "一个半小时", "1.5h", "半小时", "1小时20分", "两个钟头", "90min".
Amounts:   "5万", "50,000", "伍万", "5.5万元", "50k", "5w", "1.2亿", "￥80000".
Each finder returns the value and the span it was read from, so callers can cut it out of the text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bot.nlu.numerals import NUMERAL_CHARS, parse_number

_NUM = rf"(?:\d+(?:\.\d+)?|[{NUMERAL_CHARS}]+)"
_HOURS = r"(?:个半?小时|个半?钟头|半?小时|半?钟头|hours?|hrs?|h)"
_MINUTES = r"(?:分钟|分|minutes?|mins?)(?![a-z])"

_DURATION = re.compile(
    rf"(?P<half_hour>半个?(?:小时|钟头))"
    rf"|(?:(?P<hours>{_NUM})\s*(?P<hunit>{_HOURS})(?:\s*(?:零)?(?P<hmin>{_NUM})\s*{_MINUTES})?)"
    rf"|(?:(?P<minutes>{_NUM})\s*{_MINUTES})",
    re.IGNORECASE,
)
_AMOUNT = re.compile(
    rf"(?:[￥¥]\s*)?(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|[{NUMERAL_CHARS}]+)"
    r"\s*(?P<unit>亿|億|万|萬|w|k|千|元|块钱|块|rmb)?",
    re.IGNORECASE,
)
_MULTIPLIER = {"亿": 100_000_000, "億": 100_000_000, "万": 10_000, "萬": 10_000, "w": 10_000, "k": 1000, "千": 1000}
MAX_DURATION_MINUTES = 24 * 60


@dataclass(frozen=True)
class Found:
    """A value read from text, and where: text[start:end]."""

    value: int | Decimal
    start: int
    end: int


def _clean(text: str) -> str:
    # NFKC folds full-width digits and letters ("１小时", "ｈ") to their ASCII forms, length-preserving
    # for the characters that matter here.
    return unicodedata.normalize("NFKC", text)


def find_duration(text: str) -> Found | None:
    """The first duration in text, in minutes (1 .. 24 h); None when there is none."""
    text = _clean(text)
    for match in _DURATION.finditer(text):
        minutes = _duration_minutes(match)
        if minutes is not None and 0 < minutes <= MAX_DURATION_MINUTES:
            return Found(minutes, match.start(), match.end())
    return None


def _duration_minutes(match: re.Match[str]) -> int | None:
    if match.group("half_hour"):
        return 30
    if match.group("hours"):
        hours = parse_number(match.group("hours"))
        if hours is None:
            return None
        total = hours * 60
        if "半" in match.group("hunit"):
            total += 30
        if match.group("hmin"):
            extra = parse_number(match.group("hmin"))
            if extra is None:
                return None
            total += extra
        return int(total.to_integral_value(ROUND_HALF_UP))
    value = parse_number(match.group("minutes"))
    return int(value.to_integral_value(ROUND_HALF_UP)) if value is not None else None


def find_amount(text: str, *, require_unit: bool = False) -> Found | None:
    """The first money amount in text, in yuan (Decimal, 2 places); None when there is none.

    With `require_unit`, a bare number ("3") is not an amount: only "3万", "3000元", "50,000" count.
    """
    text = _clean(text)
    for match in _AMOUNT.finditer(text):
        raw, unit = match.group("num"), (match.group("unit") or "").lower()
        number = parse_number(raw)
        if number is None:
            continue
        has_unit = bool(unit) or "," in raw or text[match.start()] in "￥¥"
        if require_unit and not has_unit:
            continue
        value = number * _MULTIPLIER.get(unit, 1)
        if value <= 0 or value >= Decimal("1e12"):
            continue
        return Found(value.quantize(Decimal("0.01"), ROUND_HALF_UP), match.start(), match.end())
    return None
