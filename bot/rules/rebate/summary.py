"""R8 "我的返点" for one rep at `now`, with the R7 frozen part; and the text progress bar. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from functools import cached_property

from bot.rules.rebate.engine import ZERO, ContractLine, Ledger, without_cyclic_gc
from bot.rules.rebate.facts import ContractFacts, FreezeFacts, PaymentFacts
from bot.rules.rebate.periods import Period, add_months, month_label, parse_month, payout_date, period_of
from bot.rules.rebate.policy import RebateSettings

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class FreezeCause:
    contract_id: int
    label: str
    reason: str


@dataclass(frozen=True, slots=True)
class FrozenPart:
    """R7: the rep's excess bonus earned in `month`, withheld because of the contracts in `causes`."""

    month: str
    amount: Decimal
    causes: tuple[FreezeCause, ...]


@dataclass(frozen=True, slots=True)
class Payout:
    """Money earned in `month`, paid on `on`: `payable` = earned − frozen (`closed`: the month has ended)."""

    month: str
    on: date
    earned: Decimal
    frozen: Decimal
    payable: Decimal
    closed: bool


@dataclass(frozen=True, slots=True)
class BestMove:
    """The unpaid contract whose full collection today adds the most money (see the package docstring)."""

    contract_id: int
    label: str
    receivable: Decimal
    gain: Decimal  # rebate added: pending at the paid-in-full rate + extra rules' catch-up
    unfreezes: Decimal  # R7 frozen bonus that only this contract holds back
    rules: tuple[str, ...]  # extra rules its collection today would meet

    @property
    def total(self) -> Decimal:
        return self.gain + self.unfreezes


@dataclass(frozen=True)
class RepSummary:
    rep_id: int
    now: datetime
    template: str  # the template's label
    period: Period  # the current tier window
    qualifying_total: Decimal  # qualifying signed total in the window so far
    tier: int
    tier_rate: Decimal
    next_threshold: Decimal | None  # None at the top tier
    progress: Decimal  # qualifying_total / next_threshold, 0..1 (1 at the top tier)
    earned_period: Decimal  # earned by payments (and catch-ups) since the window started
    earned_to_date: Decimal  # everything earned, frozen part included
    pending: Decimal
    receivables: Decimal
    frozen: tuple[FrozenPart, ...]
    payouts: tuple[Payout, ...]  # not yet paid out, soonest first
    best_move: BestMove | None
    ledger: Ledger = field(repr=False, compare=False)

    @cached_property
    def lines(self) -> tuple[ContractLine, ...]:
        """Every signed contract's line (built on first use: 10,000 of them cost more than the summary)."""
        return self.ledger.lines

    @property
    def frozen_total(self) -> Decimal:
        return sum((f.amount for f in self.frozen), ZERO)

    @property
    def next_payout(self) -> Payout | None:
        return self.payouts[0] if self.payouts else None


def _frozen(ledger: Ledger, freezes: Iterable[FreezeFacts], rep_id: int) -> tuple[FrozenPart, ...]:
    """R7: one part per frozen month — the rep's excess earned that month (never below 0 nor above the
    month's earnings), with every active freeze of that month as its causes."""
    causes: dict[date, list[FreezeCause]] = {}
    for f in freezes:
        if f.user_id != rep_id or (f.released_at is not None and f.released_at <= ledger.now):
            continue
        month = parse_month(f.month)
        if month is None:
            raise ValueError(f"bonus freeze on contract {f.contract_id}: month {f.month!r} is not YYYY-MM")
        label = ledger.label(f.contract_id)
        causes.setdefault(month, []).append(FreezeCause(f.contract_id, label, f.reason))
    parts = []
    for month in sorted(causes):
        earned, excess = ledger.month_growth(month)
        amount = min(max(excess, ZERO), max(earned, ZERO))
        parts.append(FrozenPart(month_label(month), amount, tuple(sorted(causes[month], key=lambda c: c.contract_id))))
    return tuple(parts)


