"""R8 rebate engine: one rep's signed contracts under a template, as of `now`. Pure: `now` is passed in.

`Ledger` prepares the contracts once (payments by instant, tier windows), evaluates every contract at
`now`, and answers "how much had been earned by instant t" (`cumulative`) with every fact as of t — the
growth of that over a month is the money earned in the month (`growth`). Only contracts whose facts changed
after t are re-evaluated, so a history of 10,000 settled contracts costs one evaluation each (a template
whose rules read days_since_signed re-evaluates every contract per instant asked); their `ContractLine`s
are built only when asked for (`lines`: 10,000 frozen dataclasses cost about as much as the summary).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property

from bot.clock import SHANGHAI
from bot.rules.rebate.facts import ContractFacts, PaymentFacts
from bot.rules.rebate.periods import Period, add_months, midnight, period_of
from bot.rules.rebate.policy import Template
from bot.rules.signed import is_signed

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
_PAYMENT_FIELDS = frozenset({"collection_days", "paid_ratio"})
_TICK = timedelta(microseconds=1)  # "before midnight" = at or before midnight − 1 µs (datetime's resolution)
Values = dict[str, Decimal | str | None]


def cents(value: Decimal) -> Decimal:
    """The one rounding rule: a contract's rebate amount to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def _first(payment: tuple[datetime, Decimal]) -> datetime:
    return payment[0]


@dataclass(frozen=True, slots=True)
class ContractLine:
    """One signed contract at `now`: what it earns, at which rate, and what is still to come."""

    contract_id: int
    label: str
    amount: Decimal
    signed_on: date
    period: str  # the tier window it counts in ("2026-03", "2026-Q1")
    qualifies: bool  # counts toward its window's tier total
    net_paid: Decimal  # payments minus refunds so far, never below 0 (may exceed the amount)
    paid_ratio: Decimal
    collection_days: int | None  # None while not fully paid
    tier: int  # index into the template's tiers
    tier_rate: Decimal
    rules: tuple[str, ...]  # extra rules that apply now
    rate: Decimal  # tier_rate + the extra rules' rates
    earned: Decimal
    excess: Decimal  # R7: the part of `earned` above the base tier rate
    pending: Decimal  # what the unpaid rest earns at today's rate
    receivable: Decimal  # amount − net paid, never below 0
    potential_rules: tuple[str, ...]  # extra rules that would apply if paid in full today
    gain_if_paid_today: Decimal  # pending at that rate + the rules' catch-up on money already paid


class _Window:
    """A tier window's qualifying signed contracts in signing order: its total at any instant."""

    __slots__ = ("changed_at", "cum", "signed", "tier")

    def __init__(self, template: Template, items: list[tuple[datetime, Decimal]]) -> None:
        items.sort(key=lambda item: item[0])
        self.signed = [at for at, _ in items]
        self.cum: list[Decimal] = []
        total, self.tier = ZERO, 0
        self.changed_at: datetime | None = None  # when the window last moved up a tier
        thresholds = template.thresholds
        for at, amount in items:
            total += amount
            self.cum.append(total)
            while self.tier + 1 < len(thresholds) and total >= thresholds[self.tier + 1]:
                self.tier, self.changed_at = self.tier + 1, at

    def total(self, cut: datetime) -> Decimal:
        k = bisect_right(self.signed, cut)
        return self.cum[k - 1] if k else ZERO


