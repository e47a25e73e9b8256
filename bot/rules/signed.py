"""R10 one definition of "signed" (新签): status = signed AND legal approval done, attributed to the signing
date (Asia/Shanghai). Rebates, scores, funnels, reports and the R7 receivables sweep all use this module:
`is_signed`/`signed_on` for a contract in hand, `signed_sql` for a query. Pure (it builds SQL, never runs it).

A contract marked signed without a signing date cannot be attributed to any day, so it counts nowhere
(like one without legal approval) until the date is filled in.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from sqlalchemy import and_
from sqlalchemy.orm.util import AliasedClass
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import SHANGHAI
from store.models import Contract

SIGNED = "signed"


class ContractFacts(Protocol):
    """What R10 looks at (a Contract row, or any object with these attributes)."""

    @property
    def status(self) -> str: ...

    @property
    def legal_approved_at(self) -> datetime | None: ...

    @property
    def signed_at(self) -> datetime | None: ...


def is_signed(contract: ContractFacts) -> bool:
    """R10: counts as signed — status signed, legal approval done, and a signing date to attribute it to."""
    return contract.status == SIGNED and contract.legal_approved_at is not None and contract.signed_at is not None


def signed_on(contract: ContractFacts) -> date | None:
    """R10: the day (Asia/Shanghai) a contract counts as signed, or None when it does not count."""
    if not is_signed(contract) or contract.signed_at is None:
        return None
    return contract.signed_at.astimezone(SHANGHAI).date()


def signed_sql(c: type[Contract] | AliasedClass[Contract] = Contract) -> ColumnElement[bool]:
    """R10 as a WHERE clause on `contracts` (or an alias of it): the same test as `is_signed`."""
    return and_(c.status == SIGNED, c.legal_approved_at.is_not(None), c.signed_at.is_not(None))


def signed_between_sql(start: datetime, end: datetime,
                       c: type[Contract] | AliasedClass[Contract] = Contract) -> ColumnElement[bool]:
    """R10: signed, and attributed to [start, end) — a day, a week, a month of new signings."""
    return and_(signed_sql(c), c.signed_at >= start, c.signed_at < end)
