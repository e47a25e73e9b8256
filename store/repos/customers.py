"""Customers as chat needs them: the name index (R14), who touched whom (R17), creation from chat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Activity, Customer, CustomerAlias

# The two-key advisory lock space of per-customer locks (the conversation lock uses one-key locks,
# a separate space in PostgreSQL).
CUSTOMER_LOCK_SPACE = 17


class CustomerRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, customer_id: int) -> Customer | None:
        return await self._s.get(Customer, customer_id)

    async def lock(self, customer_id: int) -> None:
        """Serialise work on one customer until the transaction ends (PostgreSQL advisory lock; SQLite has
        a single writer anyway). Not a row lock: the caller's new activity already holds a key-share lock
        on the customer row through its foreign key, and two FOR UPDATEs after that would deadlock."""
        if self._s.get_bind().dialect.name == "postgresql":
            await self._s.execute(
                text("SELECT pg_advisory_xact_lock(:space, :key)"),
                {"space": CUSTOMER_LOCK_SPACE, "key": customer_id % 2_147_483_647},
            )

    async def signature(self) -> tuple[Any, ...]:
        """Changes whenever a customer or alias is added, removed or renamed (cheap aggregate query)."""
        customers = (
            await self._s.execute(
                select(func.count(), func.max(Customer.id), func.max(func.coalesce(Customer.updated_at,
                                                                                    Customer.created_at)))
            )
        ).one()
        aliases = (await self._s.execute(select(func.count(), func.max(CustomerAlias.id)))).one()
        return (*customers, *aliases)

    async def name_rows(self) -> list[tuple[int, str, int | None, list[str]]]:
        """(id, name, owner_id, aliases) of every customer, for the name index."""
        aliases: dict[int, list[str]] = {}
        for customer_id, alias in (await self._s.execute(select(CustomerAlias.customer_id, CustomerAlias.alias))).all():
            aliases.setdefault(customer_id, []).append(alias)
        rows = (await self._s.execute(select(Customer.id, Customer.name, Customer.owner_id))).all()
        return [(cid, name, owner, aliases.get(cid, [])) for cid, name, owner in rows]

    async def find_by_name(self, name: str) -> Customer | None:
        return (await self._s.execute(select(Customer).where(Customer.name == name).limit(1))).scalar_one_or_none()

    async def create(self, name: str, owner_id: int, now: datetime, region_id: int | None = None) -> Customer:
        """A new prospect named in chat ("新客户 XX"); owned by the rep who named it."""
        customer = Customer(name=name, owner_id=owner_id, region_id=region_id, created_at=now)
        self._s.add(customer)
        await self._s.flush()
        return customer

    async def recent_for_user(self, user_id: int, since: datetime, limit: int) -> list[Customer]:
        """Customers the rep recorded activities on since `since`, most recent first; then owned ones."""
        latest = func.max(Activity.occurred_at).label("latest")
        touched = (
            await self._s.execute(
                select(Activity.customer_id, latest)
                .where(Activity.user_id == user_id, Activity.customer_id.is_not(None), Activity.occurred_at >= since)
                .group_by(Activity.customer_id)
                .order_by(latest.desc())
                .limit(limit)
            )
        ).all()
        ids = [cid for cid, _ in touched]
        found = {c.id: c for c in (await self._s.scalars(select(Customer).where(Customer.id.in_(ids)))).all()}
        result = [found[i] for i in ids if i in found]
        if len(result) < limit:
            owned = await self._s.scalars(
                select(Customer).where(Customer.owner_id == user_id, Customer.id.not_in(ids or [0]))
                .order_by(func.coalesce(Customer.updated_at, Customer.created_at).desc()).limit(limit - len(result))
            )
            result += list(owned.all())
        return result

    async def reps_since(self, customer_id: int, since: datetime) -> list[int]:
        """Distinct users with an activity on the customer since `since` (R17)."""
        rows = await self._s.scalars(
            select(Activity.user_id).distinct().where(Activity.customer_id == customer_id,
                                                      Activity.occurred_at >= since)
        )
        return sorted(rows.all())
