"""R12 in SQL (store/repos/transitions.py) against its pure definition (bot/rules/metrics.py stage_spans +
transitions) over the same rows, for two consecutive Asia/Shanghai weeks, on SQLite and PostgreSQL.

Random funnels: a handful of opportunities each with 0–4 moves — forward, backward, to the same stage or to a
stage not in the funnel, same-instant moves, moves exactly at deadlines and at (±1 µs) week boundaries,
histories whose stage or from_stage do not follow on — created before, inside or after the weeks; open,
silent, won or lost (closed exactly at a deadline or a boundary), owned by three reps. Plus hand examples
with the counts worked out, and one through coaching.rep_transitions and the settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from bot.clock import SHANGHAI
from bot.config_defaults import DEFAULT_STAGES
from bot.rules.metrics import Move, Rate, Transitions, stage_spans, transitions
from jobs.sweeps import coaching
from store.db import Database
from store.models import Customer, Opportunity, StageMove, User
from store.repos.transitions import rep_transitions, to_us
from tests.conftest import make_settings

STAGES = DEFAULT_STAGES  # 线索 触达 需求诊断 方案呈现 异议处理 签约 回款 复购 (the last is not measured)
UNKNOWN = "旧阶段"  # a stage name no longer in the funnel
LIMIT_HOURS = {"线索": 24.0, "触达": 0.5, "方案呈现": 100.25, "签约": 7.3, "回款": 48.0}
DEFAULT_HOURS = 72.0  # 需求诊断, 异议处理, 复购, unknown stages
OWNERS = (1, 2, 3)

W1 = datetime(2026, 11, 16, 0, 0, tzinfo=SHANGHAI)  # Monday of 2026-W47
W2, W3 = W1 + timedelta(days=7), W1 + timedelta(days=14)
WEEKS = [(W2, W3), (W1, W2)]  # as coaching.run passes them: the week just ended first
KEYS = (W1 - timedelta(days=7), W1, W1 + timedelta(days=3, hours=12), W2, W2 + timedelta(hours=9), W3,
        W3 + timedelta(days=2))
US = timedelta(microseconds=1)


def limit(stage: str) -> timedelta:
    return timedelta(hours=LIMIT_HOURS.get(stage, DEFAULT_HOURS))


@dataclass
class Opp:
    owner_id: int
    created_at: datetime
    stage: str
    stage_entered_at: datetime
    status: str
    closed_at: datetime | None
    moves: list[Move]  # in insertion (id) order


# ---------------------------------------------------------------- the two computations


async def store(db: Database, opps: Sequence[Opp]) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(delete(StageMove))
        await conn.execute(delete(Opportunity))
        if not opps:
            return
        await conn.execute(insert(Opportunity), [
            {"id": i, "name": f"opp{i}", "customer_id": 1, "owner_id": o.owner_id, "stage": o.stage,
             "stage_entered_at": o.stage_entered_at, "last_progress_at": o.stage_entered_at, "status": o.status,
             "created_at": o.created_at, "closed_at": o.closed_at}
            for i, o in enumerate(opps, 1)])
        moves = [{"opportunity_id": i, "from_stage": m.from_stage, "to_stage": m.to_stage, "at": m.at, "forced": False}
                 for i, o in enumerate(opps, 1) for m in o.moves]
        if moves:
            await conn.execute(insert(StageMove), moves)  # ids ascend in list order: same-instant moves keep it


def in_python(opps: Sequence[Opp], weeks: Sequence[tuple[datetime, datetime]]) -> dict[int, list[dict[str, Rate]]]:
    out: dict[int, list[Transitions]] = {}
    for o in opps:
        spans = stage_spans(STAGES, created_at=o.created_at, stage=o.stage, stage_entered_at=o.stage_entered_at,
                            moves=o.moves, status=o.status, closed_at=o.closed_at)
        per_week = out.setdefault(o.owner_id, [Transitions() for _ in weeks])
        for i, (start, end) in enumerate(weeks):
            per_week[i].merge(transitions(spans, STAGES, start, end, limit))
    return _plain(out)


def _plain(result: dict[int, list[Transitions]]) -> dict[int, list[dict[str, Rate]]]:
    """Owners with something due in some week, each week's stage → Rate."""
    return {owner: [dict(t.by_stage) for t in weeks] for owner, weeks in result.items()
            if any(t.by_stage for t in weeks)}


async def in_sql(db: Database, weeks: Sequence[tuple[datetime, datetime]]) -> dict[int, list[dict[str, Rate]]]:
    async with db.sessions() as s:
        result = await rep_transitions(s, STAGES, limit, weeks)
    for per_week in result.values():
        assert len(per_week) == len(weeks)
        for t in per_week:  # funnel order, only what was due
            assert list(t.by_stage) == sorted(t.by_stage, key=STAGES.index)
            assert all(r.total > 0 and 0 <= r.hits <= r.total for r in t.by_stage.values())
    return _plain(result)


async def check(db: Database, opps: Sequence[Opp]) -> dict[int, list[dict[str, Rate]]]:
    await store(db, opps)
    got = await in_sql(db, WEEKS)
    assert got == in_python(opps, WEEKS)
    return got


