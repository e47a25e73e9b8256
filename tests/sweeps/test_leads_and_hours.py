"""R1 through the real app and fake WeCom, and the machinery every rule shares: exactly once (reruns, two
sweeps at once, a crash before delivery), working hours (R18) and one digest per person."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.clock import SHANGHAI, SettableClock
from store.db import Database
from store.models import Escalation, Lead, Notice, Opportunity, OrgUnit, User
from tests.harness import running_bot, seed_team


async def seed_leads(db: Database, clock: SettableClock, titles: list[str], *, created: datetime) -> dict[str, int]:
    """Sales ops user `ops1`, 王经理 as the region's manager, and unassigned leads in that region."""
    ids = await seed_team(db, clock)
    out: dict[str, int] = {}
    async with db.transaction() as s:
        region = (await s.scalars(select(OrgUnit).where(OrgUnit.kind == "region"))).one()
        region.manager_id = ids["wangjl"]
        s.add(User(name="运营小周", wecom_userid="ops1", roles=["sales_ops"], created_at=clock.now()))
        for title in titles:
            lead = Lead(title=title, region_id=region.id, created_at=created)
            s.add(lead)
            await s.flush()
            out[title] = lead.id
    return out


OPS = {"org": {"sales_ops": ("ops1",)}}


def _bot(db_url: str, clock: SettableClock, **kw: Any) -> Any:
    """The app with sales ops configured, the sender driven by settle() (deterministic)."""
    return running_bot(db_url, clock, run_sender=False, overrides=OPS, **kw)


async def test_r1_fires_once_just_after_two_hours_to_ops_and_the_region_manager(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R1: at 1:59 nothing; at 2:01 one message each to sales ops and the region's manager; never again."""
    created = clock.now()
    leads = await seed_leads(db, clock, ["华东 官网咨询 张先生"], created=created)
    async with _bot(db_url, clock) as bot:
        clock.advance(timedelta(hours=1, minutes=59))
        assert await bot.run_job("sweeps") == 0
        assert bot.texts("ops1") == [] and bot.texts("wangjl") == []
        clock.advance(timedelta(minutes=2))
        assert await bot.run_job("sweeps") == 1
        for who in ("ops1", "wangjl"):
            [text] = bot.texts(who)
            assert "线索「华东 官网咨询 张先生」已创建 2 小时仍未分配" in text
        assert bot.texts("zhangsan") == []
        clock.advance(timedelta(minutes=5))
        assert await bot.run_job("sweeps") == 0  # rerun: nothing twice
        async with db.transaction() as s:  # fixed: assigned; a new lead later does not re-alert the old one
            lead = await s.get(Lead, leads["华东 官网咨询 张先生"])
            assert lead is not None
            lead.assigned_at, lead.assignee_id = clock.now(), None
        clock.advance(timedelta(hours=3))
        assert await bot.run_job("sweeps") == 0
        assert len(bot.texts("ops1")) == 1 and len(bot.texts("wangjl")) == 1


async def test_r18_due_saturday_night_arrives_monday_nine_once(db_url: str, db: Database, clock: SettableClock) -> None:
    """R18: an alert due at 23:00 on Saturday waits through Sunday and arrives Monday 09:00, once."""
    saturday_21 = datetime(2026, 12, 5, 21, 0, tzinfo=SHANGHAI)
    clock.set(saturday_21)
    await seed_leads(db, clock, ["周末咨询"], created=saturday_21)
    async with _bot(db_url, clock) as bot:
        clock.set(datetime(2026, 12, 5, 23, 0, tzinfo=SHANGHAI))
        assert await bot.run_job("sweeps") == 1  # fired now …
        assert bot.texts("ops1") == []  # … but held
        for at in (datetime(2026, 12, 6, 10, 0, tzinfo=SHANGHAI), datetime(2026, 12, 7, 8, 59, tzinfo=SHANGHAI)):
            clock.set(at)
            await bot.run_job("sweeps")
            assert bot.texts("ops1") == []
        clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI))
        await bot.run_job("sweeps")
        await bot.run_job("notices")
        # R1 once each (王经理 also gets R2's Sunday 09:30 phone-review card for Saturday, held until now too)
        assert len(bot.texts("ops1")) == 1 and len([t for t in bot.texts("wangjl") if t.startswith("⏰")]) == 1
        [message] = bot.fake.delivered("ops1")
        assert message.at.astimezone(SHANGHAI) == datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)


