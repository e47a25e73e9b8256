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
from sqlalchemy.ext.asyncio import AsyncSession

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
    units_created: int = 0
    units_updated: int = 0
    users_created: int = 0
    users_updated: int = 0
    users_deactivated: int = 0

    def total(self) -> int:
        """How many things changed."""
        return sum(self.__dict__.values())


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


async def sync_org(
    db: Database, directory: Directory, org: OrgSettings, now: datetime, *, force: bool = False
) -> SyncReport:
    """Pull the directory and apply it in one transaction (a failed fetch or a refused sync changes
    nothing). A directory that would deactivate more than `org.max_deactivate_share` of the active
    users (e.g. the app's visible range shrank) is refused unless `force`."""
    departments = await directory.department_list(org.root_department_id)
    people = [p for p in await directory.user_list(org.root_department_id, True)
              if p.get("userid") and int(p.get("status", 1)) == 1]
    report = SyncReport()
    async with db.transaction() as session:
        units = await _sync_units(session, departments, org.root_department_id, now, report)
        kinds = {dept_id: unit.kind for dept_id, unit in units.items()}
        existing = {u.wecom_userid: u for u in (await session.scalars(select(User))).all() if u.wecom_userid}
        _check_deactivation(existing, {str(p["userid"]) for p in people}, org, force)
        for person in people:
            _sync_user(session, person, units, kinds, existing, org, now, report)
        await session.flush()
        _sync_links(departments, people, units, existing, now)
        for userid, user in existing.items():
            if userid not in {str(p["userid"]) for p in people} and user.active:
                user.active, user.updated_at = False, now
                report.users_deactivated += 1
        session.add(AuditLog(at=now, actor_label="sync-org", action="sync_org", detail=report.__dict__.copy()))
    log.info("sync-org: %s", report)
    return report


async def _sync_units(
    session: AsyncSession, departments: list[dict[str, Any]], root_id: int, now: datetime, report: SyncReport
) -> dict[int, OrgUnit]:
    """Regions and teams by WeCom department id (regions first, so teams can point at them)."""
    kinds = _classify(departments, root_id)
    by_id = {int(d["id"]): d for d in departments}
    units = {u.wecom_dept_id: u for u in (await session.scalars(select(OrgUnit))).all() if u.wecom_dept_id}
    for dept_id, (kind, region) in sorted(kinds.items(), key=lambda kv: kv[1][0] != "region"):
        unit = units.get(dept_id)
        name = str(by_id[dept_id].get("name") or f"部门{dept_id}")
        parent_id = units[region].id if region is not None and region in units else None
        if unit is None:
            unit = OrgUnit(kind=kind, name=name, wecom_dept_id=dept_id, parent_id=parent_id, created_at=now)
            session.add(unit)
            units[dept_id] = unit
            report.units_created += 1
        elif (unit.kind, unit.name, unit.parent_id) != (kind, name, parent_id):
            unit.kind, unit.name, unit.parent_id, unit.updated_at = kind, name, parent_id, now
            report.units_updated += 1
        await session.flush()
    return {dept_id: unit for dept_id, unit in units.items() if dept_id in kinds}


def _check_deactivation(existing: dict[str, User], seen: set[str], org: OrgSettings, force: bool) -> None:
    active = [userid for userid, user in existing.items() if user.active]
    leaving = [userid for userid in active if userid not in seen]
    if force or not leaving:
        return
    if not seen or len(leaving) > org.max_deactivate_share * len(active):
        raise SyncError(
            f"the directory would deactivate {len(leaving)} of {len(active)} active users "
            f"(more than [org] max_deactivate_share = {org.max_deactivate_share}); check the app's visible "
            "range, or run `salesbot sync-org --force`"
        )


def _sync_user(
    session: AsyncSession,
    person: dict[str, Any],
    units: dict[int, OrgUnit],
    kinds: dict[int, str],
    existing: dict[str, User],
    org: OrgSettings,
    now: datetime,
    report: SyncReport,
) -> None:
    userid = str(person["userid"])
    depts = [int(d) for d in person.get("department") or []]
    flags = [int(f) for f in person.get("is_leader_in_dept") or []]
    main = int(person.get("main_department") or (depts[0] if depts else 0))
    unit = units.get(main)
    values: dict[str, Any] = {
        "name": str(person.get("name") or userid),
        "mobile": person.get("mobile") or None,
        "email": person.get("email") or person.get("biz_mail") or None,
        "team_id": unit.id if unit is not None else None,
        "roles": _roles(userid, any(flags), kinds.get(main) == "team", org),
        "active": True,
    }
    user = existing.get(userid)
    if user is None:
        existing[userid] = User(wecom_userid=userid, created_at=now, **values)
        session.add(existing[userid])
        report.users_created += 1
    elif any(getattr(user, k) != v for k, v in values.items()):
        for key, value in values.items():
            setattr(user, key, value)
        user.updated_at = now
        report.users_updated += 1


def _sync_links(
    departments: list[dict[str, Any]],
    people: list[dict[str, Any]],
    units: dict[int, OrgUnit],
    existing: dict[str, User],
    now: datetime,
) -> None:
    """Unit managers and direct superiors, set AND cleared as the directory says."""
    leaders: dict[int, str] = {}
    for department in departments:  # department_leader (newer API) wins over is_leader_in_dept
        for userid in department.get("department_leader") or []:
            leaders.setdefault(int(department["id"]), str(userid))
    for person in people:
        for dept, flag in zip(person.get("department") or [], person.get("is_leader_in_dept") or [], strict=False):
            if int(flag):
                leaders.setdefault(int(dept), str(person["userid"]))
    for dept_id, unit in units.items():
        leader = existing.get(leaders.get(dept_id, ""))
        manager_id = leader.id if leader is not None else None
        if unit.manager_id != manager_id:
            unit.manager_id, unit.updated_at = manager_id, now
    for person in people:
        user = existing[str(person["userid"])]
        direct = [str(x) for x in person.get("direct_leader") or []]
        superior = existing.get(direct[0]) if direct else None
        superior_id = superior.id if superior is not None else None
        if user.superior_id != superior_id:
            user.superior_id, user.updated_at = superior_id, now
