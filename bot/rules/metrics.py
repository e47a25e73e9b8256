"""The shared process measures (R2, R12, R13): the sweeps fire on them, the manager views show them. Pure.

Periods are Asia/Shanghai: a day is 00:00–24:00, a week Monday 00:00 – Sunday 24:00 (ISO weeks, labelled
"2026-W49").

- R2 golden 4 hours: a lead is responded when assigned AND its first contact is recorded within
  `golden_hours` of its creation; the daily rate is responded / new leads that day.
- R12 stage transition rate, per stage per week: moved A→B / due to move, where *due* means in A and past
  A's stage limit at some moment of the week, and *moved* means such an opportunity left A forward
  (to a later stage, or won) during the week — so the rate is a share (0..1) of what was due.
- R13 contact depth index, per customer per week: (wechat messages × 0.3 + note characters × 0.4 +
  document downloads × 0.3) / the same formula on the industry's baseline week.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from bot.clock import SHANGHAI

# ---------------------------------------------------------------- periods


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) of a day in Asia/Shanghai."""
    start = datetime.combine(day, time(0), SHANGHAI)
    return start, datetime.combine(day + timedelta(days=1), time(0), SHANGHAI)


def local_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def monday_of(day: date) -> date:
    return day - timedelta(days=day.isoweekday() - 1)


def week_bounds(day: date) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of the week holding `day`, Asia/Shanghai."""
    monday = monday_of(day)
    return datetime.combine(monday, time(0), SHANGHAI), datetime.combine(monday + timedelta(days=7), time(0), SHANGHAI)


def week_label(day: date) -> str:
    """ISO week of a day: "2026-W49"."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def last_complete_week(now: datetime) -> date:
    """The Monday of the last week that has fully ended at `now` (the week before this one)."""
    return monday_of(local_day(now)) - timedelta(days=7)


# ---------------------------------------------------------------- R2 golden 4 hours


@dataclass(frozen=True)
class LeadTimes:
    created_at: datetime
    assigned_at: datetime | None
    first_contact_at: datetime | None


def responded(lead: LeadTimes, hours: float) -> bool:
    """R2: assigned, and first contact recorded within `hours` of creation."""
    return (lead.assigned_at is not None and lead.first_contact_at is not None
            and lead.first_contact_at - lead.created_at <= timedelta(hours=hours))


def miss_reason(lead: LeadTimes, hours: float) -> str | None:
    """Why a lead missed R2: "unassigned", "no_contact" or "late"; None when it was responded."""
    if responded(lead, hours):
        return None
    if lead.assigned_at is None:
        return "unassigned"
    return "no_contact" if lead.first_contact_at is None else "late"


@dataclass(frozen=True)
class Rate:
    """A share: `hits` of `total` (None when there is nothing to measure)."""

    hits: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    def below(self, threshold: float) -> bool:
        """Measured and under the threshold (an empty period is never below)."""
        rate = self.rate
        return rate is not None and rate < threshold


def golden_rate(leads: Iterable[LeadTimes], hours: float) -> Rate:
    """R2: responded / new leads (pass the leads created in one day)."""
    batch = list(leads)
    return Rate(sum(1 for lead in batch if responded(lead, hours)), len(batch))


# ---------------------------------------------------------------- R12 stage transition rate


@dataclass(frozen=True)
class Move:
    from_stage: str
    to_stage: str
    at: datetime


@dataclass(frozen=True)
class StageSpan:
    """One stay of an opportunity in a stage: [entered, left), left None while it is still there;
    forward: it left to a later stage (or was won)."""

    stage: str
    entered: datetime
    left: datetime | None
    forward: bool


def is_forward(stages: Sequence[str], from_stage: str, to_stage: str) -> bool:
    if from_stage not in stages or to_stage not in stages:
        return False
    return stages.index(to_stage) > stages.index(from_stage)


