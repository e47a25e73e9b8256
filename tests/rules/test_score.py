"""R9 process health score and R11 exemption: settings, hand-computed scores, what to fix, eligibility."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.rules.score import (
    ScoreSettings,
    WeekCounts,
    WeekScore,
    Weights,
    check_exemption_fields,
    exemption_eligible,
    parse_score_settings,
    score_parts,
    what_to_fix,
)

DEFAULT = ScoreSettings()
W49 = date(2026, 11, 30)  # Monday


# ---------------------------------------------------------------- settings


def test_empty_table_gives_the_defaults() -> None:
    s = parse_score_settings({})
    assert s == DEFAULT
    assert s.weights == Weights(Decimal("0.4"), Decimal("0.3"), Decimal("0.3"))
    assert s.sla_for("首次需求确认") == 24 and s.sla_for("需求调研报告") == 72
    assert s.exemption.streak_weeks == 3 and s.exemption.threshold == 95 and s.exemption.max_fields == 3
    assert s.exemption.core_fields == ("customer", "conclusion")


def test_a_full_table_is_read() -> None:
    s = parse_score_settings({
        "weights": {"completion": 0.5, "timeliness": 0.25, "completeness": 0.25},
        "sla_hours": {"竞品分析提交": 48, "回款确认单": 0},
        "default_sla_hours": 0,
        "attachment_kinds": ["doc", "approval"],
        "exemption": {"streak_weeks": 4, "threshold": 90.5, "max_fields": 2,
                      "core_fields": ["customer", "conclusion", "contact"], "exemptable_fields": ["duration"]},
    })
    assert s.weights.completion == Decimal("0.5")
    assert s.sla_for("竞品分析提交") == 48 and s.sla_for("首次需求确认") == 24
    assert s.sla_for("回款确认单") is None and s.sla_for("别的动作") is None  # 0: no deadline
    assert s.attachment_kinds == ("doc", "approval")
    assert s.exemption.threshold == Decimal("90.5") and s.exemption.core_fields[-1] == "contact"


@pytest.mark.parametrize(("raw", "message"), [
    ({"weights": {"completion": 0.5}}, "[score] weights: must sum to 1"),
    ({"weights": {"completion": "0.4"}}, "[score] weights.completion: expected a number"),
    ({"weights": {"speed": 0.1}}, "[score] weights.speed: unknown key"),
    ({"weights": {"completion": 1.2, "timeliness": -0.1, "completeness": -0.1}}, "[score] weights.completion: must be"),
    ({"colour": 1}, "[score].colour: unknown key"),
    ({"sla_hours": {"首次需求确认": -1}}, "[score] sla_hours.首次需求确认: must be ≥ 0"),
    ({"sla_hours": [1]}, "[score] sla_hours: expected a table"),
    ({"attachment_kinds": "doc"}, "[score] attachment_kinds: expected a list"),
    ({"exemption": {"streak_weeks": 0}}, "[score] exemption.streak_weeks: expected an integer ≥ 1"),
    ({"exemption": {"threshold": 101}}, "[score] exemption.threshold: must be 0..100"),
    ({"exemption": {"max_fields": True}}, "[score] exemption.max_fields"),
    ({"exemption": {"core_fields": ["customer"]}}, "must include 'conclusion'"),
    ({"exemption": {"exemptable_fields": ["duration", "customer"]}}, "core fields are never exemptable: customer"),
    ({"exemption": {"color": 1}}, "[score] exemption.color: unknown key"),
])
def test_bad_values_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_score_settings(raw)


# ---------------------------------------------------------------- R9


def test_r9_hand_computed_score() -> None:
    # completion 8/10 = 0.8, timeliness 6/10 = 0.6, completeness 9/12 = 0.75
    # score = 100 × (0.4·0.8 + 0.3·0.6 + 0.3·0.75) = 100 × (0.32 + 0.18 + 0.225) = 72.5
    parts = score_parts(WeekCounts(due=10, done=8, on_time=6, need_attachment=12, with_attachment=9), DEFAULT)
    assert (parts.completion, parts.timeliness, parts.completeness) == (Decimal("0.8"), Decimal("0.6"),
                                                                        Decimal("0.75"))
    assert parts.score == Decimal("72.5")


def test_r9_nothing_due_counts_as_nothing_missed() -> None:
    parts = score_parts(WeekCounts(), DEFAULT)
    assert parts.score == Decimal("100.0") and parts.completion == parts.timeliness == parts.completeness == 1
    # Only attachments required (no key action due): completion and timeliness are 1, completeness 1/2.
    # 100 × (0.4 + 0.3 + 0.3·0.5) = 85
    assert score_parts(WeekCounts(need_attachment=2, with_attachment=1), DEFAULT).score == Decimal("85.0")


def test_r9_rounding_is_half_up_from_exact_fractions() -> None:
    # 7/8 done and on time, all attached: 100 × (0.4·0.875 + 0.3·0.875 + 0.3) = 91.25 → 91.3 (not banker's 91.2)
    parts = score_parts(WeekCounts(due=8, done=7, on_time=7, need_attachment=8, with_attachment=8), DEFAULT)
    assert parts.score == Decimal("91.3") and parts.completion == Decimal("0.875")
    # 2/3: parts to 4 decimals; the score from the exact 2/3, not from 0.6667:
    # 100 × (0.4·2/3 + 0.3·2/3 + 0.3) = 76.666… → 76.7
    parts = score_parts(WeekCounts(due=3, done=2, on_time=2), DEFAULT)
    assert parts.completion == Decimal("0.6667") and parts.score == Decimal("76.7")


def test_r9_weights_come_from_the_settings() -> None:
    settings = parse_score_settings({"weights": {"completion": 1, "timeliness": 0, "completeness": 0}})
    assert score_parts(WeekCounts(due=4, done=1, on_time=0), settings).score == Decimal("25.0")


def test_counts_must_be_consistent() -> None:
    with pytest.raises(ValueError):
        WeekCounts(due=1, done=2)
    with pytest.raises(ValueError):
        WeekCounts(due=2, done=1, on_time=2)
    with pytest.raises(ValueError):
        WeekCounts(need_attachment=1, with_attachment=2)


def test_r9_what_to_fix_biggest_gain_first() -> None:
    counts = WeekCounts(due=10, done=8, on_time=6, need_attachment=12, with_attachment=9)
    # gains: timeliness 100·0.3·4/10 = 12.0; completion 100·0.4·2/10 = 8.0; completeness 100·0.3·3/12 = 7.5
    fixes = what_to_fix(counts, DEFAULT)
    assert [(f.part, f.missing, f.gain) for f in fixes] == [
        ("timeliness", 4, Decimal("12.0")), ("completion", 2, Decimal("8.0")), ("completeness", 3, Decimal("7.5"))]
    assert fixes[0].text == "在截止时间前完成 4 个关键动作 +12.0 分"
    assert fixes[1].text == "完成 2 个关键动作（附件 + 负责人确认） +8.0 分"
    assert fixes[2].text == "补齐 3 条记录的附件 +7.5 分"
    # Each gain is what the score would rise by with that part's missing items done.
    base = score_parts(counts, DEFAULT).score
    assert score_parts(WeekCounts(10, 8, 6, 12, 12), DEFAULT).score - base == fixes[2].gain


def test_r9_what_to_fix_only_lists_missed_parts() -> None:
    assert what_to_fix(WeekCounts(due=5, done=5, on_time=5, need_attachment=5, with_attachment=5), DEFAULT) == []
    assert what_to_fix(WeekCounts(), DEFAULT) == []
    fixes = what_to_fix(WeekCounts(due=3, done=3, on_time=3, need_attachment=4, with_attachment=1), DEFAULT)
    assert [f.text for f in fixes] == ["补齐 3 条记录的附件 +22.5 分"]
    # Equal gains keep the parts' order: completion before timeliness.
    fixes = what_to_fix(WeekCounts(due=4, done=1, on_time=0), parse_score_settings(
        {"weights": {"completion": 0.375, "timeliness": 0.28125, "completeness": 0.34375}}))
    # completion 100·0.375·3/4 = 28.125, timeliness 100·0.28125·4/4 = 28.125
    assert [f.part for f in fixes] == ["completion", "timeliness"]
    assert fixes[0].gain == fixes[1].gain == Decimal("28.1")


# ---------------------------------------------------------------- R11


def _weeks(*scores: str, last: date = W49) -> list[WeekScore]:
    """Consecutive weeks ending with `last`, oldest first."""
    n = len(scores)
    return [WeekScore(last - timedelta(weeks=n - 1 - i), Decimal(s)) for i, s in enumerate(scores)]


def test_r11_three_weeks_above_95_is_eligible() -> None:
    assert exemption_eligible(_weeks("95.1", "99.0", "100.0"), DEFAULT)
    assert exemption_eligible(_weeks("60.0", "96.0", "97.0", "98.0"), DEFAULT)  # earlier weeks do not matter


def test_r11_exactly_95_is_not_above() -> None:
    assert not exemption_eligible(_weeks("96.0", "95.0", "97.0"), DEFAULT)
    assert not exemption_eligible(_weeks("96.0", "97.0", "95.0"), DEFAULT)


def test_r11_a_gap_week_breaks_the_streak() -> None:
    weeks = _weeks("96.0", "97.0", "98.0", "99.0")
    del weeks[2]  # the week before the last has no score
    assert not exemption_eligible(weeks, DEFAULT)
    assert not exemption_eligible(_weeks("96.0", "97.0"), DEFAULT)  # only two weeks
    assert not exemption_eligible([], DEFAULT)


def test_r11_the_streak_must_end_with_the_given_week() -> None:
    weeks = _weeks("96.0", "97.0", "98.0")
    assert exemption_eligible(weeks, DEFAULT, ending=W49)
    assert not exemption_eligible(weeks, DEFAULT, ending=W49 + timedelta(weeks=1))  # last week not scored
    assert exemption_eligible(_weeks("96", "97", "98", "10"), DEFAULT, ending=W49 - timedelta(weeks=1))


def test_r11_exemption_fields() -> None:
    assert check_exemption_fields(["duration", "location", "duration"], DEFAULT) == ("duration", "location")
    with pytest.raises(ValueError, match="核心字段"):
        check_exemption_fields(["customer"], DEFAULT)
    with pytest.raises(ValueError, match="核心字段"):
        check_exemption_fields(["duration", "conclusion"], DEFAULT)
    with pytest.raises(ValueError, match="最多豁免 3 个字段"):
        check_exemption_fields(["duration", "location", "contact", "keywords"], DEFAULT)
    with pytest.raises(ValueError, match="不在可豁免字段里"):
        check_exemption_fields(["amount"], DEFAULT)
    with pytest.raises(ValueError, match="至少选一个"):
        check_exemption_fields([" "], DEFAULT)
