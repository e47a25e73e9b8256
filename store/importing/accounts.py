"""Customers (with aliases) and leads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from store.importing import messages as m
from store.importing.base import KindImporter, Plan, Row, RowProblem, chunked, ids_by_external
from store.importing.spec import CUSTOMERS, LEADS
from store.importing.tables import table_of
from store.models import Customer, CustomerAlias, Lead, User


def _given(row: Row, target: dict[str, Any], *columns: str) -> None:
    for col in columns:
        if row.has(col):
            target[col] = row.value(col)


class CustomersImporter(KindImporter):
    """Upsert customers; `aliases` is the complete alias list when given."""

    spec = CUSTOMERS
    table = table_of(Customer)

    async def load_refs(self, rows: Sequence[Row]) -> None:
        users = table_of(User)
        self.owners = await ids_by_external(self.session, users, (r.value("owner") for r in rows))
        self.aliases: dict[int, set[str]] = {}
        a = table_of(CustomerAlias)
        for part in chunked(sorted(self.ids.values()), 500):
            for cid, alias in await self.session.execute(
                select(a.c.customer_id, a.c.alias).where(a.c.customer_id.in_(part))
            ):
                self.aliases.setdefault(cid, set()).add(alias)
        await self.orgs.load(self.session)

    def plan(self, row: Row) -> Plan:
        existing = self.existing.get(row.ext)
        target: dict[str, Any] = {}
        _given(row, target, "name", "industry", "customer_type")
        if row.has("region"):
            target["region_id"] = self.org("region", row.value("region"), region_only=True)
        if row.has("owner"):
            target["owner_id"] = self.ref_id(self.owners, "owner", row.value("owner"), m.UNKNOWN_USER)
        extra: dict[str, Any] = {}
        if row.has("aliases"):
            wanted: list[str] = row.value("aliases") or []
            stored = self.aliases.get(int(existing["id"]), set()) if existing is not None else set()
            if set(wanted) != stored:
                extra = {"aliases": wanted, "stored_aliases": stored}
        return self.build(row, target, existing, extra=extra, extra_changed=bool(extra))

    async def after_write(self, plans: Sequence[Plan], new_ids: dict[str, int]) -> None:
        a = table_of(CustomerAlias)
        added: list[dict[str, Any]] = []
        for p in plans:
            if "aliases" not in p.extra:
                continue
            wanted, stored = set(p.extra["aliases"]), p.extra["stored_aliases"]
            gone = sorted(stored - wanted)
            if gone:
                await self.session.execute(delete(a).where(a.c.customer_id == p.row_id, a.c.alias.in_(gone)))
            added += [{"customer_id": p.row_id, "alias": alias} for alias in p.extra["aliases"] if alias not in stored]
        if added:
            await self.session.execute(insert(a), added)


class LeadsImporter(KindImporter):
    """Upsert leads. An assignee without assigned_at is taken as assigned now (R1)."""

    spec = LEADS
    table = table_of(Lead)

    async def load_refs(self, rows: Sequence[Row]) -> None:
        self.customers = await ids_by_external(self.session, table_of(Customer), (r.value("customer") for r in rows))
        self.users = await ids_by_external(self.session, table_of(User), (r.value("assignee") for r in rows))
        await self.orgs.load(self.session)

    def plan(self, row: Row) -> Plan:
        existing = self.existing.get(row.ext)
        target: dict[str, Any] = {}
        _given(row, target, "title", "source", "status", "created_at", "first_contact_at")
        if row.has("customer"):
            target["customer_id"] = self.ref_id(self.customers, "customer", row.value("customer"), m.UNKNOWN_CUSTOMER)
        if row.has("region"):
            target["region_id"] = self.org("region", row.value("region"), region_only=True)
        if row.has("assignee"):
            target["assignee_id"] = self.ref_id(self.users, "assignee", row.value("assignee"), m.UNKNOWN_USER)

        def final(col: str, default: Any = None) -> Any:
            if col in target:
                return target[col]
            return existing[col] if existing is not None else default

        created: datetime = final("created_at", self.now)
        if existing is None or row.has("assigned_at") or row.has("assignee"):
            given = row.value("assigned_at")
            if final("assignee_id") is None:
                if given is not None:
                    raise RowProblem("assigned_at", m.ASSIGNED_WITHOUT_ASSIGNEE)
                target["assigned_at"] = None
            else:
                kept = existing["assigned_at"] if existing is not None else None
                target["assigned_at"] = given or kept or max(self.now, created)
        for col in ("assigned_at", "first_contact_at"):
            when = final(col)
            if when is not None and when < created:
                raise RowProblem(col, m.BEFORE_CREATED)
        return self.build(row, target, existing)
