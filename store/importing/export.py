"""A stored object in the shape it is imported in (the API's GET): references as external ids,
times as ISO 8601 in Asia/Shanghai, amounts as exact decimal strings. Sending it back unchanged
(read-only `id`, `created_at`, `updated_at` are ignored on input) changes nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.importing.engine import IMPORTERS, get_spec
from store.importing.orgs import OrgResolver
from store.importing.tables import table_of
from store.importing.values import format_datetime
from store.models import Contract, Customer, CustomerAlias, Opportunity, User

_REF_TABLES: dict[str, Table] = {
    "users": table_of(User),
    "customers": table_of(Customer),
    "opportunities": table_of(Opportunity),
    "contracts": table_of(Contract),
}
_ORG_COLUMNS = {"team": "team_id", "region": "region_id"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


async def fetch_item(session: AsyncSession, kind: str, external_id: str) -> dict[str, Any] | None:
    """The stored `kind` object with this external_id, as import fields plus read-only metadata."""
    spec = get_spec(kind)
    table = IMPORTERS[kind].table
    row = (await session.execute(select(table).where(table.c.external_id == external_id))).mappings().first()
    if row is None:
        return None
    orgs: OrgResolver | None = None
    out: dict[str, Any] = {}
    for col in spec.columns:
        if col.ref in _REF_TABLES:
            ref_table = _REF_TABLES[col.ref]
            ref_id = row[f"{col.name}_id"]
            if ref_id is None:
                out[col.name] = None
                continue
            ref_ext = await session.scalar(select(ref_table.c.external_id).where(ref_table.c.id == ref_id))
            if ref_ext is not None:  # a target without an external id (e.g. synced from WeCom) is left
                out[col.name] = ref_ext  # out, so sending the object back keeps the link instead of clearing it
        elif col.ref == "org":
            if orgs is None:
                orgs = OrgResolver()
                await orgs.load(session)
            if col.name == "manages":
                out[col.name] = sorted(filter(None, (orgs.label(u) for u in orgs.managed_by(row["id"]))))
            else:
                out[col.name] = orgs.label(row[_ORG_COLUMNS[col.name]])
        elif col.name == "aliases":
            a = table_of(CustomerAlias)
            aliases = await session.scalars(select(a.c.alias).where(a.c.customer_id == row["id"]).order_by(a.c.id))
            out[col.name] = list(aliases)
        else:
            out[col.name] = _plain(row[col.name])
    out["id"] = row["id"]
    for meta in ("created_at", "updated_at"):
        if meta in table.c and meta not in out:
            out[meta] = _plain(row[meta])
    return out
