"""Parse one cell (CSV text or a JSON value) according to its Column: types, lengths, choices.

Returns None for an empty value; the caller decides what empty means (required, clear, keep).
Raises CellError with a user-facing reason (the caller adds the column name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from bot.clock import SHANGHAI, ensure_aware
from store.importing import messages as m
from store.importing.spec import BOOL_FALSE, BOOL_TRUE, MAX_AMOUNT, MAX_LIST_ITEMS, Column, ColumnType

# C0/C1 controls (incl. NUL, CR, LF, TAB), lone surrogates (unencodable), bidi overrides (spoofing).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_AMOUNT = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_INT = re.compile(r"^[+-]?\d{1,12}$")
_DATETIME = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_LIST_SEP = re.compile(r"[;；]")
_CENT = Decimal("0.01")
_SHOWN = 60  # characters of a bad value quoted back in a message


class CellError(ValueError):
    """A value does not fit its column; str(self) is the user-facing reason."""


def shown(value: object) -> str:
    """A bad value as quoted in a message: repr-escaped controls, cut to a readable length."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("unicode_escape").decode("ascii") if _FORBIDDEN.search(text) else text
    return f"“{text[:_SHOWN]}…”" if len(text) > _SHOWN else f"“{text}”"


def field_name(key: object) -> str:
    """An unknown field's name as reported: control characters escaped, at most 64 characters."""
    text = key if isinstance(key, str) else repr(key)
    text = text.encode("unicode_escape").decode("ascii") if _FORBIDDEN.search(text) else text
    return text if len(text) <= 64 else text[:63] + "…"


def parse_value(col: Column, raw: object, stages: Sequence[str]) -> Any:
    """The typed value of `raw` for `col`, or None when empty."""
    if raw is None:
        return None
    if col.type is ColumnType.LIST:
        return _parse_list(col, raw, stages)
    if col.type is ColumnType.INT:
        return _parse_int(col, raw)
    if col.type is ColumnType.DECIMAL:
        return _parse_decimal(col, raw)
    if col.type is ColumnType.BOOL:
        return _parse_bool(raw)
    if col.type is ColumnType.STR and isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # a JSON number given for a text column such as a mobile number
    text = clean_text(raw, col.max_length)
    if text is None:
        return None
    if col.type is ColumnType.DATETIME:
        return parse_datetime(text)
    if col.type is ColumnType.ENUM:
        return _choose(col, text, stages)
    if col.pattern is not None and not _pattern(col.pattern).match(text):
        raise CellError(m.BAD_FORMAT.format(value=shown(text)))
    return text


