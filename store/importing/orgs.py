"""Org unit references in imports: an external id, a "区域/团队" path, or a bare unit name.

Missing units named by a path (or a region name) are created, but only for rows that are otherwise
valid: planning returns an OrgPending, and the chunk that writes the row creates it in the same
SAVEPOINT (a rolled-back chunk is forgotten with undo()).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.importing import messages as m
from store.importing.tables import table_of
from store.importing.values import shown
from store.models import OrgUnit

REGION = "region"
TEAM = "team"
NAME_MAX = 128
_PATH_SEP = re.compile(r"\s*[/／]\s*")


class OrgRefError(ValueError):
    """An org reference that cannot be resolved; str(self) is the user-facing reason."""


@dataclass(frozen=True)
class OrgPending:
    """A unit to create: a region, or a team under a region (which may itself be pending)."""

    region: str
    team: str | None = None


@dataclass(frozen=True)
class _Unit:
    id: int
    kind: str
    name: str
    parent_id: int | None
    external_id: str | None
    manager_id: int | None


class OrgResolver:
    """Every org unit, loaded once per import run and indexed by external id, name and parent."""

    def __init__(self) -> None:
        self.units: dict[int, _Unit] = {}
        self._by_external: dict[str, int] = {}
        self._by_name: dict[str, list[int]] = {}
        self._regions: dict[str, int] = {}
        self._children: dict[tuple[int, str], int] = {}
        self._managed: dict[int, set[int]] = {}
        self.created_ids: list[int] = []  # units created by this run, in order
        self._expected_regions: set[str] = set()

    async def load(self, session: AsyncSession) -> None:
        t = table_of(OrgUnit)
        rows = await session.execute(
            select(t.c.id, t.c.kind, t.c.name, t.c.parent_id, t.c.external_id, t.c.manager_id).order_by(t.c.id)
        )
        for r in rows:
            self._add(_Unit(r.id, r.kind, r.name, r.parent_id, r.external_id, r.manager_id))

    def _add(self, unit: _Unit) -> None:
        self.units[unit.id] = unit
        if unit.external_id:
            self._by_external[unit.external_id] = unit.id
        self._by_name.setdefault(unit.name, []).append(unit.id)
        if unit.kind == REGION:
            self._regions.setdefault(unit.name, unit.id)
        if unit.parent_id is not None:
            self._children.setdefault((unit.parent_id, unit.name), unit.id)
        if unit.manager_id is not None:
            self._managed.setdefault(unit.manager_id, set()).add(unit.id)

    def resolve(self, text: str, *, region_only: bool = False) -> int | OrgPending:
        """The unit's id, or what to create. Raises OrgRefError."""
        if text in self._by_external:
            unit_id = self._by_external[text]
            if region_only and self.units[unit_id].kind != REGION:
                raise OrgRefError(m.NOT_A_REGION.format(value=shown(text)))
            return unit_id
        parts = _PATH_SEP.split(text)
        if len(parts) > 2 or any(not p for p in parts) or (region_only and len(parts) != 1):
            raise OrgRefError(m.BAD_ORG_PATH.format(value=shown(text)))
        if any(len(p) > NAME_MAX for p in parts):
            raise OrgRefError(m.TOO_LONG.format(length=max(len(p) for p in parts), max=NAME_MAX))
        if len(parts) == 2:
            return self._path(parts[0], parts[1])
        if region_only:
            region = self._region(text)
            return region if region is not None else OrgPending(text)
        named = self._by_name.get(text, [])
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise OrgRefError(m.AMBIGUOUS_ORG.format(value=shown(text)))
        if text in self._expected_regions:
            return OrgPending(text)
        raise OrgRefError(m.UNKNOWN_ORG.format(value=shown(text)))

    def expect_regions(self, references: Iterable[str]) -> None:
        """Regions named in "区域/团队" paths of this run: a bare name may refer to them too, so a
        manager row can say manages=华东 while the region is created by the team paths."""
        for text in references:
            parts = _PATH_SEP.split(text)
            if len(parts) == 2 and parts[0] and text not in self._by_external:
                self._expected_regions.add(parts[0])

    def _region(self, name: str) -> int | None:
        return self._regions.get(name)

    def _path(self, region_name: str, team_name: str) -> int | OrgPending:
        region = self._region(region_name)
        team = self._children.get((region, team_name)) if region is not None else None
        return team if team is not None else OrgPending(region_name, team_name)

    def label(self, unit_id: int | None) -> str | None:
        """How a unit is written back (API GET): its external id, else its "区域/团队" path or name."""
        if unit_id is None or unit_id not in self.units:
            return None
        unit = self.units[unit_id]
        if unit.external_id:
            return unit.external_id
        parent = self.units.get(unit.parent_id) if unit.parent_id is not None else None
        return f"{parent.name}/{unit.name}" if parent is not None and parent.kind == REGION else unit.name

    def managed_by(self, user_id: int) -> set[int]:
        """Units whose manager the user is (as loaded at the start of the run)."""
        return set(self._managed.get(user_id, ()))

    def id_of(self, value: int | OrgPending) -> int:
        """A resolved id (pending units must have been created by create_pending)."""
        if isinstance(value, int):
            return value
        found = self._region(value.region) if value.team is None else self._path(value.region, value.team)
        if not isinstance(found, int):
            raise LookupError(f"org unit not created: {value}")
        return found

    async def create_pending(self, session: AsyncSession, pending: Iterable[OrgPending], now: datetime) -> None:
        """Create the pending regions, then teams (each only once)."""
        wanted = set(pending)
        for name in sorted({p.region for p in wanted}):
            if self._region(name) is None:
                await self._insert(session, REGION, name, None, now)
        for p in sorted(wanted, key=lambda p: (p.region, p.team or "")):
            region_id = self._region(p.region)
            if p.team is not None and region_id is not None and isinstance(self._path(p.region, p.team), OrgPending):
                await self._insert(session, TEAM, p.team, region_id, now)

    def mark(self) -> int:
        """A point to undo() back to when the writes since then were rolled back."""
        return len(self.created_ids)

    def undo(self, mark: int) -> None:
        """Forget units created after `mark` (their SAVEPOINT was rolled back)."""
        for unit_id in reversed(self.created_ids[mark:]):
            unit = self.units.pop(unit_id)
            self._by_name[unit.name].remove(unit_id)
            if self._regions.get(unit.name) == unit_id:
                del self._regions[unit.name]
            if unit.parent_id is not None and self._children.get((unit.parent_id, unit.name)) == unit_id:
                del self._children[(unit.parent_id, unit.name)]
        del self.created_ids[mark:]

    async def _insert(self, session: AsyncSession, kind: str, name: str, parent_id: int | None, now: datetime) -> int:
        t = table_of(OrgUnit)
        new_id = (
            await session.execute(
                insert(t).values(kind=kind, name=name, parent_id=parent_id, created_at=now).returning(t.c.id)
            )
        ).scalar_one()
        self._add(_Unit(int(new_id), kind, name, parent_id, None, None))
        self.created_ids.append(int(new_id))
        return int(new_id)
