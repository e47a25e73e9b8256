"""R9 process health score (过程健康分) and R11 data-quality exemption (数据质量豁免权). Pure.

A rep's week (Monday 00:00 – Sunday 24:00 Asia/Shanghai, labelled "2026-W49") is counted by
store/repos/scores.py into `WeekCounts`; this module turns counts into the three parts and the score, says
what would raise it most, and decides R11 eligibility.

- due: key actions of the opportunities the rep owns whose deadline falls in the week. The deadline is the
  key action's `due_at`; when that is empty (nothing in the bot sets it today) it is `created_at` +
  `[score] sla_hours[name]` (else `default_sla_hours`; 0 = an unlisted action has no deadline and is never due).
- done: due key actions complete (attachment present + the owner's sign-off) by the end of the week.
- on_time: done, and signed off (the moment it became complete) no later than its deadline.
- need_attachment: records requiring an attachment — every due key action, plus the rep's finished
  activities in the week of a kind in `[score] attachment_kinds` (e.g. "doc").
- with_attachment: of those, the key actions with an attachment by the end of the week and the activities
  with a linked file (activity_attachments) not expired.

completion = done / due, timeliness = on_time / due, completeness = with_attachment / need_attachment; a part
with nothing due is 1 (nothing was missed) and the counts say so. score = 100 × (w1·completion +
w2·timeliness + w3·completeness), weights summing to 1. Exact fractions throughout, then rounded half-up:
parts to 4 decimals, the score to 0.1 (Decimal) — the rounded score is what the rep sees and what R11 compares.

R11: a score strictly above `threshold` (95) in each of `streak_weeks` (3) consecutive complete weeks lets the
rep exempt up to `max_fields` (3) non-core fields for the next week; core fields (customer, conclusion) never.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

PARTS = ("completion", "timeliness", "completeness")
ALWAYS_CORE = ("customer", "conclusion")  # R11: never exemptable, whatever the config says
MAX_FIXES = 3

# User-facing (Chinese): one line per thing to fix, best first.
FIX_TEXT = {
    "completion": "完成 {n} 个关键动作（附件 + 负责人确认） +{gain} 分",
    "timeliness": "在截止时间前完成 {n} 个关键动作 +{gain} 分",
    "completeness": "补齐 {n} 条记录的附件 +{gain} 分",
}
TOO_MANY_FIELDS = "最多豁免 {max} 个字段，你选了 {n} 个。"
CORE_FIELD = "「{name}」是核心字段，不能豁免。"
UNKNOWN_FIELD = "「{name}」不在可豁免字段里（可选：{known}）。"
NO_FIELDS = "请至少选一个要豁免的字段。"


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class Weights:
    completion: Decimal = Decimal("0.4")
    timeliness: Decimal = Decimal("0.3")
    completeness: Decimal = Decimal("0.3")

    def of(self, part: str) -> Decimal:
        return {"completion": self.completion, "timeliness": self.timeliness,
                "completeness": self.completeness}[part]


@dataclass(frozen=True)
class ExemptionSettings:
    streak_weeks: int = 3
    threshold: Decimal = Decimal("95")
    max_fields: int = 3
    core_fields: tuple[str, ...] = ALWAYS_CORE
    exemptable_fields: tuple[str, ...] = ("duration", "location", "contact", "keywords")


@dataclass(frozen=True)
class ScoreSettings:
    """`[score]`: R9 weights and deadlines, R11 exemption."""

    weights: Weights = field(default_factory=Weights)
    sla_hours: Mapping[str, float] = field(default_factory=lambda: {"首次需求确认": 24.0})
    default_sla_hours: float = 72.0
    attachment_kinds: tuple[str, ...] = ("doc",)
    exemption: ExemptionSettings = field(default_factory=ExemptionSettings)

    def sla_for(self, name: str) -> float | None:
        """Hours from a key action's creation to its deadline when it has no due_at; None: no deadline."""
        hours = self.sla_hours.get(name, self.default_sla_hours)
        return hours if hours > 0 else None


