"""sync-org through the fake WeCom API: regions, teams, users, superiors, managers, roles from config."""

from __future__ import annotations

from sqlalchemy import select

from bot.clock import SettableClock
from bot.runtime import build_deps, connected
from jobs.registry import registry
from store.models import AuditLog, OrgUnit, User
from tests.conftest import make_settings
from tests.fakes.wecom_api import running_fake_wecom

DEPARTMENTS = [
    {"id": 1, "name": "示例科技", "parentid": 0, "order": 1},
    {"id": 2, "name": "华东", "parentid": 1, "order": 1, "department_leader": ["huadong_vp"]},
    {"id": 3, "name": "上海一组", "parentid": 2, "order": 1},
    {"id": 4, "name": "杭州组", "parentid": 2, "order": 2},
    {"id": 5, "name": "财务部", "parentid": 1, "order": 3},
]


def person(userid: str, name: str, dept: int, *, leader: bool = False, boss: str | None = None) -> dict[str, object]:
    return {"userid": userid, "name": name, "department": [dept], "main_department": dept,
            "is_leader_in_dept": [1 if leader else 0], "direct_leader": [boss] if boss else [],
            "mobile": "13800000000", "email": f"{userid}@example.com", "status": 1}


USERS = [
    person("huadong_vp", "赵总", 2, leader=True),
    person("wangjl", "王经理", 3, leader=True, boss="huadong_vp"),
    person("zhangsan", "张三", 3, boss="wangjl"),
    person("lisi", "李四", 3, boss="wangjl"),
    person("zhoujl", "周经理", 4, leader=True, boss="huadong_vp"),
    person("qianqi", "钱七", 4, boss="zhoujl"),
    person("caiwu", "孙会计", 5),
]


async def run_sync(db_url: str, clock: SettableClock, fake, force: bool = False) -> int:  # type: ignore[no-untyped-def]
    from jobs.registry import run_sync_org

    settings = make_settings(db_url, api_base=fake.api_base, org={"finance": ["caiwu"], "sales_ops": ["huadong_vp"]})
    deps = build_deps(settings, clock)
    async with connected(deps):
        if force:
            return await run_sync_org(deps, clock.now(), force=True)
        return await registry()["sync-org"](deps, clock.now())


async def test_sync_builds_org_and_people(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    async with running_fake_wecom(clock) as fake:
        fake.set_directory(DEPARTMENTS, USERS)
        assert await run_sync(db_url, clock, fake) > 0
        async with db.sessions() as s:
            units = {u.name: u for u in (await s.scalars(select(OrgUnit))).all()}
            users = {u.wecom_userid: u for u in (await s.scalars(select(User))).all()}
        assert units["华东"].kind == "region" and units["上海一组"].kind == "team"
        assert units["上海一组"].parent_id == units["华东"].id
        assert units["上海一组"].manager_id == users["wangjl"].id
        assert units["华东"].manager_id == users["huadong_vp"].id
        assert users["zhangsan"].superior_id == users["wangjl"].id
        assert users["zhangsan"].team_id == units["上海一组"].id
        assert users["zhangsan"].roles == ["rep"]
        assert users["wangjl"].roles == ["manager"]
        assert users["caiwu"].roles == ["finance"]
        assert "sales_ops" in users["huadong_vp"].roles

        # Running again changes nothing.
        before = {k: (u.name, u.team_id, u.superior_id, u.roles) for k, u in users.items()}
        await run_sync(db_url, clock, fake)
        async with db.sessions() as s:
            again = {u.wecom_userid: u for u in (await s.scalars(select(User))).all()}
            audits = (await s.scalars(select(AuditLog).where(AuditLog.action == "sync_org"))).all()
        assert {k: (u.name, u.team_id, u.superior_id, u.roles) for k, u in again.items()} == before
        assert audits[-1].detail == {"units_created": 0, "units_updated": 0, "users_created": 0,
                                     "users_updated": 0, "users_deactivated": 0}

        # Someone leaves, someone moves team.
        moved = [u for u in USERS if u["userid"] != "lisi"]
        moved = [dict(u, department=[4], main_department=4, direct_leader=["zhoujl"]) if u["userid"] == "zhangsan"
                 else u for u in moved]
        fake.set_directory(DEPARTMENTS, moved)
        await run_sync(db_url, clock, fake)
        async with db.sessions() as s:
            users = {u.wecom_userid: u for u in (await s.scalars(select(User))).all()}
        assert users["lisi"].active is False
        assert users["zhangsan"].team_id == units["杭州组"].id and users["zhangsan"].superior_id == users["zhoujl"].id

        # Links the directory no longer gives are cleared, not left pointing at the old people.
        changed = [dict(u, direct_leader=[]) if u["userid"] == "qianqi" else
                   dict(u, is_leader_in_dept=[0]) if u["userid"] == "zhoujl" else u for u in moved]
        fake.set_directory(DEPARTMENTS, changed)
        await run_sync(db_url, clock, fake)
        async with db.sessions() as s:
            users = {u.wecom_userid: u for u in (await s.scalars(select(User))).all()}
            hangzhou = await s.get(OrgUnit, units["杭州组"].id)
        assert users["qianqi"].superior_id is None
        assert hangzhou is not None and hangzhou.manager_id is None and users["zhoujl"].roles == ["rep"]


async def test_sync_refuses_to_deactivate_everyone(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """An ok-but-empty or shrunken user/list (the app's visible range changed) is refused, unless forced."""
    import pytest

    from jobs.sync_org import SyncError

    async with running_fake_wecom(clock) as fake:
        fake.set_directory(DEPARTMENTS, USERS)
        await run_sync(db_url, clock, fake)
        fake.set_directory(DEPARTMENTS, USERS[:2])
        with pytest.raises(SyncError, match="max_deactivate_share"):
            await run_sync(db_url, clock, fake)
        async with db.sessions() as s:
            assert all(u.active for u in (await s.scalars(select(User))).all())
        await run_sync(db_url, clock, fake, force=True)
        async with db.sessions() as s:
            assert sum(u.active for u in (await s.scalars(select(User))).all()) == 2


async def test_sync_failure_changes_nothing(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from jobs.sync_org import SyncError

    async with running_fake_wecom(clock) as fake:
        fake.set_directory(DEPARTMENTS, USERS)
        fake.script("user/list", [{"errcode": 60011, "errmsg": "no privilege to access/modify contact/party/agent"}])
        with pytest.raises(SyncError, match="60011"):
            await run_sync(db_url, clock, fake)
        async with db.sessions() as s:
            assert (await s.scalars(select(User))).all() == []
            assert (await s.scalars(select(OrgUnit))).all() == []
