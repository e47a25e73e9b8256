"""The shared measures (R2, R12, R13), by hand-computed examples and their boundaries; Asia/Shanghai periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.clock import SHANGHAI
from bot.config_defaults import DEFAULT_STAGES
from bot.rules.metrics import (
    Contact,
    LeadTimes,
    Move,
    Rate,
    StageSpan,
    depth_index,
    golden_rate,
    last_complete_week,
    miss_reason,
    responded,
    stage_spans,
    transitions,
    week_bounds,
    week_label,
)

STAGES = DEFAULT_STAGES
MON = datetime(2026, 11, 30, 0, 0, tzinfo=SHANGHAI)  # Monday of 2026-W49
WEEK = (MON, MON + timedelta(days=7))


def limit(_stage: str) -> timedelta:
    return timedelta(hours=72)


# ---------------------------------------------------------------- periods


def test_weeks_are_shanghai_iso_weeks_whatever_the_server_zone() -> None:
    assert week_label(date(2026, 11, 30)) == "2026-W49" and week_label(date(2026, 12, 6)) == "2026-W49"
    assert week_bounds(date(2026, 12, 6)) == WEEK
    assert WEEK[0].astimezone(UTC) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    # Sunday 23:59 in Shanghai (15:59 UTC): W48 is the last complete week; Monday 00:00 (16:00 UTC): W49.
    assert last_complete_week(datetime(2026, 12, 6, 15, 59, tzinfo=UTC)) == date(2026, 11, 23)
    assert last_complete_week(datetime(2026, 12, 6, 16, 0, tzinfo=UTC)) == date(2026, 11, 30)


# ---------------------------------------------------------------- R2


def _lead(assigned_min: int | None, contact_min: int | None) -> LeadTimes:
    created = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
    return LeadTimes(created,
                     None if assigned_min is None else created + timedelta(minutes=assigned_min),
                     None if contact_min is None else created + timedelta(minutes=contact_min))


def test_r2_responded_means_assigned_and_first_contact_within_four_hours() -> None:
    assert responded(_lead(30, 240), 4)  # exactly 4 h
    assert not responded(_lead(30, 241), 4)
    assert not responded(_lead(None, 60), 4)  # contacted but never assigned
    assert not responded(_lead(30, None), 4)
    assert [miss_reason(x, 4) for x in (_lead(30, 60), _lead(None, None), _lead(30, None), _lead(30, 300))] == [
        None, "unassigned", "no_contact", "late"]


def test_r2_daily_rate_and_its_threshold() -> None:
    ok, missed = _lead(10, 60), _lead(10, 500)
    assert golden_rate([ok] * 17 + [missed] * 3, 4) == Rate(17, 20)
    assert not Rate(17, 20).below(0.85)  # exactly 85%: healthy
    assert Rate(16, 20).below(0.85)
    assert golden_rate([], 4).rate is None and not golden_rate([], 4).below(0.85)  # no leads: nothing to review


# ---------------------------------------------------------------- R12


def test_stage_spans_from_moves() -> None:
    created = MON - timedelta(days=10)
    moved = MON + timedelta(days=1)
    spans = stage_spans(STAGES, created_at=created, stage="方案呈现", stage_entered_at=moved + timedelta(days=1),
                        moves=[Move("需求诊断", "方案呈现", moved + timedelta(days=1)),
                               Move("触达", "需求诊断", moved)])  # out of order: sorted by time
    assert spans == [StageSpan("触达", created, moved, True),
                     StageSpan("需求诊断", moved, moved + timedelta(days=1), True),
                     StageSpan("方案呈现", moved + timedelta(days=1), None, False)]
    won = stage_spans(STAGES, created_at=created, stage="签约", stage_entered_at=created, moves=[], status="won",
                      closed_at=MON)
    assert won == [StageSpan("签约", created, MON, True)]
    lost = stage_spans(STAGES, created_at=created, stage="签约", stage_entered_at=created, moves=[], status="lost",
                       closed_at=MON)
    assert lost == [StageSpan("签约", created, MON, False)]


@pytest.mark.parametrize(
    ("span", "due", "moved"),
    [
        # entered Monday, 72 h limit (Thursday), still there at the week's end: due, not moved
        (StageSpan("需求诊断", MON, None, False), 1, 0),
        # moved forward before its limit: never due
        (StageSpan("需求诊断", MON, MON + timedelta(hours=71), True), 0, 0),
        # moved forward after its limit, within the week: due and moved
        (StageSpan("需求诊断", MON, MON + timedelta(hours=80), True), 1, 1),
        # moved back after its limit: due, not a success
        (StageSpan("需求诊断", MON, MON + timedelta(hours=80), False), 1, 0),
        # past its limit since last week and still there: due again this week
        (StageSpan("需求诊断", MON - timedelta(days=9), None, False), 1, 0),
        # past its limit last week, moved on before this week: not this week's business
        (StageSpan("需求诊断", MON - timedelta(days=9), MON - timedelta(hours=1), True), 0, 0),
        # the limit falls exactly at the week's end: next week's
        (StageSpan("需求诊断", WEEK[1] - timedelta(hours=72), None, False), 0, 0),
        # past its limit, moved forward next week: due this week, not moved this week
        (StageSpan("需求诊断", MON, WEEK[1] + timedelta(hours=1), True), 1, 0),
        # the last stage has nowhere to go
        (StageSpan("复购", MON - timedelta(days=9), None, False), 0, 0),
    ],
)
def test_r12_due_and_moved_in_one_week(span: StageSpan, due: int, moved: int) -> None:
    overall = transitions([span], STAGES, *WEEK, limit).overall
    assert (overall.total, overall.hits) == (due, moved)


def test_r12_rate_per_stage_and_overall() -> None:
    spans = [StageSpan("需求诊断", MON, MON + timedelta(hours=80), True),
             StageSpan("需求诊断", MON, None, False),
             StageSpan("方案呈现", MON, MON + timedelta(hours=90), True)]
    t = transitions(spans, STAGES, *WEEK, limit)
    assert t.by_stage == {"需求诊断": Rate(1, 2), "方案呈现": Rate(1, 1)}
    assert t.overall == Rate(2, 3) and t.overall.below(0.7) and not t.overall.below(0.65)


# ---------------------------------------------------------------- R13


def test_r13_depth_index_against_the_baseline() -> None:
    baseline = Contact(wechat=30, note_chars=600, docs=2)  # 9 + 240 + 0.6 = 249.6
    assert depth_index(baseline, baseline) == pytest.approx(1.0)
    assert depth_index(Contact(15, 300, 1), baseline) == pytest.approx(0.5)
    assert depth_index(Contact(), baseline) == 0
    assert depth_index(Contact(wechat=10), Contact(wechat=10, docs=10)) == pytest.approx(0.5)  # weights 0.3/0.3
    with pytest.raises(ValueError, match="positive"):
        depth_index(Contact(1, 1, 1), Contact())
    assert Contact.of({"wechat": 2, "note_chars": 5, "docs": 1}) == Contact(2, 5, 1)
