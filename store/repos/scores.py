"""R9 weekly process health scores, counted for all reps at once by SQL aggregates, and R11 exemptions.

`compute_week` counts one Asia/Shanghai week (definitions in bot/rules/score.py) with two GROUP BY statements —
key actions per opportunity owner, activities of the attachment kinds per rep — that read only that week's rows
through ix_key_actions_due_created and ix_activities_kind_time; Python only walks the per-rep aggregate rows.
It then upserts one WeeklyScore per rep (every active user with the "rep" role, plus anyone else who had
something due) in statements of 1,000 rows: recomputing a week replaces its rows.

Attribution: key actions count for the opportunity's *current* owner (ownership history is not kept);
activities for the rep who recorded them. A key action of a deal closed (won/lost) before its deadline is not
due. A week still running is counted up to `now`: what has fallen due so far, done by now.

Like every repository, nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Float, Select, Text, and_, case, cast, exists, func, literal, null, or_, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from bot.rules.metrics import last_complete_week, local_day, monday_of, week_bounds, week_label
from bot.rules.score import ScoreParts, ScoreSettings, WeekCounts, WeekScore, exemption_eligible, score_parts
from store.models import Activity, ActivityAttachment, Attachment, Exemption, KeyAction, Opportunity, User, WeeklyScore
from store.types import UTCDateTime

BATCH = 1000
REP_ROLE = '%"rep"%'  # users.roles is a JSON list such as ["manager", "rep"]
UPDATED = ("week_start", "due", "done", "on_time", "need_attachment", "with_attachment", "completion",
           "timeliness", "completeness", "score", "computed_at")


# ---------------------------------------------------------------- timestamp + seconds, in either dialect


class plus_seconds(FunctionElement[datetime]):
    """A UTCDateTime column plus a number of seconds. SQLite keeps these as naive UTC text
    ("YYYY-MM-DD HH:MM:SS.ffffff"), so the result is built in that very format and compares as text."""

    type = UTCDateTime()
    inherit_cache = True
    name = "plus_seconds"


@compiles(plus_seconds, "postgresql")
def _plus_seconds_pg(element: plus_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    at, seconds = list(element.clauses)
    return f"({compiler.process(at, **kw)} + make_interval(secs => {compiler.process(seconds, **kw)}))"


@compiles(plus_seconds, "sqlite")
def _plus_seconds_sqlite(element: plus_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    at, seconds = list(element.clauses)
    # strftime's %f gives milliseconds ("SS.SSS"); three zeros make the stored six digits.
    return (f"(strftime('%Y-%m-%d %H:%M:%f', {compiler.process(at, **kw)}, "
            f"'+' || ({compiler.process(seconds, **kw)}) || ' seconds') || '000')")


# ---------------------------------------------------------------- the aggregate statements


def _sla_seconds(settings: ScoreSettings) -> tuple[ColumnElement[Any], float, list[str] | None] | None:
    """CASE name → seconds from creation to deadline (for key actions without due_at), the longest of them,
    and the only names that have one (None: every name has one); None when no key action can have one."""
    listed = {name: h for name, h in settings.sla_hours.items() if h > 0}
    default = settings.default_sla_hours if settings.default_sla_hours > 0 else None
    hours = [*listed.values(), *([default] if default is not None else [])]
    if not hours:
        return None
    fallback: ColumnElement[Any] = cast(literal(default * 3600.0), Float) if default is not None else null()
    if not settings.sla_hours:
        return fallback, max(hours), None
    seconds = case(  # a name listed with 0 hours has no deadline (NULL), whatever the default
        *((KeyAction.name == name, cast(literal(h * 3600.0), Float) if h > 0 else null())
          for name, h in sorted(settings.sla_hours.items())),
        else_=fallback,
    )
    names = None if default is not None else sorted(listed)
    return seconds, max(hours), names


def key_action_counts(start: datetime, cutoff: datetime, settings: ScoreSettings) -> Select[int, int, Any, Any, Any]:
    """Per opportunity owner: due, done, on time and attached key actions with a deadline in [start, cutoff)."""
    ka = KeyAction
    attached = and_(or_(ka.attachment_path.is_not(None), ka.attachment_media_id.is_not(None)),
                    or_(ka.attached_at.is_(None), ka.attached_at < cutoff))
    cols = (ka.opportunity_id, ka.signed_off_at, case((attached, 1), else_=0).label("attached"))
    # Two index ranges on ix_key_actions_due_created: due_at in the week; due_at empty and created early enough.
    branches: list[Select[Any, Any, Any, Any]] = [select(*cols, ka.due_at.label("deadline"))
                                   .where(ka.due_at >= start, ka.due_at < cutoff)]
    sla = _sla_seconds(settings)
    if sla is not None:
        seconds, longest, names = sla
        implied = (select(*cols, plus_seconds(ka.created_at, seconds).label("deadline"))
                   .where(ka.due_at.is_(None), ka.created_at >= start - timedelta(hours=longest),
                          ka.created_at < cutoff))
        branches.append(implied.where(ka.name.in_(names)) if names is not None else implied)
    rows = union_all(*branches).subquery("due_actions")
    done = and_(rows.c.signed_off_at.is_not(None), rows.c.signed_off_at < cutoff, rows.c.attached == 1)
    on_time = and_(done, rows.c.signed_off_at <= rows.c.deadline)
    return (
        select(Opportunity.owner_id, func.count(), func.sum(case((done, 1), else_=0)),
               func.sum(case((on_time, 1), else_=0)), func.sum(rows.c.attached))
        .join_from(rows, Opportunity, Opportunity.id == rows.c.opportunity_id)
        .where(rows.c.deadline >= start, rows.c.deadline < cutoff,
               or_(Opportunity.closed_at.is_(None), Opportunity.closed_at > rows.c.deadline))
        .group_by(Opportunity.owner_id)
    )


def activity_counts(start: datetime, cutoff: datetime, kinds: Sequence[str]) -> Select[int, int, Any]:
    """Per rep: finished activities of the attachment kinds in [start, cutoff), and those with a live file."""
    linked = exists().where(ActivityAttachment.activity_id == Activity.id, ActivityAttachment.created_at < cutoff,
                            Attachment.id == ActivityAttachment.attachment_id, Attachment.status != "expired")
    return (
        select(Activity.user_id, func.count(), func.sum(case((linked, 1), else_=0)))
        .where(Activity.kind.in_(list(kinds)), Activity.status == "done", Activity.occurred_at >= start,
               Activity.occurred_at < cutoff)
        .group_by(Activity.user_id)
    )


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# ---------------------------------------------------------------- R9


async def compute_week(session: AsyncSession, week_monday: date, now: datetime, settings: ScoreSettings) -> int:
    """R9: count and score the week starting `week_monday` (Asia/Shanghai) for every rep; upsert one
    WeeklyScore each. Returns the number of rows written."""
    if monday_of(week_monday) != week_monday:
        raise ValueError(f"{week_monday} is not a Monday")
    start, end = week_bounds(week_monday)
    cutoff = min(end, max(now, start))
    # user id -> [due, done, on_time, key actions attached, activities needing a file, activities with one]
    tally: dict[int, list[int]] = {}
    for owner, due, done, on_time, attached in (await session.execute(key_action_counts(start, cutoff, settings))):
        tally.setdefault(int(owner), [0] * 6)[:4] = [int(due), int(done or 0), int(on_time or 0), int(attached or 0)]
    if settings.attachment_kinds:
        for user, need, have in (await session.execute(activity_counts(start, cutoff, settings.attachment_kinds))):
            tally.setdefault(int(user), [0] * 6)[4:] = [int(need), int(have or 0)]
    reps = await session.scalars(select(User.id).where(User.active.is_(True), cast(User.roles, Text).like(REP_ROLE)))
    for rep in reps:
        tally.setdefault(int(rep), [0] * 6)
    label = week_label(week_monday)
    rows: list[dict[str, Any]] = []
    scored: dict[WeekCounts, ScoreParts] = {}  # many reps share the same counts
    for user_id in sorted(tally):
        due, done, on_time, attached, need, have = tally[user_id]
        counts = WeekCounts(due=due, done=done, on_time=on_time, need_attachment=due + need,
                            with_attachment=attached + have)
        parts = scored.get(counts) or scored.setdefault(counts, score_parts(counts, settings))
        rows.append({"user_id": user_id, "week": label, "week_start": week_monday, "due": due, "done": done,
                     "on_time": on_time, "need_attachment": counts.need_attachment,
                     "with_attachment": counts.with_attachment, "completion": parts.completion,
                     "timeliness": parts.timeliness, "completeness": parts.completeness, "score": parts.score,
                     "computed_at": now})
    # One Core statement, compiled once, executed with 1,000 rows at a time (executemany): a multi-row VALUES
    # built per batch would be recompiled every time (~0.3 s per 1,000 rows here).
    stmt = _insert(session)(WeeklyScore.__table__)
    stmt = stmt.on_conflict_do_update(index_elements=["user_id", "week"],
                                      set_={name: stmt.excluded[name] for name in UPDATED})
    for i in range(0, len(rows), BATCH):
        await session.execute(stmt, rows[i:i + BATCH])
    return len(rows)


def counts_of(row: WeeklyScore) -> WeekCounts:
    """The counts behind a stored score (for "what to fix")."""
    return WeekCounts(due=row.due, done=row.done, on_time=row.on_time, need_attachment=row.need_attachment,
                      with_attachment=row.with_attachment)


async def for_user(session: AsyncSession, user_id: int, weeks: int = 8, *, until: date | None = None
                   ) -> list[WeeklyScore]:
    """The rep's last `weeks` stored weeks (up to the week of `until`, if given), oldest first: the trend."""
    query = select(WeeklyScore).where(WeeklyScore.user_id == user_id)
    if until is not None:
        query = query.where(WeeklyScore.week_start <= monday_of(until))
    rows = list((await session.scalars(query.order_by(WeeklyScore.week_start.desc()).limit(weeks))).all())
    return rows[::-1]