async def test_nudges_due_together_arrive_as_one_digest(db_url: str, db: Database, clock: SettableClock) -> None:
    """Twelve leads overdue at once: one message per person, a numbered digest (10 lines + a count)."""
    await seed_leads(db, clock, [f"线索{i:02d}" for i in range(12)], created=clock.now())
    async with _bot(db_url, clock) as bot:
        clock.advance(timedelta(hours=2, minutes=1))
        assert await bot.run_job("sweeps") == 12
        [digest] = bot.texts("ops1")
        assert digest.startswith("📋 你有 12 条提醒") and "10. " in digest and "另有 2 条" in digest


async def test_crash_between_escalation_and_delivery_delivers_once_after_restart(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """The sweep commits escalation + notices, the process dies before the notices job: after a restart
    the notice goes out once; a second sweep run finds the escalation and writes nothing."""
    from jobs.sweeps.leads import run as r1

    await seed_leads(db, clock, ["官网咨询"], created=clock.now())
    clock.advance(timedelta(hours=3))
    async with _bot(db_url, clock) as bot:
        assert await r1(bot.deps, clock.now()) == 1  # only the sweep: "crash" before notices/sender
    async with _bot(db_url, clock) as bot:  # restarted
        await bot.run_job("sweeps")
        await bot.run_job("sweeps")
        assert len(bot.texts("ops1")) == 1
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Escalation)) == 1
        assert await s.scalar(select(func.count()).select_from(Notice)) == 2


async def test_two_sweeps_at_once_send_nothing_twice(db_url: str, db: Database, clock: SettableClock) -> None:
    """Two app instances on one database run the sweeps concurrently (PostgreSQL: two connections)."""
    import asyncio

    from jobs.registry import registry

    await seed_leads(db, clock, [f"并发线索{i}" for i in range(30)], created=clock.now())
    clock.advance(timedelta(hours=3))
    async with _bot(db_url, clock) as one, _bot(db_url, clock, fake=one.fake) as two:
        job = registry()["sweeps"]
        counts = await asyncio.gather(job(one.deps, clock.now()), job(two.deps, clock.now()),
                                      job(one.deps, clock.now()), job(two.deps, clock.now()))
        assert sum(counts) == 30
        await one.settle()
        await two.settle()
        assert len(one.fake.delivered("ops1")) == 1 and len(one.fake.delivered("wangjl")) == 1
        assert "30 条提醒" in (one.texts("ops1")[0])


async def test_six_hours_down_then_each_due_item_is_sent_once(db_url: str, db: Database, clock: SettableClock) -> None:
    """The server is down from Thursday 09:00 to 15:00 while deals pass R3's 72 h and R4's stage limit:
    the first sweep after the restart sends each due item once, and nothing more follows."""
    from tests.harness import seed_customers

    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)  # three deals, stage entered and last progress Monday 10:00
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI))  # 71 h: nothing due yet
    async with _bot(db_url, clock) as bot:
        await bot.run_job("sweeps")
        assert bot.texts("zhangsan") == [] and bot.texts("wangjl") == []
    clock.set(datetime(2026, 12, 3, 15, 0, tzinfo=SHANGHAI))  # back after six hours
    async with _bot(db_url, clock) as bot:
        await bot.run_job("sweeps")
        stale_zhangsan, stale_lisi = bot.texts("zhangsan"), bot.texts("lisi")
        cards = [m for m in bot.fake.delivered("wangjl") if m.msgtype == "template_card"]
        assert len(stale_zhangsan) == 1 and len(stale_lisi) == 1  # one message each: 张三's two deals as a digest
        assert len(cards) == 3  # one R4 card per stalled deal
        for _ in range(3):
            clock.advance(timedelta(minutes=1))
            await bot.run_job("sweeps")
        assert bot.texts("zhangsan") == stale_zhangsan and len(bot.fake.delivered("wangjl")) == len(cards)


