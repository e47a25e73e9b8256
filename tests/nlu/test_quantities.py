"""Durations (R14) and amounts as reps type them; numerals in Chinese and Arabic forms."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.nlu.numerals import chinese_to_int, parse_number
from bot.nlu.quantities import find_amount, find_duration


@pytest.mark.parametrize(
    ("text", "value"),
    [("一", 1), ("两", 2), ("十", 10), ("十五", 15), ("二十", 20), ("九十", 90), ("一百零五", 105),
     ("三千", 3000), ("伍万", 50000), ("五十万", 500000), ("一亿二千万", 120_000_000), ("壹拾贰", 12),
     ("一二三", 123)],
)
def test_chinese_numerals(text: str, value: int) -> None:
    assert chinese_to_int(text) == value


def test_not_numerals() -> None:
    assert chinese_to_int("华远") is None and chinese_to_int("") is None and chinese_to_int("万") is None
    assert parse_number("1.5") == Decimal("1.5") and parse_number("50,000") == Decimal(50000)
    assert parse_number("NaN") is None and parse_number("abc") is None


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("今日拜访完成 华远科技 1小时 客户认可方案", 60),
        ("45分钟", 45),
        ("一个半小时", 90),
        ("1.5h", 90),
        ("半小时", 30),
        ("聊了半个小时", 30),
        ("1小时20分", 80),
        ("一小时零五分钟", 65),
        ("两个钟头", 120),
        ("90min", 90),
        ("２小时", 120),  # full-width digit
        ("用时 1.5 H", 90),
        ("三个小时", 180),
        ("45 mins", 45),
    ],
)
def test_durations(text: str, minutes: int) -> None:
    found = find_duration(text)
    assert found is not None and found.value == minutes


@pytest.mark.parametrize("text", ["客户认可方案，下周报价", "预算50万", "100小时", "0分钟", "第3m"])
def test_no_duration(text: str) -> None:
    assert find_duration(text) is None


def test_duration_span_can_be_cut_out() -> None:
    text = "拜访完成 华远 1小时30分钟 客户认可"
    found = find_duration(text)
    assert found is not None and text[found.start : found.end] == "1小时30分钟"


@pytest.mark.parametrize(
    ("text", "amount"),
    [("预算5万", "50000.00"), ("50,000", "50000.00"), ("伍万", "50000.00"), ("5.5万元", "55000.00"),
     ("50k", "50000.00"), ("5w", "50000.00"), ("1.2亿", "120000000.00"), ("￥80000", "80000.00"),
     ("合同额 300000 元", "300000.00"), ("十二万", "120000.00"), ("3000块", "3000.00")],
)
def test_amounts(text: str, amount: str) -> None:
    found = find_amount(text)
    assert found is not None and found.value == Decimal(amount)


def test_amount_requiring_a_unit() -> None:
    assert find_amount("第3次拜访", require_unit=True) is None
    found = find_amount("第3次拜访，报价5万", require_unit=True)
    assert found is not None and found.value == Decimal("50000.00")
