"""R9 weekly scores by SQL aggregates and R11 exemption storage, on SQLite and PostgreSQL.

Week W49 is Monday 2026-11-30 00:00 – Sunday 12-06 24:00 Asia/Shanghai (= 11-29 16:00 – 12-06 16:00 UTC).
Default settings: weights 0.4/0.3/0.3, SLA 首次需求确认 24 h, any other action 72 h, attachment kinds ["doc"].
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import SHANGHAI
from bot.rules.score import ScoreSettings, parse_score_settings, what_to_fix
from store.db import Database
from store.models import (
    Activity,
    ActivityAttachment,
    Attachment,
    Customer,
    KeyAction,
    Opportunity,
    User,
    WeeklyScore,
)
from store.repos import scores

W49 = datetime(2026, 11, 30, 0, 0, tzinfo=SHANGHAI)
MON49, MON50 = date(2026, 11, 30), date(2026, 12, 7)
AFTER = W49 + timedelta(days=7, hours=10)  # Monday W50 10:00: W49 is complete
SETTINGS = ScoreSettings()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Day 0 = Monday of W49, Asia/Shanghai."""
    return W49 + timedelta(days=day, hours=hour, minutes=minute)


@pytest.fixture
def utc_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server runs in UTC: nothing may depend on the process's local zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Seed:
    def __init__(self, s: Any) -> None:
        self.s = s
        self.n = 0

    async def user(self, name: str, roles: list[str], active: bool = True) -> int:
        u = User(name=name, roles=roles, active=active, created_at=at(-30, 9))
        self.s.add(u)
        await self.s.flush()
        return u.id

    async def opp(self, owner: int, closed_at: datetime | None = None) -> int:
        self.n += 1
        c = Customer(name=f"客户{self.n}", owner_id=owner, created_at=at(-30, 9))
        self.s.add(c)
        await self.s.flush()
        o = Opportunity(name=f"商机{self.n}", customer_id=c.id, owner_id=owner, stage="需求诊断",
                        stage_entered_at=at(-20, 9), last_progress_at=at(-1, 9), created_at=at(-20, 9),
                        status="lost" if closed_at else "open", closed_at=closed_at)
        self.s.add(o)
        await self.s.flush()
        return o.id

    async def action(self, opp: int, name: str, *, due: datetime | None = None, created: datetime | None = None,
                     attached: datetime | None = None, signed: datetime | None = None) -> int:
        k = KeyAction(opportunity_id=opp, name=name, due_at=due, created_at=created or at(-10, 9),
                      attachment_media_id=f"m-{opp}-{name}" if attached else None, attached_at=attached,
                      signed_off_at=signed)
        self.s.add(k)
        await self.s.flush()
        return k.id

    async def activity(self, user: int, kind: str, when: datetime, *, file: str | None = None) -> int:
        """An activity; file = an attachment status ("stored", "expired") linked to it."""
        a = Activity(kind=kind, user_id=user, occurred_at=when, source="wecom", created_at=when)
        self.s.add(a)
        await self.s.flush()
        if file is not None:
            self.n += 1
            f = Attachment(channel="wecom", media_id=f"doc-{self.n}", msg_type="file", user_id=user, status=file,
                           received_at=when, expires_at=when + timedelta(days=3), next_attempt_at=when,
                           created_at=when)
            self.s.add(f)
            await self.s.flush()
            self.s.add(ActivityAttachment(activity_id=a.id, attachment_id=f.id, created_at=when))
            await self.s.flush()
        return a.id