def _payouts(ledger: Ledger, payout_day: int, frozen: tuple[FrozenPart, ...]) -> tuple[Payout, ...]:
    """Months whose payout day is today or later: last month's until its payout day, and this month's."""
    today = ledger.today
    this_month = today.replace(day=1)
    months = [add_months(this_month, -1)] if today.day <= payout_day else []
    months.append(this_month)
    held = {f.month: f.amount for f in frozen}
    out = []
    for month in months:
        earned, _excess = ledger.month_growth(month)
        withheld = held.get(month_label(month), ZERO)
        out.append(Payout(month_label(month), payout_date(month, payout_day), earned, withheld, earned - withheld,
                          month < this_month))
    return tuple(out)


def _best_move(ledger: Ledger, frozen: tuple[FrozenPart, ...]) -> BestMove | None:
    """The unpaid contract adding the most money if collected in full today, counting the R7 frozen bonus
    that only it holds back. Collecting never moves the tier bar (tiers count signings)."""
    alone: dict[int, Decimal] = {}
    for part in frozen:
        ids = {c.contract_id for c in part.causes}
        if len(ids) == 1:
            (cid,) = ids
            alone[cid] = alone.get(cid, ZERO) + part.amount
    line = ledger.best_collection(alone)
    if line is None:
        return None
    return BestMove(line.contract_id, line.label, line.receivable, line.gain_if_paid_today,
                    alone.get(line.contract_id, ZERO), line.potential_rules)


def summarize(settings: RebateSettings, rep_id: int, contracts: Iterable[ContractFacts],
              payments: Iterable[PaymentFacts], freezes: Iterable[FreezeFacts], now: datetime) -> RepSummary:
    """R8 + R7: a rep's rebate at `now` under the active template (pass the rep's contracts and their
    payments; other owners' contracts are ignored). The cyclic garbage collector is paused meanwhile (see
    `engine.without_cyclic_gc`)."""
    return without_cyclic_gc(lambda: _summarize(settings, rep_id, contracts, payments, freezes, now))


def _summarize(settings: RebateSettings, rep_id: int, contracts: Iterable[ContractFacts],
               payments: Iterable[PaymentFacts], freezes: Iterable[FreezeFacts], now: datetime) -> RepSummary:
    tpl = settings.template
    ledger = Ledger(tpl, rep_id, contracts, payments, now)
    period = period_of(ledger.today, tpl.period)
    total = ledger.window_total(ledger.today)
    tier = tpl.tier_index(total)
    upper = tpl.tiers[tier + 1].threshold if tier + 1 < len(tpl.tiers) else None
    progress = ONE if upper is None else min(total / upper, ONE)
    frozen = _frozen(ledger, freezes, rep_id)
    return RepSummary(
        rep_id=rep_id, now=now, template=tpl.label, period=period, qualifying_total=total, tier=tier,
        tier_rate=tpl.tiers[tier].rate, next_threshold=upper, progress=progress,
        earned_period=ledger.growth(period.start, period.end)[0], earned_to_date=ledger.earned,
        pending=ledger.pending, receivables=ledger.receivables,
        frozen=frozen, payouts=_payouts(ledger, settings.payout_day, frozen),
        best_move=_best_move(ledger, frozen), ledger=ledger)


def progress_bar(ratio: Decimal | float, width: int = 10) -> str:
    """"▓▓▓▓▓░░░░░ 50%": blocks and percent both rounded down (99.9% never shows 100%), ratio clamped 0..1."""
    exact = ratio if isinstance(ratio, Decimal) else Decimal(str(ratio))
    exact = min(max(exact, Decimal(0)), ONE)
    blocks = int((exact * width).to_integral_value(rounding=ROUND_FLOOR))
    percent = int((exact * 100).to_integral_value(rounding=ROUND_FLOOR))
    return f"{'▓' * blocks}{'░' * (width - blocks)} {percent}%"
