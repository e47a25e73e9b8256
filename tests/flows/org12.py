"""A company of 12 for the view and access tests (R8, R9, R20): region 华东 with two teams, each with a
manager and four reps, plus finance and sales ops. Every rep has customers, open deals in several stages,
leads, a signed contract with a partial payment; one rep per team has an R7 freeze and a ¥500,000 contract
signed without legal approval (R10: it must count nowhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from bot.clock import SettableClock
from store.db import Database
from store.models import BonusFreeze, Contract, Customer, Lead, Opportunity, OrgUnit, Payment, User

TEAMS = {
    "上海一组": ("wangjl", "王经理", [("zhangsan", "张三"), ("lisi", "李四"), ("wangwu", "王五"), ("zhaoliu", "赵六")]),
    "杭州二组": ("liujl", "刘经理", [("sunqi", "孙七"), ("zhouba", "周八"), ("wujiu", "吴九"), ("zhengshi", "郑十")]),
}
FINANCE, OPS = ("caiwu", "财务小刘"), ("yunying", "运营小周")
ORG = {"org": {"finance": (FINANCE[0],), "sales_ops": (OPS[0],)}}
STAGES = ("需求诊断", "方案呈现", "异议处理")


@dataclass
class Company:
    ids: dict[str, int] = field(default_factory=dict)  # wecom userid -> users.id
    names: dict[str, str] = field(default_factory=dict)  # wecom userid -> name
    team_of: dict[str, str] = field(default_factory=dict)  # rep/manager userid -> team name
    manager_of_team: dict[str, str] = field(default_factory=dict)
    customers: dict[str, list[str]] = field(default_factory=dict)  # rep userid -> their customers' names

    def reps(self) -> list[str]:
        return [u for u, team in self.team_of.items() if self.manager_of_team[team] != u]


async def seed_company(db: Database, clock: SettableClock) -> Company:
    now = clock.now()
    co = Company()
    async with db.transaction() as s:
        region = OrgUnit(kind="region", name="华东", created_at=now)
        s.add(region)
        await s.flush()
        for userid, name, roles in ((*FINANCE, ["finance"]), (*OPS, ["sales_ops"])):
            user = User(name=name, wecom_userid=userid, roles=roles, created_at=now)
            s.add(user)
            await s.flush()
            co.ids[userid], co.names[userid] = user.id, name
        for t, (team_name, (mgr_id, mgr_name, reps)) in enumerate(TEAMS.items()):
            team = OrgUnit(kind="team", name=team_name, parent_id=region.id, created_at=now)
            s.add(team)
            await s.flush()
            manager = User(name=mgr_name, wecom_userid=mgr_id, roles=["manager"], team_id=team.id, created_at=now)
            s.add(manager)
            await s.flush()
            team.manager_id = manager.id
            co.ids[mgr_id], co.names[mgr_id], co.team_of[mgr_id] = manager.id, mgr_name, team_name
            co.manager_of_team[team_name] = mgr_id
            for r, (userid, name) in enumerate(reps):
                rep = User(name=name, wecom_userid=userid, roles=["rep"], team_id=team.id, superior_id=manager.id,
                           created_at=now)
                s.add(rep)
                await s.flush()
                co.ids[userid], co.names[userid], co.team_of[userid] = rep.id, name, team_name
                co.customers[userid] = []
                for k, stage in enumerate(STAGES):
                    cname = f"{name}的客户{k + 1}号"
                    customer = Customer(name=cname, owner_id=rep.id, region_id=region.id, industry="IT服务",
                                        created_at=now)
                    s.add(customer)
                    await s.flush()
                    co.customers[userid].append(cname)
                    entered = now - timedelta(days=2 + k)
                    s.add(Opportunity(name=f"{cname}项目", customer_id=customer.id, owner_id=rep.id, stage=stage,
                                      stage_entered_at=entered, last_progress_at=entered,
                                      amount=Decimal(10000 * (t * 4 + r + 1) + 1000 * k), created_at=entered))
                signed = now - timedelta(days=10)
                contract = Contract(customer_id=customer.id, owner_id=rep.id, amount=Decimal(50000 + 1000 * r),
                                    status="signed", legal_approved_at=signed, signed_at=signed, created_at=now)
                s.add(contract)
                await s.flush()
                s.add(Payment(contract_id=contract.id, amount=Decimal(20000), received_at=signed + timedelta(days=2),
                              created_at=now))
                if r == 0:  # R10: signed without legal approval counts nowhere (not in 本月新签, not in rebates)
                    s.add(Contract(customer_id=customer.id, owner_id=rep.id, amount=Decimal(500000), status="signed",
                                   legal_approved_at=None, signed_at=signed, created_at=now))
                    s.add(BonusFreeze(user_id=rep.id, contract_id=contract.id, month=now.strftime("%Y-%m"),
                                      reason=f"{cname} 回款逾期", created_at=now))
                for n in range(2):
                    created = now - timedelta(days=1, hours=n * 3)
                    s.add(Lead(title=f"{name}线索{n}", region_id=region.id, created_at=created, assignee_id=rep.id,
                               assigned_at=created + timedelta(minutes=30),
                               first_contact_at=created + timedelta(hours=1 if n == 0 else 6)))
    return co