async def seed_team(db: Database) -> dict[str, int]:
    """Three reps (张三, 李四, 王五), a manager and a former rep; W49's key actions and activities."""
    async with db.transaction() as s:
        seed = Seed(s)
        ids = {"zhang": await seed.user("张三", ["rep"]), "li": await seed.user("李四", ["manager", "rep"]),
               "wang": await seed.user("王五", ["rep"]), "boss": await seed.user("赵总", ["manager"]),
               "gone": await seed.user("钱七", ["rep"], active=False)}
        # 张三: five key actions due in W49, two doc activities and a visit.
        o = await seed.opp(ids["zhang"])
        await seed.action(o, "需求调研报告", due=at(1, 10), attached=at(1, 8), signed=at(1, 9))     # done, on time
        await seed.action(o, "客户签字页", due=at(2, 10), attached=at(2, 8), signed=at(3, 10))     # done, late
        await seed.action(o, "竞品分析提交", due=at(4, 10), attached=at(4, 9))                     # attached only
        await seed.action(o, "POC测试报告归档", due=at(5, 10), attached=at(5, 9), signed=at(8, 10))  # signed next week
        o2 = await seed.opp(ids["zhang"])
        # No due_at: 首次需求确认's SLA is 24 h from creation (Mon 10:00 → Tue 10:00); signed Mon 12:30.
        await seed.action(o2, "首次需求确认", created=at(0, 10), attached=at(0, 12), signed=at(0, 12, 30))
        await seed.activity(ids["zhang"], "doc", at(2, 15), file="stored")
        await seed.activity(ids["zhang"], "doc", at(3, 15))
        await seed.activity(ids["zhang"], "visit", at(3, 16))  # not an attachment kind
        await seed.activity(ids["zhang"], "doc", at(7, 0))  # Monday W50 00:00: next week
        # 李四: two key actions due in W49, three that are not, one doc activity whose file expired.
        o = await seed.opp(ids["li"])
        await seed.action(o, "合同签字页", due=at(6, 23, 59))                                      # due, nothing done
        # No due_at, default 72 h: created Thu 12:00 → due Sun 12:00; signed Sun 11:00.
        await seed.action(o, "需求调研报告", created=at(3, 12), attached=at(6, 10), signed=at(6, 11))
        await seed.action(o, "客户签字页", created=at(5, 10))  # due Tuesday W50
        await seed.action(o, "回款确认单", due=at(7, 0))  # Monday W50 00:00
        lost = await seed.opp(ids["li"], closed_at=at(2, 9))
        await seed.action(lost, "竞品分析提交", due=at(3, 10))  # the deal was lost before: not due
        await seed.activity(ids["li"], "doc", at(4, 11), file="expired")
        # 王五: nothing in W49 (one key action the week before).
        o = await seed.opp(ids["wang"])
        await seed.action(o, "需求调研报告", due=at(-1, 10))
    return ids


def row_tuple(row: WeeklyScore) -> tuple[Any, ...]:
    return (row.due, row.done, row.on_time, row.need_attachment, row.with_attachment, row.completion,
            row.timeliness, row.completeness, row.score)


async def week_rows(db: Database, monday: date) -> dict[int, WeeklyScore]:
    async with db.sessions() as s:
        rows = await s.scalars(select(WeeklyScore).where(WeeklyScore.week_start == monday))
        return {r.user_id: r for r in rows}


async def test_r9_hand_computed_team_week(db: Database, utc_process: None) -> None:
    ids = await seed_team(db)
    async with db.transaction() as s:
        assert await scores.compute_week(s, MON49, AFTER, SETTINGS) == 3
    rows = await week_rows(db, MON49)
    assert set(rows) == {ids["zhang"], ids["li"], ids["wang"]}  # reps only; the inactive one had nothing
    d = Decimal
    # 张三: due 5; done 3 (调研报告, 签字页, 需求确认; POC was signed the next week); on time 2 (签字页 late);
    # attachments: 5 key actions attached + 1 of 2 doc activities → 6/7.
    # 100 × (0.4·3/5 + 0.3·2/5 + 0.3·6/7) = 100 × (0.24 + 0.12 + 0.257142…) = 61.714… → 61.7
    assert row_tuple(rows[ids["zhang"]]) == (5, 3, 2, 7, 6, d("0.6"), d("0.4"), d("0.8571"), d("61.7"))
    # 李四: due 2 (合同签字页 Sun 23:59; 调研报告 by its 72 h SLA); done and on time 1; attachments: 1 key action
    # of 2, the doc activity's file expired → 1/3. 100 × (0.4·1/2 + 0.3·1/2 + 0.3·1/3) = 20 + 15 + 10 = 45.0
    assert row_tuple(rows[ids["li"]]) == (2, 1, 1, 3, 1, d("0.5"), d("0.5"), d("0.3333"), d("45.0"))
    # 王五: nothing due or recorded: every part 1 (nothing was missed), the counts say so.
    assert row_tuple(rows[ids["wang"]]) == (0, 0, 0, 0, 0, 1, 1, 1, d("100.0"))
    assert rows[ids["zhang"]].week == "2026-W49" and rows[ids["zhang"]].computed_at == AFTER
    fixes = what_to_fix(scores.counts_of(rows[ids["li"]]), SETTINGS)
    # completion 100·0.4·1/2 = 20 ties completeness 100·0.3·2/3 = 20 (parts' order); timeliness 100·0.3·1/2 = 15
    assert [f.text for f in fixes] == ["完成 1 个关键动作（附件 + 负责人确认） +20.0 分",
                                       "补齐 2 条记录的附件 +20.0 分",
                                       "在截止时间前完成 1 个关键动作 +15.0 分"]


