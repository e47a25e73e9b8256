"""R7 pure parts: what is unpaid (Decimal, to the cent) and when a signed contract becomes overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.clock import SHANGHAI
from bot.rules.receivables import freeze_month, is_overdue, outstanding

SIGNED = datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class Facts:
    status: str = "signed"
    legal_approved_at: datetime | None = SIGNED
    signed_at: datetime | None = SIGNED


def test_outstanding_in_decimal() -> None:
    assert outstanding(Decimal("100000.00"), [Decimal("40000.00")]) == Decimal("60000.00")
    # 0.1 + 0.2 is not 0.3 in binary floats; in Decimal the contract is paid.
    assert outstanding(Decimal("0.30"), [Decimal("0.10"), Decimal("0.20")]) == 0
    assert outstanding(Decimal("100.00"), [Decimal("99.99")]) == Decimal("0.01")
    assert outstanding(Decimal("100.00"), [Decimal("100.00"), Decimal("-30.00")]) == Decimal("30.00")  # refund
    assert outstanding(Decimal("100.00"), [Decimal("120.00")]) == 0  # overpaid is not negative


def test_overdue_only_after_the_days_and_only_when_signed_and_unpaid() -> None:
    due = SIGNED + timedelta(days=60)
    unpaid = [Decimal("10.00")]
    assert not is_overdue(Facts(), Decimal("100.00"), unpaid, due, 60)  # exactly 60 days: not more than
    assert is_overdue(Facts(), Decimal("100.00"), unpaid, due + timedelta(seconds=1), 60)
    assert not is_overdue(Facts(), Decimal("100.00"), [Decimal("100.00")], due + timedelta(days=9), 60)
    assert not is_overdue(Facts(legal_approved_at=None), Decimal("100.00"), unpaid, due + timedelta(days=9), 60)
    assert not is_overdue(Facts(status="draft"), Decimal("100.00"), unpaid, due + timedelta(days=9), 60)


def test_freeze_month_is_the_shanghai_month() -> None:
    assert freeze_month(datetime(2026, 11, 30, 16, 30, tzinfo=UTC)) == "2026-12"  # 00:30 on Dec 1 in Shanghai
    assert freeze_month(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == "2026-11"
