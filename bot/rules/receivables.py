"""R7 overdue receivable: a signed contract (R10) with money unpaid more than `receivable_days` after its
signing. Money is Decimal, summed here and never in SQL (SQLite keeps NUMERIC as a binary float). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from bot.clock import SHANGHAI
from bot.rules.signed import ContractFacts, is_signed

CENT = Decimal("0.01")


def outstanding(amount: Decimal, payments: Iterable[Decimal]) -> Decimal:
    """What is still to collect, to the cent (refunds are negative payments; never below zero)."""
    paid = sum((Decimal(p) for p in payments), Decimal(0))
    return max(Decimal(amount) - paid, Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)


def overdue_since(contract: ContractFacts, receivable_days: int) -> datetime | None:
    """The moment an unpaid signed contract becomes overdue (signed_at + receivable_days); None if not signed."""
    if not is_signed(contract) or contract.signed_at is None:
        return None
    return contract.signed_at + timedelta(days=receivable_days)


def is_overdue(contract: ContractFacts, amount: Decimal, payments: Iterable[Decimal], now: datetime,
               receivable_days: int) -> bool:
    """R7: signed (R10), more than `receivable_days` since signing, and money still unpaid."""
    due = overdue_since(contract, receivable_days)
    return due is not None and now > due and outstanding(amount, payments) > 0


def freeze_month(now: datetime) -> str:
    """The month ("YYYY-MM", Asia/Shanghai) whose excess bonus an R7 escalation at `now` freezes."""
    return now.astimezone(SHANGHAI).strftime("%Y-%m")