async def test_r9_week_boundary_is_shanghai_midnight(db: Database, utc_process: None) -> None:
    async with db.transaction() as s:
        seed = Seed(s)
        rep = await seed.user("张三", ["rep"])
        o = await seed.opp(rep)
        # Sunday 23:59 Shanghai = Sunday 15:59 UTC: W49. Monday 00:00 Shanghai = Sunday 16:00 UTC: W50.
        await seed.action(o, "合同签字页", due=datetime(2026, 12, 6, 15, 59, tzinfo=UTC))
        await seed.action(o, "回款确认单", due=datetime(2026, 12, 6, 16, 0, tzinfo=UTC), attached=at(6, 20),
                          signed=at(6, 21))
    async with db.transaction() as s:
        await scores.compute_week(s, MON49, AFTER, SETTINGS)
        await scores.compute_week(s, MON50, AFTER + timedelta(days=7), SETTINGS)
    w49, w50 = (await week_rows(db, MON49))[rep], (await week_rows(db, MON50))[rep]
    assert (w49.due, w49.done) == (1, 0) and w49.score == Decimal("0.0")
    assert (w50.due, w50.done, w50.on_time) == (1, 1, 1) and w50.score == Decimal("100.0")


async def test_r9_a_running_week_counts_what_fell_due_so_far(db: Database) -> None:
    ids = await seed_team(db)
    async with db.transaction() as s:  # Wednesday 12:00: 张三's Tue 10:00 (x2) and Wed 10:00 actions only
        await scores.compute_week(s, MON49, at(2, 12), SETTINGS)
    row = (await week_rows(db, MON49))[ids["zhang"]]
    # due 3, done 2 (Thursday's late sign-off has not happened yet), on time 2; attached 3/3 + doc 0 so far
    assert (row.due, row.done, row.on_time, row.need_attachment, row.with_attachment) == (3, 2, 2, 3, 3)


async def test_r9_recomputing_a_week_updates_in_place(db: Database) -> None:
    ids = await seed_team(db)
    async with db.transaction() as s:
        await scores.compute_week(s, MON49, AFTER, SETTINGS)
    first = {u: (r.id, row_tuple(r)) for u, r in (await week_rows(db, MON49)).items()}
    async with db.transaction() as s:
        assert await scores.compute_week(s, MON49, AFTER + timedelta(hours=1), SETTINGS) == 3
    again = await week_rows(db, MON49)
    assert {u: (r.id, row_tuple(r)) for u, r in again.items()} == first
    assert again[ids["zhang"]].computed_at == AFTER + timedelta(hours=1)
    # 李四's 合同签字页 was done in time after all (a late import): the recomputed week says so.
    async with db.transaction() as s:
        ka = await s.scalar(select(KeyAction).where(KeyAction.name == "合同签字页"))
        assert ka is not None
        ka.attachment_path, ka.attached_at, ka.signed_off_at = "/files/x.pdf", at(6, 9), at(6, 10)
        await scores.compute_week(s, MON49, AFTER, SETTINGS)
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(WeeklyScore)) == 3
    li = (await week_rows(db, MON49))[ids["li"]]
    # 100 × (0.4·2/2 + 0.3·2/2 + 0.3·2/3) = 90.0
    assert row_tuple(li)[:5] == (2, 2, 2, 3, 2) and li.score == Decimal("90.0") and li.id == first[ids["li"]][0]


async def test_r9_settings_change_what_is_counted(db: Database) -> None:
    ids = await seed_team(db)
    # No implied deadlines and no attachment kinds: only key actions with a due_at count.
    settings = parse_score_settings({"sla_hours": {"首次需求确认": 0}, "default_sla_hours": 0,
                                     "attachment_kinds": []})
    async with db.transaction() as s:
        await scores.compute_week(s, MON49, AFTER, settings)
    rows = await week_rows(db, MON49)
    assert row_tuple(rows[ids["zhang"]])[:5] == (4, 2, 1, 4, 4)
    assert row_tuple(rows[ids["li"]])[:5] == (1, 0, 0, 1, 0)
    # Only the listed action has an SLA: 李四's 需求调研报告 (no due_at, not listed) is never due.
    settings = parse_score_settings({"sla_hours": {"首次需求确认": 24}, "default_sla_hours": 0})
    async with db.transaction() as s:
        await scores.compute_week(s, MON49, AFTER, settings)
    rows = await week_rows(db, MON49)
    assert row_tuple(rows[ids["zhang"]])[:3] == (5, 3, 2) and row_tuple(rows[ids["li"]])[:3] == (1, 0, 0)


