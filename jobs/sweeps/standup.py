"""R16 Monday stand-up: the 09:00 prompt to every active rep, and at 10:00 (or as soon as the whole team has
answered) one table per team to its manager: who answered, their TOP3 stuck, whose support, by when, and who
has not answered.

Both run on their own cron (jobs/scheduler.py) and inside the every-minute `sweeps` job, where they do
nothing outside their window (bot/rules/standup.py): the prompt from 09:00 until the table time (a server
started at 09:30 still asks, and its teams' tables wait the same hour: 10:30), the table from its time until
the end of the day, and only for a team that was asked or has answered. The prompt is unique per (R16P, rep,
week), the table per (R16T, team, week); the answer handler (handlers/standup.py) fires the same R16T when
an answer completes the team, so the 10:00 run finds it and sends nothing twice, and an answer after the
table sends no second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.deps import Deps
from bot.nlu.standup import is_none
from bot.rules.standup import StandupDay, standup_day
from handlers.standup import PROMPT, date_label, prompt_rep
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, not_fired, userids
from store.models import Escalation, OrgUnit, StandupAnswer, User
from store.repos.conversations import ConversationRepo
from store.repos.escalations import EscalationRepo
from store.repos.standups import StandupRepo

RULE_PROMPT = "R16P"
RULE_TABLE = "R16T"
CHANNEL = "wecom"
TABLE_TITLE = "📋 {team} 周会汇总（{week}这周）：{answered}/{total} 人已回复"
TABLE_ANSWER = "✅ {name}\n  卡点：{stuck}\n  需要支持：{support}\n  预计解决：{date}"
TABLE_NOTHING_STUCK = "✅ {name}：本周没有卡点"
TABLE_MISSING = "⏳ 未回复：{names}"
NOT_GIVEN = "—"


def schedule(settings: Settings, now: datetime) -> StandupDay | None:
    """This week's stand-up, or None when the week has none."""
    r = settings.rules
    return standup_day(now, weekday=r.standup_weekday, prompt_at=time.fromisoformat(r.standup_prompt_at),
                       table_at=time.fromisoformat(r.standup_table_at), calendar=calendar_of(settings))


async def run_prompt(deps: Deps, now: datetime) -> int:
    """R16: ask every active rep who has not answered yet (once a week), from the prompt time until the table
    time, inside working hours; their next text is the answer until the table goes."""
    settings = deps.settings
    calendar = calendar_of(settings)
    day = schedule(settings, now)
    if day is None or not day.prompt <= now < day.table or not calendar.is_open(now):
        return 0
    week = day.week.isoformat()
    # The state lasts until the table (a late prompt: the same gap from now), never less than a normal flow.
    ttl = max(max(day.table, now + day.gap) - now, timedelta(minutes=settings.conversation.state_ttl_minutes))
    fired, after = 0, 0
    while True:
        async with deps.db.transaction() as s:
            users = (await s.scalars(
                select(User)
                .where(User.id > after, User.active.is_(True), User.wecom_userid.is_not(None),
                       not_fired(RULE_PROMPT, "user", User.id, week),
                       not_fired(RULE_TABLE, "team", func.coalesce(User.team_id, 0), week),  # the table went
                       ~exists().where(StandupAnswer.user_id == User.id, StandupAnswer.week == day.week))
                .order_by(User.id)
                .limit(BATCH)
            )).all()
            repo, conversations, standups = EscalationRepo(s), ConversationRepo(s), StandupRepo(s)
            for user in users:
                userid = user.wecom_userid
                if "rep" not in (user.roles or []) or not userid:
                    continue
                await _conversation_lock(s, CHANNEL, userid)
                if await standups.of_week(day.week, [user.id]):
                    continue  # answered while we waited for the lock
                esc = await repo.fire(RULE_PROMPT, "user", user.id, week, now, recipients=[userid])
                if esc is None:
                    continue
                await prompt_rep(conversations, channel=CHANNEL, conversation_key=userid, user_id=user.id, now=now,
                                 ttl=ttl)
                repo.notify(esc, userid, now=now, calendar=calendar, text=PROMPT)
                fired += 1
        if len(users) < BATCH:
            return fired
        after = users[-1].id


