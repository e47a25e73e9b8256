"""The directory as the views need it: who a person manages (bot/rules/access.py) and the units' names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import OrgSettings
from bot.rules.access import Viewer
from store.models import OrgUnit, User


@dataclass(frozen=True)
class Unit:
    id: int
    kind: str  # region | team
    name: str
    parent_id: int | None
    manager_id: int | None


class OrgRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def viewer(self, user: User, org: OrgSettings) -> Viewer:
        """`user`'s reach: roles from [org] (or the user's roles), the units they manage and their people."""
        roles = set(user.roles or [])
        userid = user.wecom_userid or ""
        sales_ops = "sales_ops" in roles or (bool(userid) and userid in org.sales_ops)
        finance = "finance" in roles or (bool(userid) and userid in org.finance)
        managed = set((await self._s.scalars(select(OrgUnit.id).where(OrgUnit.manager_id == user.id))).all())
        if managed:  # a region's manager manages its teams too
            managed |= set((await self._s.scalars(
                select(OrgUnit.id).where(OrgUnit.parent_id.in_(managed)))).all())
        people = set((await self._s.scalars(
            select(User.id).where(User.team_id.in_(managed)))).all()) if managed else set()
        return Viewer(user.id, sales_ops=sales_ops, finance=finance, units=frozenset(managed),
                      people=frozenset(people))

    async def units(self) -> list[Unit]:
        rows = (await self._s.scalars(select(OrgUnit).order_by(OrgUnit.kind, OrgUnit.name, OrgUnit.id))).all()
        return [Unit(u.id, u.kind, u.name, u.parent_id, u.manager_id) for u in rows]

    async def members(self, team_ids: Iterable[int]) -> list[User]:
        """Active people of the teams, by name."""
        ids = list(team_ids)
        if not ids:
            return []
        return list((await self._s.scalars(
            select(User).where(User.team_id.in_(ids), User.active.is_(True)).order_by(User.name, User.id))).all())

    async def by_name(self, name: str) -> list[User]:
        return list((await self._s.scalars(select(User).where(User.name == name, User.active.is_(True)))).all())

    async def everyone(self) -> list[User]:
        """Every active person who sells or manages (finance and sales ops views), by name."""
        return list((await self._s.scalars(
            select(User).where(User.active.is_(True), User.team_id.is_not(None)).order_by(User.name, User.id))).all())
