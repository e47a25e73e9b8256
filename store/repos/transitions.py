"""R12 stage transition counts for every rep at once, by one SQL aggregate (SQLite and PostgreSQL).

The definitions are bot/rules/metrics.py's `stage_spans` and `transitions`; this module computes the same
numbers without loading a single opportunity into Python:

1. spans (one row per stay in a stage):
   - each stage_moves row closes a stay in its `from_stage` that began at the opportunity's previous move
     (LAG(at) over its moves ordered by at, id) or, for its first move, at the opportunity's created_at;
     it is forward when `to_stage` comes later in `[funnel] stages` (a stage not in the funnel is never
     forward);
   - the current stay: the opportunity's `stage` from its `stage_entered_at`, ended by `closed_at` when the
     status is won or lost (forward when won), open otherwise.
   Only stays that can matter are read: moves after the first window's start (a stay that left at or before
   it is never due; ix_stage_moves_at, then the whole history of those deals for LAG), and current stays
   entered before the last window's end minus the shortest stage limit (ix_opps_status_stage_entered). For
   won/lost deals that index range holds every closed deal ever entered before then, filtered on closed_at
   afterwards: it grows with the history (an index on closed_at would bound it).
2. per owner × stage, for each week window [start, end): with deadline = entered + the stage's limit,
   due = deadline < end and (still there, or left after both start and deadline); moved = due, forward and
   left < end. The last funnel stage is not measured. Times are compared as integer microseconds since the
   epoch (`epoch_us`, the one dialect-specific piece), so boundaries are exact to the microsecond.

Where the data is inconsistent (a stage change with no stage_moves row — the importer sets `stage` directly —
or moves whose from_stage is not the previous move's to_stage), every stay is named by the row that records
it: a move's from_stage, the opportunity's current stage; nothing is invented for the gap. `stage_spans`
does the same (see there). Opportunities are read with status open, silent, won or lost (the only statuses
there are: store/importing/columns.py); a won/lost one without closed_at is treated like `stage_spans` does,
as still in its stage.

Result: owner id → one `Transitions` per window (in the order given), for the owners with something due in
at least one window; stages appear in funnel order. Nothing here writes.

Compared with the per-opportunity Python loop this replaces (jobs/sweeps/coaching.py before): the same
counts on consistent data; reps with nothing due are left out (they could never be below); a won/lost deal
without closed_at counts as still in its stage whether or not it moved lately (the loop only read it when
it had); the worst stage on a tie is the earliest in the funnel (by_stage order).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    SQLColumnExpression,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from bot.rules.metrics import Rate, Transitions
from store.models import Opportunity, StageMove

Window = tuple[datetime, datetime]
STATUSES = ("open", "silent", "won", "lost")
OPEN = ("open", "silent")
CLOSED = ("won", "lost")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


# ---------------------------------------------------------------- the dialect-specific part


class epoch_us(FunctionElement[int]):
    """A UTCDateTime value as integer microseconds since 1970-01-01 UTC, exact in both dialects (NULL stays
    NULL). SQLite keeps these as naive UTC text "YYYY-MM-DD HH:MM:SS.ffffff" and its date functions keep
    only milliseconds, so the whole seconds come from strftime('%s') and the fraction from the text itself
    (padded: a three-digit "SS.SSS" written by hand reads right too)."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_us"


@compiles(epoch_us, "postgresql")
def _epoch_us_pg(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    (at,) = list(element.clauses)
    # EXTRACT gives numeric (PostgreSQL ≥ 14): exact. Older servers give a double, off by well under 0.5 µs
    # for any date before 2255, which the rounding CAST absorbs.
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(at, **kw)}) * 1000000 AS BIGINT)"


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    (at,) = list(element.clauses)
    text = compiler.process(at, **kw)
    return (f"(CAST(strftime('%s', substr({text}, 1, 19)) AS INTEGER) * 1000000"
            f" + CAST(substr({text} || '000000', 21, 6) AS INTEGER))")


def to_us(at: datetime) -> int:
    """An aware datetime as microseconds since the epoch (what `epoch_us` gives in SQL)."""
    return (at - EPOCH) // MICROSECOND


# ---------------------------------------------------------------- the statement


def _int(value: int) -> ColumnElement[int]:
    return literal(value, BigInteger)