async def test_held_overnight_then_fixed_before_nine_is_not_sent(db_url: str, db: Database,
                                                                  clock: SettableClock) -> None:
    """R18 + the fix: an R1 alert and an R4 card fired on Saturday night wait for Monday 09:00; the lead is
    assigned and the deal moves on Monday 08:00, so at 09:00 nothing about them is sent."""
    from tests.harness import seed_customers

    saturday = datetime(2026, 12, 5, 18, 0, tzinfo=SHANGHAI)
    clock.set(saturday - timedelta(hours=73))  # the deals entered their stage Wednesday 17:00
    leads = await seed_leads(db, clock, ["周末咨询"], created=saturday)
    customers = await seed_customers(db, clock, await _ids(db))
    async with _bot(db_url, clock) as bot:
        clock.set(datetime(2026, 12, 5, 23, 0, tzinfo=SHANGHAI))
        await bot.run_job("sweeps")  # R1 for the lead, R4 cards for the three deals: all held
        assert bot.texts("ops1") == [] and bot.fake.delivered("wangjl") == []
        clock.set(datetime(2026, 12, 7, 8, 0, tzinfo=SHANGHAI))
        async with db.transaction() as s:
            lead = await s.get(Lead, leads["周末咨询"])
            assert lead is not None
            lead.assigned_at = clock.now()
            for opp in (await s.scalars(select(Opportunity))).all():
                if opp.customer_id != customers["hongda"]:
                    opp.stage, opp.stage_entered_at, opp.last_progress_at = "方案呈现", clock.now(), clock.now()
        clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI))
        await bot.run_job("notices")
        assert bot.texts("ops1") == []  # the lead was assigned
        cards = [m for m in bot.fake.delivered("wangjl") if m.msgtype == "template_card"]
        assert len(cards) == 1 and "宏达零售" in str(cards[0].body)  # only the deal that did not move
        async with db.sessions() as s:
            withdrawn = await s.scalar(select(func.count()).select_from(Notice).where(Notice.status == "withdrawn"))
        assert withdrawn == 4  # R1 × (ops1, 王经理) and two R4 cards


async def _ids(db: Database) -> dict[str, int]:
    async with db.sessions() as s:
        return {u.wecom_userid: u.id for u in (await s.scalars(select(User))).all() if u.wecom_userid}


async def test_a_recipient_too_long_for_the_outbox_is_dead_not_a_poison(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """A notice whose recipient cannot fit the outbox's column (a rule's bug) is marked dead and logged; the
    other notices of the same run still go out (on PostgreSQL the insert would otherwise fail every run)."""
    from jobs.notices import calendar_of
    from store.repos.escalations import EscalationRepo

    await seed_leads(db, clock, ["官网咨询"], created=clock.now())
    clock.advance(timedelta(hours=3))
    async with _bot(db_url, clock) as bot:
        async with db.transaction() as s:
            esc = await EscalationRepo(s).fire("R1", "lead", 999, "bad", clock.now(), recipients=[])
            assert esc is not None
            EscalationRepo(s).notify(esc, "|".join(f"user{i:03d}" for i in range(12)), now=clock.now(),
                                     calendar=calendar_of(bot.deps.settings), text="太长")
        await bot.run_job("sweeps")
        assert len(bot.texts("ops1")) == 1
        async with db.sessions() as s:
            statuses = dict((await s.execute(select(Notice.recipient, Notice.status))).all())
        assert [v for k, v in statuses.items() if len(k) > 64] == ["dead"]