def _number(where: str, value: Any, *, low: float, high: float | None = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    number = Decimal(str(value))
    if number < Decimal(str(low)) or (high is not None and number > Decimal(str(high))):
        bound = f"{low:g}..{high:g}" if high is not None else f"≥ {low:g}"
        raise ValueError(f"{where}: must be {bound}, got {value!r}")
    return number


def _integer(where: str, value: Any, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where}: expected an integer ≥ {low}, got {value!r}")
    return value


def _strings(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _table(where: str, value: Any, known: Iterable[str] | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a table, got {value!r}")
    if known is not None:
        names = tuple(known)
        for key in value:
            if key not in names:
                raise ValueError(f"{where}.{key}: unknown key (known: {', '.join(names)})")
    return value


def parse_score_settings(raw: Mapping[str, Any]) -> ScoreSettings:
    """The `[score]` table → ScoreSettings (defaults for what is absent); ValueError names the bad key."""
    d = ScoreSettings()
    top = _table("[score]", raw, ("weights", "sla_hours", "default_sla_hours", "attachment_kinds", "exemption"))
    w = _table("[score] weights", top.get("weights", {}), PARTS)
    weights = Weights(*(_number(f"[score] weights.{p}", w[p], low=0, high=1) if p in w else d.weights.of(p)
                        for p in PARTS))
    if sum(weights.of(p) for p in PARTS) != 1:
        raise ValueError(f"[score] weights: must sum to 1, got {sum(weights.of(p) for p in PARTS)}")
    sla = dict(d.sla_hours)
    for name, hours in _table("[score] sla_hours", top.get("sla_hours", {}), None).items():
        sla[str(name)] = float(_number(f"[score] sla_hours.{name}", hours, low=0))
    default_sla = float(_number("[score] default_sla_hours", top.get("default_sla_hours", d.default_sla_hours),
                                low=0))
    kinds = _strings("[score] attachment_kinds", top.get("attachment_kinds", list(d.attachment_kinds)))
    e, de = _table("[score] exemption", top.get("exemption", {}), ("streak_weeks", "threshold", "max_fields",
                                                                   "core_fields", "exemptable_fields")), d.exemption
    core = _strings("[score] exemption.core_fields", e.get("core_fields", list(de.core_fields)))
    for name in ALWAYS_CORE:
        if name not in core:
            raise ValueError(f"[score] exemption.core_fields: must include {name!r} (R11: never exemptable)")
    exemptable = _strings("[score] exemption.exemptable_fields",
                          e.get("exemptable_fields", list(de.exemptable_fields)))
    both = [f for f in exemptable if f in core]
    if both:
        raise ValueError(f"[score] exemption.exemptable_fields: core fields are never exemptable: {', '.join(both)}")
    exemption = ExemptionSettings(
        streak_weeks=_integer("[score] exemption.streak_weeks", e.get("streak_weeks", de.streak_weeks), low=1),
        threshold=_number("[score] exemption.threshold", e.get("threshold", int(de.threshold)), low=0, high=100),
        max_fields=_integer("[score] exemption.max_fields", e.get("max_fields", de.max_fields), low=1),
        core_fields=core, exemptable_fields=exemptable,
    )
    return ScoreSettings(weights=weights, sla_hours=sla, default_sla_hours=default_sla, attachment_kinds=kinds,
                         exemption=exemption)


# ---------------------------------------------------------------- R9 score


@dataclass(frozen=True)
class WeekCounts:
    """One rep's week: the numerators and denominators behind the score (kept so views can explain it)."""

    due: int = 0
    done: int = 0
    on_time: int = 0
    need_attachment: int = 0
    with_attachment: int = 0

    def __post_init__(self) -> None:
        if min(self.due, self.done, self.on_time, self.need_attachment, self.with_attachment) < 0:
            raise ValueError(f"negative count in {self}")
        if not (self.on_time <= self.done <= self.due and self.with_attachment <= self.need_attachment):
            raise ValueError(f"inconsistent counts {self}")

    def ratio(self, part: str) -> tuple[int, int]:
        """(hits, total) of one part."""
        return {"completion": (self.done, self.due), "timeliness": (self.on_time, self.due),
                "completeness": (self.with_attachment, self.need_attachment)}[part]


@dataclass(frozen=True)
class ScoreParts:
    completion: Decimal
    timeliness: Decimal
    completeness: Decimal
    score: Decimal

    def of(self, part: str) -> Decimal:
        return {"completion": self.completion, "timeliness": self.timeliness,
                "completeness": self.completeness}[part]


def _share(hits: int, total: int) -> Fraction:
    return Fraction(hits, total) if total else Fraction(1)  # nothing due: nothing was missed


def _round(value: Fraction, places: int) -> Decimal:
    """Half-up to `places` decimals (values are never negative here)."""
    scale = 10**places
    return Decimal((value * scale + Fraction(1, 2)).__floor__()).scaleb(-places)


def _exact_score(counts: WeekCounts, weights: Weights) -> Fraction:
    return 100 * sum((Fraction(weights.of(p)) * _share(*counts.ratio(p)) for p in PARTS), Fraction(0))


def score_parts(counts: WeekCounts, settings: ScoreSettings) -> ScoreParts:
    """R9: the three parts (4 decimals) and the score (0.1), from exact fractions."""
    parts = [_round(_share(*counts.ratio(p)), 4) for p in PARTS]
    return ScoreParts(parts[0], parts[1], parts[2], _round(_exact_score(counts, settings.weights), 1))


@dataclass(frozen=True)
class Fix:
    """One thing that would raise the score: `missing` items of `part`, worth `gain` points."""

    part: str
    missing: int
    gain: Decimal
    text: str


def what_to_fix(counts: WeekCounts, settings: ScoreSettings) -> list[Fix]:
    """R9 "what to fix": up to 3 parts with missed items, the biggest gain first. The gain of a part is what the
    score would rise by if that part's missing items had been done (the other parts unchanged)."""
    found: list[tuple[Fraction, int, Fix]] = []
    for order, part in enumerate(PARTS):
        hits, total = counts.ratio(part)
        missing = total - hits
        if missing <= 0:
            continue
        exact = 100 * Fraction(settings.weights.of(part)) * Fraction(missing, total)
        gain = _round(exact, 1)
        found.append((exact, order, Fix(part, missing, gain, FIX_TEXT[part].format(n=missing, gain=gain))))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [fix for _, _, fix in found[:MAX_FIXES]]


# ---------------------------------------------------------------- R11 exemption


@dataclass(frozen=True)
class WeekScore:
    """A stored week's score: `week` is its Monday (Asia/Shanghai)."""

    week: date
    score: Decimal


def exemption_eligible(scores: Sequence[WeekScore], settings: ScoreSettings, *, ending: date | None = None) -> bool:
    """R11: each of the `streak_weeks` consecutive weeks ending with `ending` (default: the latest week given;
    pass the last complete week) has a score strictly above the threshold. A missing week breaks the streak."""
    rule = settings.exemption
    by_week = {s.week: s.score for s in scores}
    if not by_week:
        return False
    last = ending if ending is not None else max(by_week)
    for back in range(rule.streak_weeks):
        score = by_week.get(last - timedelta(weeks=back))
        if score is None or score <= rule.threshold:
            return False
    return True


def check_exemption_fields(fields: Iterable[str], settings: ScoreSettings) -> tuple[str, ...]:
    """R11: the fields a rep asks to be exempted from, deduplicated; ValueError with a Chinese reason when one is
    core, not exemptable, or there are none or too many."""
    rule = settings.exemption
    chosen = tuple(dict.fromkeys(f.strip() for f in fields if f.strip()))
    if not chosen:
        raise ValueError(NO_FIELDS)
    for name in chosen:
        if name in rule.core_fields or name in ALWAYS_CORE:
            raise ValueError(CORE_FIELD.format(name=name))
        if name not in rule.exemptable_fields:
            raise ValueError(UNKNOWN_FIELD.format(name=name, known="、".join(rule.exemptable_fields)))
    if len(chosen) > rule.max_fields:
        raise ValueError(TOO_MANY_FIELDS.format(max=rule.max_fields, n=len(chosen)))
    return chosen

