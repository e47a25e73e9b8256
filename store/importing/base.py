"""The shape every kind's importer fills: batch-load, plan each row, write plans in chunks.

Planning is pure Python over what `load` fetched (one query per referenced table, not per row), so a
bad row is rejected before anything is written. Writing uses Core statements (executemany), which
is what makes 10,000 rows take seconds rather than minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from store.importing.orgs import OrgPending, OrgRefError, OrgResolver
from store.importing.spec import KindSpec
from store.importing.values import shown

LOOKUP_CHUNK = 500  # ids per IN (...) list: far below SQLite's and asyncpg's parameter limits

Action = Literal["create", "update", "unchanged"]


class RowProblem(Exception):
    """A row cannot be imported; `column` names the column at fault (None: the row as a whole)."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class Row:
    """A parsed row: `given` holds the columns present (None = an empty value that clears)."""

    line: int
    ext: str
    given: dict[str, Any]

    def has(self, name: str) -> bool:
        """Was the column given with a value or as an explicit clear?"""
        return name in self.given

    def value(self, name: str) -> Any:
        return self.given.get(name)


@dataclass(frozen=True)
class UserPending:
    """A user created by an earlier row of the same file (id known only once written)."""

    external_id: str


@dataclass
class Plan:
    """What writing one row will do. `values`: the full insert (create) or the changed columns."""

    row: Row
    action: Action
    values: dict[str, Any]
    row_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def line(self) -> int:
        return self.row.line

    def pending_orgs(self) -> Iterator[OrgPending]:
        for value in (*self.values.values(), *self.extra.get("orgs", ())):
            if isinstance(value, OrgPending):
                yield value


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def same(stored: Any, wanted: Any) -> bool:
    """Is the stored value already what the row asks for? (Pending references never are.)"""
    if isinstance(wanted, OrgPending | UserPending):
        return False
    return bool(stored == wanted)


async def rows_by_external(session: AsyncSession, table: Table, external_ids: Iterable[str]) -> dict[str, RowMapping]:
    """Full rows keyed by external_id, fetched LOOKUP_CHUNK at a time."""
    wanted = sorted(set(external_ids))
    found: dict[str, RowMapping] = {}
    for part in chunked(wanted, LOOKUP_CHUNK):
        result = await session.execute(select(table).where(table.c.external_id.in_(part)))
        for row in result.mappings():
            found[row["external_id"]] = row
    return found


async def ids_by_external(
    session: AsyncSession, table: Table, external_ids: Iterable[str], *extra: str
) -> dict[str, RowMapping]:
    """id (and the named extra columns) of referenced rows keyed by external_id."""
    wanted = sorted({e for e in external_ids if e})
    columns = [table.c.id, table.c.external_id, *(table.c[name] for name in extra)]
    found: dict[str, RowMapping] = {}
    for part in chunked(wanted, LOOKUP_CHUNK):
        result = await session.execute(select(*columns).where(table.c.external_id.in_(part)))
        for row in result.mappings():
            found[row["external_id"]] = row
    return found