# ---------------------------------------------------------------- random funnels

stage_names = st.sampled_from((*STAGES, UNKNOWN))
jitters = st.sampled_from((timedelta(0), timedelta(0), -US, US, timedelta(seconds=-1), timedelta(hours=1)))


@st.composite
def instants(draw: st.DrawFn, stage: str | None = None) -> datetime:
    """Week boundaries (± a little), the start of a stay in `stage` whose deadline falls on one (± a little),
    or anywhere from 10 days before the first week to 10 days after the second (to the microsecond)."""
    kind = draw(st.sampled_from(("key", "deadline_at_key", "deadline_at_key", "any", "any")))
    if kind == "key":
        return draw(st.sampled_from(KEYS)) + draw(jitters)
    if kind == "deadline_at_key":
        return draw(st.sampled_from(KEYS)) - limit(stage or draw(stage_names)) + draw(jitters)
    minutes = draw(st.integers(0, 34 * 24 * 60))
    return W1 - timedelta(days=10) + timedelta(minutes=minutes, microseconds=draw(st.integers(0, 999_999)))


@st.composite
def later(draw: st.DrawFn, entered: datetime, stage: str, then: str) -> datetime:
    """When a stay in `stage` that began at `entered` ends (and one in `then` begins): at once, exactly at or
    just around its deadline, some time later, or any instant of `instants` — a boundary, or so that the stay
    in `then` has its deadline on one — which may even be before `entered` (moves out of time order)."""
    kind = draw(st.sampled_from(("same", "deadline", "deadline", "after", "instant", "instant")))
    if kind == "same":
        return entered
    if kind == "deadline":
        return entered + limit(stage) + draw(st.sampled_from((timedelta(0), -US, US)))
    if kind == "after":
        return entered + timedelta(minutes=draw(st.integers(1, 12 * 24 * 60)), microseconds=draw(st.integers(0, 999)))
    return draw(instants(then))


@st.composite
def opportunities(draw: st.DrawFn) -> Opp:
    stage = draw(stage_names)
    created = draw(instants(stage))
    entered = created
    moves: list[Move] = []
    for _ in range(draw(st.integers(0, 4))):
        to_stage = draw(stage_names)
        at = draw(later(entered, stage, to_stage))
        from_stage = stage if draw(st.integers(0, 5)) else draw(stage_names)  # now and then: does not follow on
        moves.append(Move(from_stage, to_stage, at))
        stage, entered = to_stage, at
    if not draw(st.integers(0, 5)):  # a stage change with no move (the importer), or a stray stage_entered_at
        stage = draw(stage_names)
        entered = draw(st.one_of(instants(stage), st.just(entered)))
    status = draw(st.sampled_from(("open", "silent", "won", "lost", "won", "lost")))
    closed_at: datetime | None = None
    if status in {"won", "lost"}:
        closed_at = None if not draw(st.integers(0, 9)) else draw(later(entered, stage, stage))
    elif not draw(st.integers(0, 9)):
        closed_at = draw(instants())  # an open deal with a stray closed_at: ignored by both
    return Opp(draw(st.sampled_from(OWNERS)), created, stage, entered, status, closed_at, moves)


# ---------------------------------------------------------------- tests


async def _seed(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(User), [{"id": i, "name": f"rep{i}", "roles": ["rep"], "active": True,
                                           "created_at": W1 - timedelta(days=30)} for i in OWNERS])
        await conn.execute(insert(Customer), [{"id": 1, "name": "客户", "created_at": W1 - timedelta(days=30)}])


def _opp(stage: str, entered: datetime, *moves: Move, owner: int = 1, status: str = "open",
         closed_at: datetime | None = None, created: datetime | None = None) -> Opp:
    return Opp(owner, created or (moves[0].at if moves else entered) - timedelta(days=1), stage, entered, status,
               closed_at, list(moves))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(opps=st.lists(opportunities(), max_size=6))
@example(opps=[])
async def test_sql_equals_the_python_definition(db: Database, opps: list[Opp]) -> None:
    if not await _seeded(db):
        await _seed(db)
    await check(db, opps)


async def _seeded(db: Database) -> bool:
    async with db.sessions() as s:
        return await s.get(User, OWNERS[0]) is not None