def transitions_statement(stages: Sequence[str], limit: Callable[[str], timedelta],
                          weeks: Sequence[Window], owners: Collection[int] | None = None) -> Select[Any]:
    """owner_id, stage, then due and moved for each window in turn, per owner × measured stage (rows with
    nothing due in any window may appear with zeros); `owners` limits it to some owners (a manager's view)."""
    measured = list(stages[:-1])
    limits = {stage: limit(stage) // MICROSECOND for stage in measured}
    order = {stage: i for i, stage in enumerate(stages)}
    since = min(start for start, _ in weeks)
    until = max(end for _, end in weeks)
    cutoff = until - min(limits.values()) * MICROSECOND  # a stay entered at or after it is due in no window
    until_us = _int(to_us(until))
    by_limit: dict[int, list[str]] = {}
    for stage, us in limits.items():
        by_limit.setdefault(us, []).append(stage)

    def deadline(stage: SQLColumnExpression[str], entered: SQLColumnExpression[datetime]) -> ColumnElement[int]:
        limit_us = case(*((stage.in_(names), _int(us)) for us, names in by_limit.items()), else_=None)
        return epoch_us(entered) + limit_us

    def index_of(stage: SQLColumnExpression[str]) -> ColumnElement[Any]:
        return case(*((stage == name, literal(i, Integer)) for name, i in order.items()), else_=None)

    # Each arm yields owner_id, stage, deadline and left (µs since the epoch; left NULL while still there) and
    # forward (1/0), computed once per row, only for stays that could be due in some window.
    # 1. Stays ended by a move after `since`: LAG over the whole history of the deals moved since then.
    moved_since = select(StageMove.opportunity_id).where(StageMove.at > since)
    history = (
        select(StageMove.opportunity_id, StageMove.from_stage, StageMove.to_stage, StageMove.at,
               func.lag(StageMove.at).over(partition_by=StageMove.opportunity_id,
                                           order_by=(StageMove.at, StageMove.id)).label("prev_at"))
        .where(StageMove.opportunity_id.in_(moved_since))
        .subquery("history")
    )
    move_deadline = deadline(history.c.from_stage, func.coalesce(history.c.prev_at, Opportunity.created_at))
    left_by_move = (
        select(Opportunity.owner_id.label("owner_id"), history.c.from_stage.label("stage"),
               move_deadline.label("deadline"), epoch_us(history.c.at).label("left"),
               case((index_of(history.c.to_stage) > index_of(history.c.from_stage), 1), else_=0).label("forward"))
        .join_from(history, Opportunity, Opportunity.id == history.c.opportunity_id)
        .where(history.c.at > since, history.c.from_stage.in_(measured),
               or_(history.c.prev_at.is_(None), history.c.prev_at < cutoff),  # before the join: fewer look-ups
               move_deadline < until_us)
    )
    if owners is not None:
        left_by_move = left_by_move.where(Opportunity.owner_id.in_(list(owners)))
    # 2. Current stays (open, or closed after `since`), through ix_opps_status_stage_entered.
    closed = and_(Opportunity.status.in_(CLOSED), Opportunity.closed_at.is_not(None))
    current_deadline = deadline(Opportunity.stage, Opportunity.stage_entered_at)
    current = (
        select(Opportunity.owner_id.label("owner_id"), Opportunity.stage.label("stage"),
               current_deadline.label("deadline"),
               epoch_us(case((closed, Opportunity.closed_at), else_=None)).label("left"),
               case((and_(closed, Opportunity.status == "won"), 1), else_=0).label("forward"))
        .where(Opportunity.status.in_(STATUSES), Opportunity.stage_entered_at < cutoff,
               Opportunity.stage.in_(measured),
               or_(Opportunity.status.in_(OPEN), Opportunity.closed_at.is_(None), Opportunity.closed_at > since),
               current_deadline < until_us)
    )
    if owners is not None:
        current = current.where(Opportunity.owner_id.in_(list(owners)))
    spans = union_all(left_by_move, current).subquery("spans")

    left = spans.c.left
    counts: list[ColumnElement[Any]] = []
    for start, end in weeks:
        s, e = _int(to_us(start)), _int(to_us(end))
        due = and_(spans.c.deadline < e, or_(left.is_(None), and_(left > s, left > spans.c.deadline)))
        counts.append(func.sum(case((due, 1), else_=0)))
        counts.append(func.sum(case((and_(due, spans.c.forward == 1, left < e), 1), else_=0)))
    return select(spans.c.owner_id, spans.c.stage, *counts).group_by(spans.c.owner_id, spans.c.stage)


async def rep_transitions(session: AsyncSession, stages: Sequence[str], limit: Callable[[str], timedelta],
                          weeks: Sequence[Window], owners: Collection[int] | None = None
                          ) -> dict[int, list[Transitions]]:
    """R12 per rep (opportunity owner) for each week window [start, end): see the module docstring."""
    if not weeks or len(stages) < 2:
        return {}
    order = {stage: i for i, stage in enumerate(stages)}
    rows = (await session.execute(transitions_statement(stages, limit, weeks, owners))).all()
    out: dict[int, list[Transitions]] = {}
    for owner_id, stage, *counts in sorted(rows, key=lambda r: (r[0], order[r[1]])):
        for i in range(len(weeks)):
            due, moved = int(counts[2 * i] or 0), int(counts[2 * i + 1] or 0)
            if due:
                weeks_of = out.setdefault(int(owner_id), [Transitions() for _ in weeks])
                weeks_of[i].by_stage[stage] = Rate(moved, due)
    return out
