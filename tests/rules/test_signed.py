"""R10 one definition of "signed": status signed AND legal approval done, attributed to the signing date —
the pure test and the SQL clause agree, and a contract without legal approval counts nowhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI, SettableClock
from bot.rules.signed import is_signed, signed_between_sql, signed_on, signed_sql
from store.db import Database
from store.models import Contract
from tests.harness import seed_customers, seed_team

SIGNED_AT = datetime(2026, 11, 30, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC: still the 30th in Shanghai
APPROVED = SIGNED_AT - timedelta(days=1)


@dataclass(frozen=True)
class Facts:
    status: str
    legal_approved_at: datetime | None
    signed_at: datetime | None


CASES = [
    ("signed", APPROVED, SIGNED_AT, True),
    ("signed", None, SIGNED_AT, False),  # no legal approval: counts nowhere
    ("draft", APPROVED, SIGNED_AT, False),
    ("void", APPROVED, SIGNED_AT, False),
    ("signed", APPROVED, None, False),  # nothing to attribute it to
]


@pytest.mark.parametrize(("status", "approved", "signed", "expected"), CASES)
def test_is_signed(status: str, approved: datetime | None, signed: datetime | None, expected: bool) -> None:
    assert is_signed(Facts(status, approved, signed)) is expected
    assert (signed_on(Facts(status, approved, signed)) is not None) is expected


def test_attributed_to_the_signing_day_in_shanghai() -> None:
    assert signed_on(Facts("signed", APPROVED, SIGNED_AT.astimezone(SHANGHAI))) == date(2026, 11, 30)
    assert signed_on(Facts("signed", APPROVED, SIGNED_AT + timedelta(minutes=31))) == date(2026, 12, 1)


async def test_sql_clause_agrees_with_the_function(db: Database, clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    made: dict[int, bool] = {}
    async with db.transaction() as s:
        for status, approved, signed, expected in CASES:
            contract = Contract(customer_id=customers["huayuan"], owner_id=ids["zhangsan"], amount=Decimal("1000.00"),
                                status=status, legal_approved_at=approved, signed_at=signed, created_at=clock.now())
            s.add(contract)
            await s.flush()
            made[contract.id] = expected
    async with db.sessions() as s:
        found = set((await s.scalars(select(Contract.id).where(signed_sql()))).all())
        assert found == {cid for cid, ok in made.items() if ok}
        rows = (await s.scalars(select(Contract))).all()
        assert {c.id for c in rows if is_signed(c)} == found
        day_start = datetime(2026, 11, 30, tzinfo=SHANGHAI)
        in_day = set((await s.scalars(select(Contract.id).where(
            signed_between_sql(day_start, day_start + timedelta(days=1))))).all())
        assert in_day == found
        next_day = set((await s.scalars(select(Contract.id).where(
            signed_between_sql(day_start + timedelta(days=1), day_start + timedelta(days=2))))).all())
        assert next_day == set()
