"""Contracts, payments and R7 freezes as the rebate engine (bot/rules/rebate) reads them: plain facts, read
with column queries (a rep may hold 10,000 contracts: no ORM objects to build per row)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.rules.rebate import ContractFacts, FreezeFacts, PaymentFacts
from store.models import BonusFreeze, Contract, Customer, Payment, RebateChange, User


@dataclass(frozen=True)
class Version:
    """A rep's rebate version (store.models.RebateChange)."""

    count: int
    total: int
    newest: int


@dataclass(frozen=True)
class RebateBook:
    """Everything `summarize` needs for one rep."""

    contracts: list[ContractFacts]
    payments: list[PaymentFacts]
    freezes: list[FreezeFacts]

    def refreshed(self, changed: Collection[int], fresh: RebateBook) -> RebateBook:
        """This book with the `changed` contracts (and their payments) replaced by `fresh`'s, freezes from it."""
        contracts = [c for c in self.contracts if c.id not in changed] + fresh.contracts
        payments = [p for p in self.payments if p.contract_id not in changed] + fresh.payments
        return RebateBook(contracts, payments, fresh.freezes)


class ContractRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def book(self, owner_id: int, only: Collection[int] | None = None) -> RebateBook:
        """A rep's contracts (every status: the engine applies R10), their payments and the rep's freezes;
        `only`: just those contracts (and their payments) — a refresh after a few changed."""
        wanted = list(only) if only is not None else None
        stmt = (
            select(Contract.id, Contract.amount, Contract.status, Contract.legal_approved_at, Contract.signed_at,
                   Contract.payment_terms_days, Contract.product_line, Customer.industry, Customer.customer_type,
                   Customer.name)
            .outerjoin(Customer, Customer.id == Contract.customer_id)
            .where(Contract.owner_id == owner_id)  # ix_contracts_owner_signed
        )
        paid = (select(Payment.contract_id, Payment.amount, Payment.received_at)
                .join(Contract, Contract.id == Payment.contract_id).where(Contract.owner_id == owner_id))
        if wanted is not None:
            stmt, paid = stmt.where(Contract.id.in_(wanted)), paid.where(Payment.contract_id.in_(wanted))
        contracts = [
            ContractFacts(id=cid, owner_id=owner_id, amount=amount, status=status, legal_approved_at=legal,
                          signed_at=signed, payment_terms_days=terms, product_line=line, industry=industry,
                          customer_type=ctype, customer_name=name or "")
            for cid, amount, status, legal, signed, terms, line, industry, ctype, name in
            (await self._s.execute(stmt)).all()
        ]
        payments = [PaymentFacts(contract_id=cid, amount=amount, received_at=at)
                    for cid, amount, at in (await self._s.execute(paid)).all()]
        freezes = [
            FreezeFacts(contract_id=cid, user_id=owner_id, month=month, reason=reason, released_at=released)
            for cid, month, reason, released in (await self._s.execute(
                select(BonusFreeze.contract_id, BonusFreeze.month, BonusFreeze.reason, BonusFreeze.released_at)
                .where(BonusFreeze.user_id == owner_id, BonusFreeze.released_at.is_(None))
            )).all()
        ]
        return RebateBook(contracts, payments, freezes)

    async def version(self, owner_id: int) -> Version:
        """R8: the rep's rebate inputs' version: the count, sum and newest of their change rows (written by
        triggers). Count and sum also move when a lower id commits late or rows are pruned."""
        count, total, newest = (await self._s.execute(
            select(func.count(), func.coalesce(func.sum(RebateChange.id), 0),
                   func.coalesce(func.max(RebateChange.id), 0))
            .where(RebateChange.user_id == owner_id)  # ix_rebate_changes_user_id_id
        )).one()
        return Version(int(count), int(total), int(newest))

    async def changed_since(self, owner_id: int, old: Version, new: Version) -> set[int] | None:
        """The contracts named by the changes between two versions, or None when that cannot be known for sure
        (rows pruned, an id that committed late, a change not tied to one contract): read the whole book."""
        if old.newest == 0 or new.count < old.count:
            return None
        rows = (await self._s.execute(
            select(RebateChange.id, RebateChange.contract_id)
            .where(RebateChange.user_id == owner_id, RebateChange.id > old.newest)
        )).all()
        complete = (len(rows) == new.count - old.count and sum(r for r, _ in rows) == new.total - old.total)
        if not complete or any(contract is None for _, contract in rows):
            return None
        return {int(contract) for _, contract in rows if contract is not None}

    async def prune_changes(self) -> int:
        """Keep only each rep's newest change row (the version); returns rows deleted."""
        newest = select(func.max(RebateChange.id)).group_by(RebateChange.user_id)
        result = await self._s.execute(delete(RebateChange).where(RebateChange.id.not_in(newest)))
        return int(cast(CursorResult[Any], result).rowcount or 0)

    async def active_freezes(self, owner_ids: Sequence[int] | None = None) -> list[tuple[BonusFreeze, str, str]]:
        """R7 freezes not yet released, with the owner's and the customer's names (for finance)."""
        stmt = (
            select(BonusFreeze, User.name, Customer.name)
            .join(User, User.id == BonusFreeze.user_id)
            .join(Contract, Contract.id == BonusFreeze.contract_id)
            .outerjoin(Customer, Customer.id == Contract.customer_id)
            .where(BonusFreeze.released_at.is_(None))
            .order_by(BonusFreeze.created_at, BonusFreeze.id)
        )
        if owner_ids is not None:
            stmt = stmt.where(BonusFreeze.user_id.in_(list(owner_ids)))
        return [(f, owner or "", customer or "") for f, owner, customer in (await self._s.execute(stmt)).all()]

    async def release(self, freeze_ids: Sequence[int], by: int, now: datetime) -> list[BonusFreeze]:
        """R7: finance releases freezes (the rows released now; already released ones are left as they were)."""
        rows = list((await self._s.scalars(
            select(BonusFreeze).where(BonusFreeze.id.in_(list(freeze_ids)), BonusFreeze.released_at.is_(None))
            .with_for_update()
        )).all())
        for row in rows:
            row.released_at, row.released_by = now, by
        return rows