async def test_hand_examples(db: Database) -> None:
    await _seed(db)
    d = limit("需求诊断")  # 72 h (方案呈现 100.25 h, 触达 0.5 h, 签约 7.3 h, 回款 48 h)
    opps = [
        # 1: entered 需求诊断 Monday W47, still there: due both weeks, never moved.
        _opp("需求诊断", W1),
        # 2: entered 需求诊断 so that its deadline is exactly W48's end: not due in W48 (next week's business).
        _opp("需求诊断", W3 - d),
        # 3: the deadline 1 µs before W48's end: due in W48.
        _opp("需求诊断", W3 - d - US, owner=2),
        # 3b: the deadline exactly at W47's end: W48's business only.
        _opp("需求诊断", W2 - d, owner=2),
        # 4: moved forward exactly at its deadline: never past it, never due.
        _opp("方案呈现", W1 + d, Move("需求诊断", "方案呈现", W1 + d), created=W1, owner=2),
        # 5: moved forward 1 µs after its deadline (in W47): due and moved in W47. Then 方案呈现 (deadline
        #    100.25 h later: W48 Monday 04:15) won exactly at W48's start, before its deadline: never due.
        _opp("方案呈现", W1 + d + US, Move("需求诊断", "方案呈现", W1 + d + US), created=W1, owner=3, status="won",
             closed_at=W2),
        # 6: same-instant moves: 触达 → 需求诊断 → 方案呈现 at one instant, then back to 需求诊断 in W48.
        #    The zero-length 需求诊断 stay is never due; 触达 (30 min limit, created W47 Monday) left late: moved
        #    (W47); 方案呈现 from Tuesday W47 (deadline Saturday W47) left backwards in W48: due, not moved, in
        #    both weeks; 需求诊断 since then is due in W48 once 72 h pass.
        _opp("需求诊断", W2 + timedelta(hours=1),
             Move("触达", "需求诊断", W1 + timedelta(days=1)), Move("需求诊断", "方案呈现", W1 + timedelta(days=1)),
             Move("方案呈现", "需求诊断", W2 + timedelta(hours=1)), created=W1),
        # 7: an import set 签约 with no move after the last recorded move to 方案呈现: 方案呈现 is not held
        #    forever (its stay ended unknown), 签约 counts from stage_entered_at (7.3 h limit).
        _opp("签约", W2 + timedelta(days=2), Move("需求诊断", "方案呈现", W1 - timedelta(days=20)),
             created=W1 - timedelta(days=30)),
        # 8: in the last stage for ages: nowhere to go, not measured; moved there from 回款 in W47 after 回款's
        #    48 h: due and moved in W47.
        _opp("复购", W1 + timedelta(days=3), Move("回款", "复购", W1 + timedelta(days=3)),
             created=W1 - timedelta(days=1)),
        # 9: lost in W48 after its deadline: due in W48 (and in W47, where it was past it), never moved.
        _opp("方案呈现", W1, status="lost", closed_at=W2 + timedelta(days=1)),
        # 10: won exactly at W48's end: due in W48 but not moved within it (left == end).
        _opp("异议处理", W2, status="won", closed_at=W3, owner=2),
    ]
    got = await check(db, opps)
    assert got == {  # Rate(moved, due); W48 first
        1: [{"需求诊断": Rate(0, 2), "方案呈现": Rate(0, 2), "签约": Rate(0, 1)},  # 1+6, 6+9, 7
            {"触达": Rate(1, 1), "需求诊断": Rate(0, 1), "方案呈现": Rate(0, 2), "回款": Rate(1, 1)}],  # 6, 1, 6+9, 8
        2: [{"需求诊断": Rate(0, 2), "方案呈现": Rate(0, 1), "异议处理": Rate(0, 1)}, {}],  # 3+3b, 4, 10
        3: [{}, {"需求诊断": Rate(1, 1)}],  # 5
    }


async def test_through_coaching_and_the_settings(db_url: str, db: Database) -> None:
    """coaching.rep_transitions reads [funnel] stages and [rules] stage limits and gives the same."""
    await _seed(db)
    opps = [_opp("需求诊断", W1), _opp("方案呈现", W2 - limit("方案呈现") - US, owner=2)]
    await store(db, opps)
    cfg = make_settings(db_url, rules={"stage_limit_hours": DEFAULT_HOURS, "stage_limits": LIMIT_HOURS})
    result = await coaching.rep_transitions(db, cfg, WEEKS)
    assert _plain(result) == in_python(opps, WEEKS) == {
        1: [{"需求诊断": Rate(0, 1)}, {"需求诊断": Rate(0, 1)}],
        2: [{"方案呈现": Rate(0, 1)}, {"方案呈现": Rate(0, 1)}],
    }
    assert await coaching.rep_transitions(db, cfg, [(W1 - timedelta(days=70), W1 - timedelta(days=63))]) == {}


def test_microseconds_since_the_epoch() -> None:
    assert to_us(datetime(1970, 1, 1, 8, 0, 0, 1, tzinfo=SHANGHAI)) == 1


async def test_epoch_us_is_exact_in_sql(db: Database) -> None:
    """The one dialect-specific expression: stored times to integer microseconds, exactly."""
    from sqlalchemy import select

    from store.repos.transitions import epoch_us

    await _seed(db)
    times = [W1 + timedelta(microseconds=123_457), W1 - timedelta(days=20000, microseconds=1),
             datetime(2038, 1, 19, 3, 14, 8, 999_999, tzinfo=SHANGHAI)]
    await store(db, [_opp("线索", t) for t in times])
    async with db.sessions() as s:
        rows = (await s.execute(select(epoch_us(Opportunity.stage_entered_at)).order_by(Opportunity.id))).scalars()
        assert list(rows) == [to_us(t) for t in times]