async def test_r9_trend_and_team_views(db: Database) -> None:
    ids = await seed_team(db)
    async with db.transaction() as s:
        for week in range(-3, 1):
            monday = MON49 + timedelta(weeks=week)
            await scores.compute_week(s, monday, AFTER, SETTINGS)
    async with db.sessions() as s:
        trend = await scores.for_user(s, ids["zhang"], weeks=3)
        assert [r.week for r in trend] == ["2026-W47", "2026-W48", "2026-W49"]
        assert [r.week for r in await scores.for_user(s, ids["zhang"], weeks=2, until=date(2026, 11, 29))] == [
            "2026-W47", "2026-W48"]
        team = await scores.team_scores(s, [ids["zhang"], ids["li"], ids["boss"]], date(2026, 12, 3))
        assert {u: r.score for u, r in team.items()} == {ids["zhang"]: Decimal("61.7"), ids["li"]: Decimal("45.0")}
        assert [r.score for r in await scores.for_user(s, ids["wang"], weeks=2)] == [Decimal("0.0"),
                                                                                      Decimal("100.0")]


# ---------------------------------------------------------------- R11


async def _store_scores(db: Database, user_id: int, by_week: dict[date, str]) -> None:
    async with db.transaction() as s:
        for monday, score in by_week.items():
            s.add(WeeklyScore(user_id=user_id, week=f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
                              week_start=monday, due=0, done=0, on_time=0, need_attachment=0, with_attachment=0,
                              completion=Decimal(1), timeliness=Decimal(1), completeness=Decimal(1),
                              score=Decimal(score), computed_at=AFTER))


async def test_r11_eligibility_from_stored_weeks(db: Database) -> None:
    async with db.transaction() as s:
        seed = Seed(s)
        a, b, c = [await seed.user(n, ["rep"]) for n in ("甲", "乙", "丙")]
    w = [MON49 - timedelta(weeks=k) for k in (2, 1, 0)]  # W47, W48, W49
    await _store_scores(db, a, {w[0]: "96.0", w[1]: "99.5", w[2]: "95.1"})
    await _store_scores(db, b, {w[0]: "96.0", w[1]: "95.0", w[2]: "97.0"})  # exactly 95 is not above
    await _store_scores(db, c, {w[0] - timedelta(weeks=1): "99.0", w[0]: "99.0", w[2]: "99.0"})  # W48 missing
    async with db.sessions() as s:
        assert await scores.eligible(s, a, AFTER, SETTINGS)
        assert not await scores.eligible(s, b, AFTER, SETTINGS)
        assert not await scores.eligible(s, c, AFTER, SETTINGS)
        # On Sunday of W49 the last complete week is W48: 甲 has only W47 and W48 complete before it → W46 missing.
        assert not await scores.eligible(s, a, at(6, 12), SETTINGS)


async def test_r11_grant_and_lookup(db: Database) -> None:
    async with db.transaction() as s:
        rep = await Seed(s).user("张三", ["rep"])
    async with db.transaction() as s:
        row = await scores.grant(s, rep, MON50 + timedelta(days=3), ["duration", "location"], AFTER)
        assert (row.week, row.week_start, row.fields) == ("2026-W50", MON50, ["duration", "location"])
    async with db.transaction() as s:  # asking again for the same week replaces the fields
        row = await scores.grant(s, rep, MON50, ["keywords"], AFTER + timedelta(hours=1))
        assert row.fields == ["keywords"] and row.granted_at == AFTER + timedelta(hours=1)
    async with db.sessions() as s:
        w50_start = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)  # Monday W50 00:00 Shanghai
        active = await scores.active_for(s, rep, w50_start)
        assert active is not None and active.fields == ["keywords"]
        assert await scores.active_for(s, rep, w50_start - timedelta(microseconds=1)) is None  # Sunday W49
        assert await scores.active_for(s, rep, w50_start + timedelta(days=7)) is None  # W51