def stage_spans(stages: Sequence[str], *, created_at: datetime, stage: str, stage_entered_at: datetime,
                moves: Sequence[Move], status: str = "open", closed_at: datetime | None = None) -> list[StageSpan]:
    """An opportunity's stays, from its stage moves (in time order; same-instant moves in the order given):
    each move ends a stay in its from_stage that began at the previous move (the first at creation); the
    current stay is `stage` from stage_entered_at; a won/lost opportunity's last stay ends at closed_at
    (won = forward).

    When the history is inconsistent — a stage change that left no move (the importer sets `stage` directly),
    or a move whose from_stage is not the previous move's to_stage — each stay is named by the row that
    records it (the move's from_stage, the opportunity's stage) and nothing is invented for the gap. The SQL
    aggregate in store/repos/transitions.py builds exactly these stays; keep the two in step."""
    ordered = sorted(moves, key=lambda m: m.at)
    spans: list[StageSpan] = []
    entered = created_at
    for move in ordered:
        spans.append(StageSpan(move.from_stage, entered, move.at, is_forward(stages, move.from_stage, move.to_stage)))
        entered = move.at
    closed = status in {"won", "lost"} and closed_at is not None
    spans.append(StageSpan(stage, stage_entered_at, closed_at if closed else None, closed and status == "won"))
    return spans


@dataclass
class Transitions:
    """R12 counts for one week: per stage, due to move and moved (mutable while summing)."""

    by_stage: dict[str, Rate] = field(default_factory=dict)

    def add(self, stage: str, *, moved: bool) -> None:
        old = self.by_stage.get(stage, Rate(0, 0))
        self.by_stage[stage] = Rate(old.hits + int(moved), old.total + 1)

    def merge(self, other: Transitions) -> None:
        for stage, r in other.by_stage.items():
            old = self.by_stage.get(stage, Rate(0, 0))
            self.by_stage[stage] = Rate(old.hits + r.hits, old.total + r.total)

    @property
    def overall(self) -> Rate:
        """All stages together: a rep's (or team's) transition rate for the week."""
        return Rate(sum(r.hits for r in self.by_stage.values()), sum(r.total for r in self.by_stage.values()))


def transitions(spans: Iterable[StageSpan], stages: Sequence[str], start: datetime, end: datetime,
                limit: Callable[[str], timedelta]) -> Transitions:
    """R12 for the week [start, end): a stay is due when it is past its stage's limit at some moment of the
    week; it counts as moved when it also left forward during the week. The last stage has no next one."""
    out = Transitions()
    measured = set(stages[:-1])
    for span in spans:
        if span.stage not in measured:
            continue
        deadline = span.entered + limit(span.stage)
        if deadline >= end or (span.left is not None and span.left <= max(start, deadline)):
            continue
        out.add(span.stage, moved=span.forward and span.left is not None and span.left < end)
    return out


# ---------------------------------------------------------------- R13 contact depth index

DEPTH_WEIGHTS: Mapping[str, float] = {"wechat": 0.3, "note_chars": 0.4, "docs": 0.3}
DEPTH_FIELDS = tuple(DEPTH_WEIGHTS)


@dataclass(frozen=True)
class Contact:
    """One customer's week: wechat messages, note characters, document downloads."""

    wechat: float = 0
    note_chars: float = 0
    docs: float = 0

    @classmethod
    def of(cls, values: Mapping[str, float]) -> Contact:
        return cls(*(float(values.get(name, 0)) for name in DEPTH_FIELDS))


def depth_score(contact: Contact, weights: Mapping[str, float] = DEPTH_WEIGHTS) -> float:
    return (contact.wechat * weights["wechat"] + contact.note_chars * weights["note_chars"]
            + contact.docs * weights["docs"])


def depth_index(contact: Contact, baseline: Contact, weights: Mapping[str, float] = DEPTH_WEIGHTS) -> float:
    """R13: the week's weighted contact over the industry baseline's (1.0 = as deep as the baseline)."""
    base = depth_score(baseline, weights)
    if base <= 0:
        raise ValueError("an industry baseline must have a positive weighted score")
    return depth_score(contact, weights) / base