class _Entry:
    """A signed contract: prepared once (payments by instant, fixed fields), then its state at `now`."""

    __slots__ = ("amount", "capped", "contract", "cum", "days", "earned", "excess", "gain", "instants", "last_change",
                 "names", "net", "pending", "potential", "qualifies", "rate", "signed_day", "tier", "values", "window")
    # Set by Ledger (`_prepare_windows`, `_evaluate_now`): the contract's state at `now`.
    qualifies: bool
    tier: int
    net: Decimal
    capped: Decimal
    days: int | None
    rate: Decimal
    names: tuple[str, ...]
    earned: Decimal
    excess: Decimal
    pending: Decimal
    potential: tuple[str, ...]
    gain: Decimal

    def __init__(self, contract: ContractFacts, signed_at: datetime, window: int) -> None:
        self.contract = contract
        amount = contract.amount
        self.amount = amount if amount > 0 else ZERO  # a negative amount counts as zero
        self.signed_day = _day(signed_at)
        self.window = window  # its tier window's key (see Ledger._window_key)
        self.instants: Sequence[datetime] = ()
        self.cum: Sequence[Decimal] = ()  # net paid after each payment instant
        self.last_change = signed_at  # after this instant its state no longer changes (see Ledger)
        terms = contract.payment_terms_days
        # What a condition sees; the last three names are set for each evaluation (`state`).
        self.values: Values = {
            "amount": self.amount, "industry": contract.industry, "product_line": contract.product_line,
            "customer_type": contract.customer_type, "payment_terms_days": None if terms is None else Decimal(terms),
            "collection_days": None, "paid_ratio": ZERO, "days_since_signed": ZERO,
        }

    def add_payments(self, payments: list[tuple[datetime, Decimal]]) -> None:
        payments.sort(key=_first)
        instants: list[datetime] = []
        cum: list[Decimal] = []
        total = ZERO
        for at, amount in payments:
            total += amount
            # Payments at one instant land together. (`not <` rather than `==`: sorted, and an aware `==`
            # asks the zone about folds, which costs more than the rest of this loop.)
            if instants and not instants[-1] < at:
                cum[-1] = total
            else:
                instants.append(at)
                cum.append(total)
        self.instants, self.cum = instants, cum
        if instants[-1] > self.last_change:
            self.last_change = instants[-1]

    def paid(self, k: int) -> tuple[Decimal, Decimal, int | None]:
        """After the first `k` payment instants: net paid (≥ 0), net paid capped at the amount, and the
        collection days (None while not fully paid)."""
        raw = self.cum[k - 1] if k else ZERO
        net = raw if raw > 0 else ZERO
        if not self.amount:
            return net, ZERO, 0
        if raw < self.amount:
            return net, net, None
        j = k - 1  # the instant it last became fully paid: walk back while it already was
        while j > 0 and self.cum[j - 1] >= self.amount:
            j -= 1
        return net, self.amount, max((_day(self.instants[j]) - self.signed_day).days, 0)

    def set_state(self, capped: Decimal, days: int | None, day: date) -> Values:
        """Values as of `day` with `capped` paid and `days` collection days."""
        v = self.values
        v["collection_days"] = None if days is None else Decimal(days)
        v["paid_ratio"] = capped / self.amount if self.amount else ONE
        v["days_since_signed"] = Decimal((day - self.signed_day).days)
        return v


