"""Markdown that reads on a phone: short tables (few columns, short cells), numbers formatted for people."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

CELL_MAX = 12


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; cells are cut to CELL_MAX characters and `|` cannot break a row."""
    def cell(value: str) -> str:
        value = value.replace("|", "/").replace("\n", " ")
        return value if len(value) <= CELL_MAX else value[: CELL_MAX - 1] + "…"

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def money(amount: Decimal | None, *, compact: bool = False) -> str:
    """¥ with thousands separators; 万 from 100,000 up (¥12.5万), or from 10,000 up when `compact` (a table
    column of amounts reads alike and stays narrow)."""
    if amount is None:
        return "—"
    if abs(amount) >= (10_000 if compact else 100_000):
        return f"¥{(amount / 10_000).quantize(Decimal('0.1'))}万"
    return f"¥{amount:,.2f}"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"