def clean_text(raw: object, max_length: int | None) -> str | None:
    """Trimmed text without control characters, within max_length; None when empty."""
    if not isinstance(raw, str):
        raise CellError(m.NOT_TEXT)
    bad = _FORBIDDEN.search(raw)
    if bad is not None:
        raise CellError(m.CONTROL_CHAR.format(char=f"U+{ord(bad.group()):04X}"))
    text = raw.strip()
    if not text:
        return None
    if max_length is not None and len(text) > max_length:
        raise CellError(m.TOO_LONG.format(length=len(text), max=max_length))
    return text


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date or date-time (also 2026/11/30 as Excel writes it); naive = Asia/Shanghai; UTC out."""
    found = _DATETIME.match(text)
    if found is None:
        raise CellError(m.NOT_DATETIME.format(value=shown(text)))
    year, month, day, hour, minute, second, frac, zone = found.groups()
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((frac or "0").ljust(6, "0")),
        )
        if zone:
            value = value.replace(tzinfo=_zone(zone))
    except ValueError:
        raise CellError(m.NOT_DATETIME.format(value=shown(text))) from None
    if not 1990 <= value.year <= 2100:
        raise CellError(m.DATETIME_RANGE.format(value=shown(text)))
    return ensure_aware(value)


def _zone(text: str) -> tzinfo:
    """ "Z", "+08", "+0800" or "+08:00" as a fixed offset."""
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)


def format_datetime(value: datetime | None) -> str | None:
    """How datetimes are written back (API GET): ISO 8601 in Asia/Shanghai with its offset."""
    return None if value is None else value.astimezone(SHANGHAI).isoformat()


def _parse_int(col: Column, raw: object) -> int | None:
    if isinstance(raw, bool):
        raise CellError(m.NOT_INT.format(value=shown(raw)))
    if isinstance(raw, int):
        value = raw
    else:
        text = clean_text(raw, 40)
        if text is None:
            return None
        if not _INT.match(text):
            raise CellError(m.NOT_INT.format(value=shown(text)))
        value = int(text)
    lo = col.minimum if col.minimum is not None else -(2**31)
    hi = col.maximum if col.maximum is not None else 2**31 - 1
    if not lo <= value <= hi:
        raise CellError(m.INT_RANGE.format(min=lo, max=hi, value=value))
    return value


def _parse_decimal(col: Column, raw: object) -> Decimal | None:
    """Amounts: "50000", "50,000.00", "¥50000"; JSON numbers; never NaN/inf or more than 2 decimals."""
    if isinstance(raw, bool):
        raise CellError(m.NOT_AMOUNT.format(value=shown(raw)))
    if isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, Decimal | float):
        value = raw if isinstance(raw, Decimal) else Decimal(repr(raw))
        if not value.is_finite():
            raise CellError(m.NOT_AMOUNT.format(value=shown(raw)))
    else:
        text = clean_text(raw, 40)
        if text is None:
            return None
        digits = text.lstrip("¥￥").strip() if text[0] in "¥￥" else text
        if not _AMOUNT.match(digits):
            raise CellError(m.NOT_AMOUNT.format(value=shown(text)))
        try:
            value = Decimal(digits.replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern admits only plain numbers
            raise CellError(m.NOT_AMOUNT.format(value=shown(text))) from None
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise CellError(m.AMOUNT_DECIMALS.format(value=shown(raw)))
    if abs(value) >= MAX_AMOUNT:
        raise CellError(m.AMOUNT_TOO_LARGE.format(value=shown(raw)))
    if value < 0 and not col.allow_negative:
        raise CellError(m.AMOUNT_NEGATIVE.format(value=shown(raw)))
    if value == 0 and col.nonzero:
        raise CellError(m.AMOUNT_ZERO)
    return value.quantize(_CENT)


def _parse_bool(raw: object) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = clean_text(raw, 10)
    if text is None:
        return None
    folded = text.casefold()
    if folded in BOOL_TRUE:
        return True
    if folded in BOOL_FALSE:
        return False
    raise CellError(m.NOT_BOOL.format(value=shown(text)))


def _choose(col: Column, text: str, stages: Sequence[str]) -> str:
    choices = tuple(stages) if col.stages else col.choices
    if text in choices:
        return text
    folded = text.casefold()
    for choice in choices:
        if choice.casefold() == folded:
            return choice
    synonym = col.synonym_map().get(folded)
    if synonym is not None:
        return synonym
    raise CellError(m.NOT_CHOICE.format(value=shown(text), choices=", ".join(choices)))


def _parse_list(col: Column, raw: object, stages: Sequence[str]) -> list[str]:
    """A ';'-separated string or a JSON array of strings: trimmed, empties dropped, duplicates removed.

    Enum lists come back in the order of their choices, so "manager;rep" equals "rep;manager".
    """
    if isinstance(raw, str):
        items: list[object] = list(_LIST_SEP.split(raw))
    elif isinstance(raw, list):
        items = list(raw)
    else:
        raise CellError(m.NOT_LIST)
    out: list[str] = []
    for item in items:
        text = clean_text(item, col.max_length)
        if text is None:
            continue
        if col.choices or col.stages:
            text = _choose(col, text, stages)
        if text not in out:
            out.append(text)
    if len(out) > MAX_LIST_ITEMS:
        raise CellError(m.TOO_MANY_ITEMS.format(max=MAX_LIST_ITEMS))
    if col.choices:
        out.sort(key=col.choices.index)
    return out


@lru_cache(maxsize=32)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
