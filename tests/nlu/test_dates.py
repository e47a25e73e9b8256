"""Dates relative to now in Asia/Shanghai, including when the server clock is UTC."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bot.clock import SHANGHAI
from bot.nlu.dates import find_date

# Monday 2026-11-30 10:00 in Shanghai.
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天去华远", date(2026, 12, 1)),
        ("后天报价", date(2026, 12, 2)),
        ("今天", date(2026, 11, 30)),
        ("下周三再约", date(2026, 12, 9)),
        ("下星期五", date(2026, 12, 11)),
        ("这周五", date(2026, 12, 4)),
        ("周五给方案", date(2026, 12, 4)),
        ("周一", date(2026, 11, 30)),  # today counts
        ("下周", date(2026, 12, 7)),
        ("12月5日报价", date(2026, 12, 5)),
        ("12月5号", date(2026, 12, 5)),
        ("十二月五日", date(2026, 12, 5)),
        ("11月1日", date(2027, 11, 1)),  # already past this year → next year
        ("2027年1月3日", date(2027, 1, 3)),
        ("12/20 签约", date(2026, 12, 20)),
        ("月底回款", date(2026, 11, 30)),
        ("下个月底", date(2026, 12, 31)),
        ("下月初", date(2026, 12, 1)),
        ("3天后", date(2026, 12, 3)),
        ("三天以后", date(2026, 12, 3)),
        ("两周后复盘", date(2026, 12, 14)),
        ("15号", date(2026, 12, 15)),
        ("30号", date(2026, 11, 30)),
    ],
)
def test_dates(text: str, expected: date) -> None:
    found = find_date(text, NOW)
    assert found is not None and found.value == expected


@pytest.mark.parametrize("text", ["预算3.5万", "客户认可方案", "2月30日", "13月1日", "底价8折", "1-2人参会"])
def test_not_dates(text: str) -> None:
    assert find_date(text, NOW) is None


def test_shanghai_day_when_utc_is_still_yesterday() -> None:
    """00:30 Tuesday in Shanghai is 16:30 Monday UTC: "明天" is Wednesday."""
    now = datetime(2026, 12, 1, 0, 30, tzinfo=SHANGHAI)
    found = find_date("明天", now.astimezone(tz=None))
    assert found is not None and found.value == date(2026, 12, 2)


def test_earliest_expression_wins_and_span_is_exact() -> None:
    text = "客户说下周三给反馈，12月20日前签约"
    found = find_date(text, NOW)
    assert found is not None and text[found.start : found.end] == "下周三"
