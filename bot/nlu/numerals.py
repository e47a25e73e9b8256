"""Chinese numerals (一二三, 两, 十/百/千/万, and the financial forms 壹贰叁 …) to numbers."""

from __future__ import annotations

from decimal import Decimal

DIGITS = {
    "零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "貳": 2, "两": 2, "兩": 2, "三": 3, "叁": 3, "參": 3,
    "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "陸": 6, "七": 7, "柒": 7, "八": 8, "捌": 8,
    "九": 9, "玖": 9,
}
UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
NUMERAL_CHARS = "".join([*DIGITS, *UNITS, *BIG_UNITS])


def chinese_to_int(text: str) -> int | None:
    """'三' → 3, '十五' → 15, '二十' → 20, '一百零五' → 105, '伍万' → 50000; None if not a numeral.

    Digit strings like '一二三' (read digit by digit) are accepted too.
    """
    if not text or any(ch not in NUMERAL_CHARS for ch in text):
        return None
    if len(text) > 1 and all(ch in DIGITS for ch in text):
        return int("".join(str(DIGITS[ch]) for ch in text))
    total, wan, section, digit = 0, 0, 0, None  # 亿-level total, 万-level part, below-万 section
    for ch in text:
        if ch in DIGITS:
            digit = DIGITS[ch]
        elif ch in UNITS:
            section += (1 if digit is None else digit) * UNITS[ch]
            digit = None
        else:
            part = section + (digit or 0)
            if BIG_UNITS[ch] == 10_000:
                if part == 0:
                    return None
                wan += part * 10_000
            else:
                if part + wan == 0:
                    return None
                total += (wan + part) * 100_000_000
                wan = 0
            section, digit = 0, None
    return total + wan + section + (digit or 0)


def parse_number(text: str) -> Decimal | None:
    """Arabic ('1.5', '50,000') or Chinese ('一', '十五') → Decimal; None if it is neither."""
    cleaned = text.replace(",", "").replace("，", "").strip()
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        value = None
    if value is not None and value.is_finite():
        return value
    whole = chinese_to_int(cleaned)
    return Decimal(whole) if whole is not None else None