class Ledger:
    """One rep's rebate book under `template` as of `now` (other owners' contracts and their payments are
    ignored: tiers are per rep)."""

    def __init__(self, template: Template, rep_id: int, contracts: Iterable[ContractFacts],
                 payments: Iterable[PaymentFacts], now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.template, self.now, self.today = template, now, _day(now)
        self._quarter = template.period == "quarter"
        entries: dict[int, _Entry] = {}
        for c in contracts:
            # R10 signed, and signed by now: a contract that is not counts nowhere.
            if c.owner_id == rep_id and is_signed(c):
                signed_at = c.signed_at
                if signed_at is not None and signed_at <= now:
                    e = _Entry(c, signed_at, 0)
                    e.window = self._window_key(e.signed_day)
                    entries[c.id] = e
        self._entries = list(entries.values())
        self._by_id = entries
        by_contract: dict[int, list[tuple[datetime, Decimal]]] = {}
        for p in payments:
            if p.contract_id in entries and p.received_at <= now:  # later payments are not known yet
                by_contract.setdefault(p.contract_id, []).append((p.received_at, p.amount))
        for cid, group in by_contract.items():
            entries[cid].add_payments(group)
        self._windows = self._prepare_windows()
        # Only rules reading collection_days / paid_ratio can change when the rest is paid today.
        self._collection_rules = any(_PAYMENT_FIELDS & r.when.names for r in template.rules)
        self.earned = self.excess = ZERO
        for e in self._entries:
            self._evaluate_now(e)
            self.earned += e.earned
            self.excess += e.excess
        days_matter = template.uses_days_since_signed
        for e in self._entries:
            window = self._windows.get(e.window)
            if window is not None and window.changed_at is not None and window.changed_at > e.last_change:
                e.last_change = window.changed_at  # its tier rose after its last payment
            if days_matter:
                e.last_change = now  # days_since_signed moves every day
        self._recent = sorted(self._entries, key=lambda e: e.last_change, reverse=True)
        self._memo: dict[datetime, tuple[Decimal, Decimal]] = {}

    def _window_key(self, day: date) -> int:
        month = day.year * 12 + day.month - 1
        return month // 3 if self._quarter else month

    def period(self, key: int) -> Period:
        month = key * 3 if self._quarter else key
        return period_of(date(month // 12, month % 12 + 1, 1), self.template.period)

    def _prepare_windows(self) -> dict[int, _Window]:
        qualify = self.template.qualify
        items: dict[int, list[tuple[datetime, Decimal]]] = {}
        for e in self._entries:
            # qualify uses signing-time fields only: evaluated once, whatever the payments.
            e.qualifies = qualify is None or qualify.test(e.values)
            if e.qualifies:
                signed_at = e.contract.signed_at
                assert signed_at is not None
                items.setdefault(e.window, []).append((signed_at, e.amount))
        return {key: _Window(self.template, group) for key, group in items.items()}

    def window_total(self, day: date, cut: datetime | None = None) -> Decimal:
        """The qualifying signed total of the tier window holding `day`, as of `cut` (default: now)."""
        window = self._windows.get(self._window_key(day))
        return ZERO if window is None else window.total(self.now if cut is None else cut)

    def _rate(self, tier: int, values: Values) -> tuple[Decimal, tuple[str, ...]]:
        rate = self.template.tiers[tier].rate
        names: tuple[str, ...] = ()
        for rule in self.template.rules:
            if rule.when.test(values):
                rate += rule.rate
                names += (rule.name,)
        return rate, names

    def _evaluate_now(self, e: _Entry) -> None:
        tpl = self.template
        window = self._windows.get(e.window)
        e.tier = 0 if window is None else window.tier
        e.net, e.capped, e.days = e.paid(len(e.instants))
        e.rate, e.names = self._rate(e.tier, e.set_state(e.capped, e.days, self.today))
        e.earned = (e.rate * e.capped).quantize(CENT, ROUND_HALF_UP)  # `cents`, inlined: this runs per contract
        e.excess = e.earned - (tpl.base_rate * e.capped).quantize(CENT, ROUND_HALF_UP)
        receivable = e.amount - e.capped
        e.pending = e.gain = (e.rate * receivable).quantize(CENT, ROUND_HALF_UP)
        e.potential = ()
        if receivable and self._collection_rules:
            full = e.set_state(e.amount, max((self.today - e.signed_day).days, 0), self.today)
            full_rate, full_names = self._rate(e.tier, full)
            e.potential = tuple(n for n in full_names if n not in e.names)
            e.gain = cents(full_rate * receivable) + cents((full_rate - e.rate) * e.capped)

    def _earned_at(self, e: _Entry, cut: datetime) -> tuple[Decimal, Decimal]:
        """(earned, excess) of one contract with every fact as of `cut`."""
        signed_at = e.contract.signed_at
        assert signed_at is not None
        if signed_at > cut:
            return ZERO, ZERO
        window = self._windows.get(e.window)
        tier = 0 if window is None else self.template.tier_index(window.total(cut))
        _net, capped, days = e.paid(bisect_right(e.instants, cut))
        rate, _names = self._rate(tier, e.set_state(capped, days, _day(cut)))
        earned = cents(rate * capped)
        return earned, earned - cents(self.template.base_rate * capped)

    def cumulative(self, cut: datetime) -> tuple[Decimal, Decimal]:
        """(earned, excess) by instant `cut` (inclusive), every fact — payments, tiers, rules — as of `cut`."""
        if cut >= self.now:
            return self.earned, self.excess
        if cut in self._memo:
            return self._memo[cut]
        earned, excess = self.earned, self.excess
        for e in self._recent:  # a contract unchanged since `cut` contributes what it does now
            if e.last_change <= cut:
                break
            then_earned, then_excess = self._earned_at(e, cut)
            earned += then_earned - e.earned
            excess += then_excess - e.excess
        self._memo[cut] = earned, excess
        return earned, excess

    def growth(self, start: date, end: date) -> tuple[Decimal, Decimal]:
        """(earned, excess) that accrued over the days [start, end) (Asia/Shanghai), up to now; negative when
        refunds clawed back more than was earned."""
        first = midnight(start)
        if first > self.now:
            return ZERO, ZERO
        e1, x1 = self.cumulative(min(midnight(end) - _TICK, self.now))
        e0, x0 = self.cumulative(first - _TICK)
        return e1 - e0, x1 - x0

    def month_growth(self, month: date) -> tuple[Decimal, Decimal]:
        return self.growth(month, add_months(month, 1))

    def label(self, contract_id: int) -> str:
        """A signed contract's label; the bare id for any other."""
        e = self._by_id.get(contract_id)
        return f"#{contract_id}" if e is None else e.contract.label

    @property
    def pending(self) -> Decimal:
        return sum((e.pending for e in self._entries), ZERO)

    @property
    def receivables(self) -> Decimal:
        return sum((e.amount - e.capped for e in self._entries), ZERO)

    def best_collection(self, bonus: Mapping[int, Decimal]) -> ContractLine | None:
        """The unpaid contract whose full collection today adds the most: its `gain_if_paid_today` plus
        `bonus[contract id]`; ties go to the larger receivable, then the lower contract id."""
        best: tuple[Decimal, Decimal, int] | None = None
        chosen = None
        for e in self._entries:
            if e.capped < e.amount:
                key = (e.gain + bonus.get(e.contract.id, ZERO), e.amount - e.capped, -e.contract.id)
                if best is None or key > best:
                    best, chosen = key, e
        return None if chosen is None else self._line(chosen)

    @cached_property
    def lines(self) -> tuple[ContractLine, ...]:
        """Every signed contract's line at `now`, in input order."""
        return tuple(self._line(e) for e in self._entries)

    def _line(self, e: _Entry) -> ContractLine:
        c = e.contract
        return ContractLine(
            c.id, c.label, e.amount, e.signed_day, self.period(e.window).label, e.qualifies, e.net,
            e.capped / e.amount if e.amount else ONE, e.days, e.tier, self.template.tiers[e.tier].rate, e.names,
            e.rate, e.earned, e.excess, e.pending, e.amount - e.capped, e.potential, e.gain)