class KindImporter:
    """Base importer: subclasses set `spec` and `table` and implement `plan`."""

    spec: ClassVar[KindSpec]
    table: ClassVar[Table]

    def __init__(self, session: AsyncSession, now: datetime, stages: Sequence[str]) -> None:
        self.session = session
        self.now = now
        self.stages = tuple(stages)
        self.orgs = OrgResolver()
        self.existing: dict[str, RowMapping] = {}
        self.ids: dict[str, int] = {}  # external_id -> id, for rows stored or written in this run

    # ------------------------------------------------------------ loading and planning

    async def load(self, rows: Sequence[Row]) -> None:
        """Batch-load the rows being upserted and everything they reference."""
        self.existing = await rows_by_external(self.session, self.table, (r.ext for r in rows))
        self.ids = {ext: int(row["id"]) for ext, row in self.existing.items()}
        await self.load_refs(rows)

    async def load_refs(self, rows: Sequence[Row]) -> None:
        """Subclasses fetch their references here."""

    def plan(self, row: Row) -> Plan:
        """Decide create / update / unchanged for one row; raise RowProblem if it cannot be imported."""
        raise NotImplementedError

    def order(self, plans: list[Plan], errors: list[tuple[Plan, RowProblem]]) -> list[Plan]:
        """The order to write in (users: superiors first); rows that cannot be ordered go to errors."""
        return plans

    def build(
        self,
        row: Row,
        target: dict[str, Any],
        existing: RowMapping | None,
        *,
        extra: dict[str, Any] | None = None,
        extra_changed: bool = False,
    ) -> Plan:
        """A create plan (target + defaults) or an update plan with only what differs."""
        columns = self.table.c
        if existing is None:
            values = {"external_id": row.ext, **target}
            if "created_at" in columns and values.get("created_at") is None:
                values["created_at"] = self.now
            return Plan(row, "create", values, None, extra or {})
        changes = {k: v for k, v in target.items() if not same(existing[k], v)}
        changed = bool(changes) or extra_changed
        if changed and "updated_at" in columns:
            changes["updated_at"] = self.now
        return Plan(row, "update" if changed else "unchanged", changes, int(existing["id"]), extra or {})

    # ------------------------------------------------------------ references

    def ref_id(self, refs: dict[str, RowMapping], column: str, value: str | None, message: str) -> int | None:
        """The id a reference column points at (None stays None); RowProblem if unknown."""
        if value is None:
            return None
        found = refs.get(value)
        if found is None:
            raise RowProblem(column, message.format(value=shown(value)))
        return int(found["id"])

    def org(self, column: str, value: str | None, *, region_only: bool = False) -> int | OrgPending | None:
        if value is None:
            return None
        try:
            return self.orgs.resolve(value, region_only=region_only)
        except OrgRefError as exc:
            raise RowProblem(column, str(exc)) from None

    async def create_org_units(self, plans: Iterable[Plan]) -> None:
        """Create the units that rows about to be written refer to by path or name."""
        pending = {p for plan in plans if plan.action != "unchanged" for p in plan.pending_orgs()}
        if pending:
            await self.orgs.create_pending(self.session, pending, self.now)

    # ------------------------------------------------------------ writing

    def resolve(self, value: Any) -> Any:
        """A planned value made concrete at write time (a pending org unit's id)."""
        if isinstance(value, OrgPending):
            return self.orgs.id_of(value)
        return value

    async def write(self, plans: Sequence[Plan]) -> dict[str, int]:
        """Write a chunk of create/update plans; returns the ids of created rows by external_id.

        Raises a database error or RowProblem; the engine then retries the chunk row by row.
        """
        await self.create_org_units(plans)
        new_ids: dict[str, int] = {}
        creates = [p for p in plans if p.action == "create"]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for p in creates:
            params = {k: self.resolve(v) for k, v in p.values.items()}
            groups.setdefault(tuple(sorted(params)), []).append(params)
        for group in groups.values():
            stmt = insert(self.table).returning(self.table.c.id, self.table.c.external_id)
            result = await self.session.execute(stmt, group)
            new_ids.update({ext: int(i) for i, ext in result.all()})
        for p in creates:
            p.row_id = new_ids[p.row.ext]
        await self.update_rows([p for p in plans if p.action == "update"])
        await self.after_write(plans, new_ids)
        return new_ids

    async def update_rows(self, plans: Sequence[Plan]) -> None:
        """executemany UPDATE ... WHERE id = ?, one statement per set of changed columns."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for p in plans:
            if not p.values:
                continue
            params = {f"v_{k}": self.resolve(v) for k, v in p.values.items()}
            params["b_id"] = p.row_id
            groups.setdefault(tuple(sorted(p.values)), []).append(params)
        for keys, group in groups.items():
            stmt = (
                update(self.table)
                .where(self.table.c.id == bindparam("b_id"))
                .values({k: bindparam(f"v_{k}") for k in keys})
            )
            await self.session.execute(stmt, group)

    async def after_write(self, plans: Sequence[Plan], new_ids: dict[str, int]) -> None:
        """Subclasses write dependent rows (aliases, managed units, deferred superiors)."""