async def team_scores(session: AsyncSession, user_ids: Iterable[int], week: date) -> dict[int, WeeklyScore]:
    """user id -> the stored score of the week holding `week`, for those of `user_ids` that have one."""
    ids = sorted(set(user_ids))
    found: dict[int, WeeklyScore] = {}
    label = week_label(monday_of(week))
    for i in range(0, len(ids), BATCH):
        rows = await session.scalars(select(WeeklyScore).where(WeeklyScore.week == label,
                                                               WeeklyScore.user_id.in_(ids[i:i + BATCH])))
        found.update((row.user_id, row) for row in rows)
    return found


# ---------------------------------------------------------------- R11


async def eligible(session: AsyncSession, user_id: int, now: datetime, settings: ScoreSettings) -> bool:
    """R11: the rep's stored scores of the last `streak_weeks` complete weeks are all above the threshold."""
    ending = last_complete_week(now)
    rows = await for_user(session, user_id, settings.exemption.streak_weeks, until=ending)
    return exemption_eligible([WeekScore(r.week_start, r.score) for r in rows], settings, ending=ending)


async def grant(session: AsyncSession, user_id: int, week: date, fields: Sequence[str], now: datetime) -> Exemption:
    """R11: exempt the rep from `fields` (checked by bot.rules.score.check_exemption_fields) in the week holding
    `week`; asking again for the same week replaces the fields."""
    monday = monday_of(week)
    insert = _insert(session)
    stmt = insert(Exemption).values(user_id=user_id, week=week_label(monday), week_start=monday,
                                    fields=list(fields), granted_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["user_id", "week"],
                                      set_={"fields": stmt.excluded.fields, "granted_at": stmt.excluded.granted_at})
    await session.execute(stmt)
    row = await session.scalar(select(Exemption).where(Exemption.user_id == user_id,
                                                       Exemption.week == week_label(monday))
                               .execution_options(populate_existing=True))
    assert row is not None
    return row


async def active_for(session: AsyncSession, user_id: int, at: datetime) -> Exemption | None:
    """R11: the rep's exemption for the Asia/Shanghai week holding `at`, if any."""
    label = week_label(monday_of(local_day(at)))
    return await session.scalar(select(Exemption).where(Exemption.user_id == user_id, Exemption.week == label))
