"""sync-org: WeCom department/list + user/list → regions, teams, users, superiors, managers.

Department tree: the root department is the company; its children are regions (区域); anything
below a region is a team, attributed to its region. A user's team is their main department;
`direct_leader` gives the direct superior; department leaders (`is_leader_in_dept` /
`department_leader`) become the unit's manager. Roles the directory cannot tell (finance, delivery,
sales ops) come from config. Users who left the directory are deactivated, never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from bot.channels.wecom.api import WeComClient
from bot.config import OrgSettings
from store.db import Database
from store.models import AuditLog, OrgUnit, User

log = logging.getLogger(__name__)


class Directory(Protocol):
    async def department_list(self, department_id: int | None = None) -> list[dict[str, Any]]: ...

    async def user_list(self, department_id: int, fetch_child: bool = True) -> list[dict[str, Any]]: ...


class SyncError(RuntimeError):
    """The directory could not be read; nothing was changed."""


class WeComDirectory:
    """The WeCom API client seen as a Directory (errors become SyncError)."""

    def __init__(self, client: WeComClient) -> None:
        self._client = client

    async def department_list(self, department_id: int | None = None) -> list[dict[str, Any]]:
        result = await self._client.department_list(department_id)
        if not result.ok:
            raise SyncError(f"department/list: errcode {result.errcode} ({result.errmsg})")
        return list(result.data.get("department") or [])

    async def user_list(self, department_id: int, fetch_child: bool = True) -> list[dict[str, Any]]:
        result = await self._client.user_list(department_id, fetch_child)
        if not result.ok:
            raise SyncError(f"user/list: errcode {result.errcode} ({result.errmsg})")
        return list(result.data.get("userlist") or [])


@dataclass
class SyncReport:
    regions: int = 0
    teams: int = 0
    users_created: int = 0
    users_updated: int = 0
    users_deactivated: int = 0

    def total(self) -> int:
        return self.regions + self.teams + self.users_created + self.users_updated + self.users_deactivated


def _classify(departments: list[dict[str, Any]], root_id: int) -> dict[int, tuple[str, int | None]]:
    """dept id -> (kind, region dept id) for every department under the root."""
    parent = {int(d["id"]): int(d.get("parentid") or 0) for d in departments}
    result: dict[int, tuple[str, int | None]] = {}
    for dept_id in parent:
        chain = [dept_id]
        while chain[-1] in parent and parent[chain[-1]] not in (0, chain[-1]) and chain[-1] != root_id:
            chain.append(parent[chain[-1]])
            if len(chain) > 64:  # a cycle in bad data
                break
        if chain[-1] != root_id or dept_id == root_id:
            continue
        region = chain[-2] if len(chain) >= 2 else dept_id
        result[dept_id] = ("region", None) if region == dept_id else ("team", region)
    return result


def _roles(userid: str, is_leader: bool, in_team: bool, org: OrgSettings) -> list[str]:
    roles: list[str] = []
    if in_team and not is_leader:
        roles.append("rep")
    if is_leader:
        roles.append("manager")
    for role, ids in (("finance", org.finance), ("delivery", org.delivery), ("sales_ops", org.sales_ops)):
        if userid in ids:
            roles.append(role)
    return roles


async def sync_org(db: Database, directory: Directory, org: OrgSettings, now: datetime) -> SyncReport:
    """Pull the directory and upsert it in one transaction (a failed fetch changes nothing)."""
    departments = await directory.department_list(org.root_department_id)
    people = await directory.user_list(org.root_department_id, True)
    kinds = _classify(departments, org.root_department_id)
    by_id = {int(d["id"]): d for d in departments}
    report = SyncReport()
    async with db.transaction() as session:
        units = {u.wecom_dept_id: u for u in (await session.scalars(select(OrgUnit))).all() if u.wecom_dept_id}
        # Regions first so teams can point at them.
        for dept_id, (kind, region) in sorted(kinds.items(), key=lambda kv: kv[1][0] != "region"):
            unit = units.get(dept_id)
            name = str(by_id[dept_id].get("name") or f"部门{dept_id}")
            parent_id = units[region].id if region is not None and region in units else None
            if unit is None:
                unit = OrgUnit(kind=kind, name=name, wecom_dept_id=dept_id, parent_id=parent_id, created_at=now)
                session.add(unit)
                units[dept_id] = unit
            elif (unit.kind, unit.name, unit.parent_id) != (kind, name, parent_id):
                unit.kind, unit.name, unit.parent_id, unit.updated_at = kind, name, parent_id, now
            await session.flush()
            if kind == "region":
                report.regions += 1
            else:
                report.teams += 1

        existing = {u.wecom_userid: u for u in (await session.scalars(select(User))).all() if u.wecom_userid}
        seen: set[str] = set()
        leaders: dict[int, str] = {}
        for person in people:
            userid = str(person.get("userid") or "")
            if not userid or int(person.get("status", 1)) != 1:
                continue
            seen.add(userid)
            depts = [int(d) for d in person.get("department") or []]
            flags = [int(f) for f in person.get("is_leader_in_dept") or []]
            for dept, flag in zip(depts, flags, strict=False):
                if flag:
                    leaders.setdefault(dept, userid)
            main = int(person.get("main_department") or (depts[0] if depts else 0))
            team = units.get(main) if main in kinds else None
            is_leader = any(flags)
            values: dict[str, Any] = {
                "name": str(person.get("name") or userid),
                "mobile": person.get("mobile") or None,
                "email": person.get("email") or person.get("biz_mail") or None,
                "team_id": team.id if team is not None else None,
                "roles": _roles(userid, is_leader, team is not None and team.kind == "team", org),
                "active": True,
            }
            user = existing.get(userid)
            if user is None:
                user = User(wecom_userid=userid, created_at=now, **values)
                session.add(user)
                existing[userid] = user
                report.users_created += 1
            elif any(getattr(user, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(user, key, value)
                user.updated_at = now
                report.users_updated += 1
        await session.flush()
        for department in departments:
            for userid in department.get("department_leader") or []:
                leaders.setdefault(int(department["id"]), str(userid))
        for dept_id, userid in leaders.items():
            unit = units.get(dept_id)
            leader = existing.get(userid)
            if unit is not None and leader is not None and unit.manager_id != leader.id:
                unit.manager_id, unit.updated_at = leader.id, now
        for person in people:
            user = existing.get(str(person.get("userid") or ""))
            direct = [str(x) for x in person.get("direct_leader") or []]
            superior = existing.get(direct[0]) if direct else None
            if user is not None and superior is not None and user.superior_id != superior.id:
                user.superior_id, user.updated_at = superior.id, now
        for userid, user in existing.items():
            if userid not in seen and user.active:
                user.active, user.updated_at = False, now
                report.users_deactivated += 1
        session.add(AuditLog(at=now, actor_label="sync-org", action="sync_org", detail=report.__dict__.copy()))
    log.info("sync-org: %s", report)
    return report