async def run_table(deps: Deps, now: datetime) -> int:
    """R16: each team's table, once the team has all answered or its table time has come (the stand-up day
    only, teams that were asked); returns tables fired."""
    settings = deps.settings
    day = schedule(settings, now)
    if day is None or not day.prompt <= now < day.closes:
        return 0
    fired, after = 0, 0
    while True:
        async with deps.db.transaction() as s:
            teams = (await s.scalars(
                select(OrgUnit)
                .where(OrgUnit.id > after, OrgUnit.kind == "team",
                       not_fired(RULE_TABLE, "team", OrgUnit.id, day.week.isoformat()))
                .order_by(OrgUnit.id)
                .limit(BATCH)
            )).all()
            standups = StandupRepo(s)
            for team in teams:
                reps = await standups.team_reps(team.id)
                answers = await standups.of_week(day.week, [r.id for r in reps])
                if len(answers) < len(reps):
                    first = await _first_prompt(s, day.week, reps)
                    if first is None and not answers:
                        continue  # nobody of the team was asked (nor answered): no stand-up to report
                    if now < max(day.table, first + day.gap if first is not None else day.table):
                        continue
                if await fire_table(s, settings, team, reps, answers, day.week, now):
                    fired += 1
        if len(teams) < BATCH:
            return fired
        after = teams[-1].id


async def table_if_all_answered(session: AsyncSession, settings: Settings, team_id: int, week: date,
                                now: datetime) -> bool:
    """R16, from the answer handler: when every active rep of the team has answered the week, its table goes
    now (not at 10:00). True when this call fired it."""
    standups = StandupRepo(session)
    await standups.lock_team(team_id)
    team = await session.get(OrgUnit, team_id)
    if team is None or team.kind != "team":
        return False
    reps = await standups.team_reps(team_id)
    answers = await standups.of_week(week, [r.id for r in reps])
    if len(answers) < len(reps):
        return False
    return await fire_table(session, settings, team, reps, answers, week, now)


async def fire_table(session: AsyncSession, settings: Settings, team: OrgUnit, reps: Sequence[User],
                     answers: dict[int, StandupAnswer], week: date, now: datetime) -> bool:
    """The team's table to its manager (else the region's), unique per (R16T, team, week). False when there
    is nobody to tell or nothing to show (left for a later run), or when it already went."""
    manager_id = team.manager_id
    if manager_id is None and team.parent_id is not None:
        region = await session.get(OrgUnit, team.parent_id)
        manager_id = region.manager_id if region is not None else None
    recipients = await userids(session, [manager_id])
    if not reps or not recipients:
        return False
    answered = [r for r in reps if r.id in answers]
    missing = [r for r in reps if r.id not in answers]
    repo = EscalationRepo(session)
    esc = await repo.fire(RULE_TABLE, "team", team.id, week.isoformat(), now, recipients=recipients,
                          data={"answered": [r.id for r in answered], "missing": [r.id for r in missing]})
    if esc is None:
        return False
    body = table_text(team.name, week, answered, missing, answers)
    calendar = calendar_of(settings)
    for recipient in recipients:
        repo.notify(esc, recipient, now=now, calendar=calendar, text=body)
    return True


def table_text(team: str, week: date, answered: Sequence[User], missing: Sequence[User],
               answers: dict[int, StandupAnswer]) -> str:
    lines = [TABLE_TITLE.format(team=team, week=f"{week.month}月{week.day}日", answered=len(answered),
                                total=len(answered) + len(missing))]
    for rep in answered:
        answer = answers[rep.id]
        if is_none(answer.stuck):
            lines.append(TABLE_NOTHING_STUCK.format(name=rep.name))
            continue
        lines.append(TABLE_ANSWER.format(
            name=rep.name, stuck=answer.stuck or NOT_GIVEN, support=answer.support or NOT_GIVEN,
            date=date_label(answer.resolve_by, week) if answer.resolve_by else NOT_GIVEN,
        ))
    if missing:
        lines.append(TABLE_MISSING.format(names="、".join(r.name for r in missing)))
    return "\n".join(lines)


async def _first_prompt(session: AsyncSession, week: date, reps: Sequence[User]) -> datetime | None:
    """When the team was first asked this week: a prompt that went late (the server was down at 09:00)
    moves the table by the same gap, so reps always get their hour."""
    if not reps:
        return None
    return await session.scalar(
        select(func.min(Escalation.created_at)).where(
            Escalation.rule == RULE_PROMPT, Escalation.subject_type == "user", Escalation.period == week.isoformat(),
            Escalation.subject_id.in_([r.id for r in reps]))
    )


async def _conversation_lock(session: AsyncSession, channel: str, key: str) -> None:
    """The dispatcher's per-conversation lock (bot/dispatch/dispatcher.py, same key): a message being
    handled for this rep finishes before the prompt state is written, so it cannot overwrite it. SQLite
    has a single writer anyway."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{channel}:{key}"})
