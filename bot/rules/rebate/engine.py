"""R8 rebate engine: one rep's signed contracts under a template, as of `now`. Pure: `now` is passed in.

`Ledger` reads the contracts and payments once (book.py), evaluates every contract at `now`, and answers
"how much had been earned by instant t" (`cumulative`) with every fact as of t — the growth of that over a
month is the money earned in the month (`growth`).

"我的返点" runs this for a rep with up to ~10,000 contracts within a chat reply's budget, hence:
    - One pass over the payments and one over the contracts (`read_book`); a contract's conditions are a
      memo look-up (conditions.py, `Rules`), its rate a look-up by (tier, mask of the rules that hold).
    - Earned now is summed per (window, rule mask): the rate is found once per group, each contract is
      still rounded on its own.
    - "Earned by t" starts from the total at `now` and re-evaluates only the contracts whose facts changed
      after t (signed, paid, refunded, or their window's tier rose after t; every day when a rule they may
      meet reads days_since_signed): a settled history contributes what it does today. The contracts that
      changed since the horizon (the start of last month's window) are kept apart, so the months a summary
      asks about never walk the whole history; an older instant does.
    - A window sorts its signings only when a total before `now` is asked for; payments by instant are
      built only for the contracts asked about at an earlier instant.
    - `ContractLine`s are built only when asked for (`lines`: 10,000 frozen dataclasses cost more than the
      summary), and the cyclic garbage collector is paused while a summary or the lines are built
      (`without_cyclic_gc`).
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from operator import attrgetter
from typing import TypeVar

from bot.rules.rebate.book import (
    Book,
    Entry,
    Window,
    by_instant,
    paid_after,
    paid_by_contract,
    read_book,
    rules,
)
from bot.rules.rebate.facts import ContractFacts, PaymentFacts
from bot.rules.rebate.periods import Period, add_months, day_of, midnight, period_of, window_key
from bot.rules.rebate.policy import Template

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
NIL = Decimal("0.00")  # what `cents` gives for nothing
_PAYMENT_FIELDS = frozenset({"collection_days", "paid_ratio"})
_T = TypeVar("_T")
_SETTLED = (NIL, NIL, ())  # a settled contract's pending, gain if paid today, and rules that would add
_WINDOWS = (1 << 24) - 1  # a `bucket_key`'s window part
_RECEIVED_AT = attrgetter("received_at")
_TICK = timedelta(microseconds=1)  # "before midnight" = at or before midnight − 1 µs (datetime's resolution)


def without_cyclic_gc(build: Callable[[], _T]) -> _T:
    """`build()` with the cyclic garbage collector paused (then left as it was found). For what allocates
    an object or more per contract and keeps them: none is in a cycle, and a collection triggered halfway
    would walk them all — a full one the whole process — for nothing."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return build()
    finally:
        if collecting:
            gc.enable()


def cents(value: Decimal) -> Decimal:
    """The one rounding rule: a contract's rebate amount to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


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


class Ledger:
    """One rep's rebate book under `template` as of `now` (other owners' contracts and their payments are
    ignored: tiers are per rep)."""

    def __init__(self, template: Template, rep_id: int, contracts: Iterable[ContractFacts],
                 payments: Iterable[PaymentFacts], now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.template, self.now, self.today = template, now, day_of(now)
        self._quarter = template.period == "quarter"
        self._rules = rules(template)
        self._rates: list[dict[int, tuple[Decimal, tuple[str, ...]]]] = [{} for _tier in template.tiers]
        # A contract whose own facts last changed before the horizon is as it is now at any instant from just
        # before it on (if its window's tier rose after that instant, it was signed after it too: windows
        # are aligned), so "earned by t" in the last month or two looks only at the others (`_recent`).
        start = add_months(self.today.replace(day=1), -1)
        self._horizon = self._local(midnight(period_of(start, template.period).start))
        # The others' payments are not kept: an earlier instant groups these again (`_payments_of`).
        self._payments = tuple(payments)
        self._paid: dict[int, list[PaymentFacts]] | None = None
        book = read_book(self._rules, self._quarter, rep_id, contracts, self._payments, now, self.today,
                         self._horizon)
        self._recent = book.recent
        self._by_id, self.receivables = book.entries, book.receivables
        self._entries = list(self._by_id.values())
        self._windows = {key: Window(template, group, self._local(midnight(self.period(key).end) - _TICK))
                         for key, group in book.windows.items()}
        self._tiers = {key: window.tier for key, window in self._windows.items()}
        # Only rules reading collection_days / paid_ratio can change when the rest is paid today.
        self._collection_rules = any(_PAYMENT_FIELDS & r.when.names for r in template.rules)
        # Contracts not fully paid (in input order): pending, gain if paid today, and the rules that adds.
        self._unpaid: dict[int, tuple[Decimal, Decimal, tuple[str, ...]]] = {}
        self.earned = self.pending = ZERO
        self._was: dict[int, Decimal] = {}  # earned now, by contract id, of the recent ones
        self._evaluate_now(book)
        self._deltas: dict[datetime, tuple[Decimal, Decimal]] = {}
        self._since: datetime | None = None  # `_changed` holds every contract that changed after it
        self._changed: list[tuple[datetime, Entry]] = []  # (when it last changed, the contract)
        self._by_instant: dict[int, tuple[list[datetime], list[Decimal]]] = {}
        self._is: dict[int, tuple[Decimal, Decimal]] = {}  # (earned, excess) now, of the contracts looked at

    def _local(self, at: datetime) -> datetime:
        """The instant in `now`'s zone: the facts usually share it, and comparing datetimes of one zone is
        cheap (of two zones, it asks both for their offsets)."""
        return at.astimezone(self.now.tzinfo)

    def period(self, key: int) -> Period:
        month = key * 3 if self._quarter else key
        return period_of(date(month // 12, month % 12 + 1, 1), self.template.period)

    def window_total(self, day: date, cut: datetime | None = None) -> Decimal:
        """The qualifying signed total of the tier window holding `day`, as of `cut` (default: now)."""
        window = self._windows.get(window_key(day, self._quarter))
        if window is None:
            return ZERO
        return window.total if cut is None or cut >= self.now else window.total_at(cut)

    def _rate(self, tier: int, mask: int) -> tuple[Decimal, tuple[str, ...]]:
        """The rate and rule names of a tier and a mask of extra rules (bit i: rule i)."""
        found = self._rates[tier].get(mask)
        if found is None:
            rate, names = self.template.tiers[tier].rate, tuple[str, ...]()
            for i, rule in enumerate(self.template.rules):
                if mask >> i & 1:
                    rate += rule.rate
                    names += (rule.name,)
            found = self._rates[tier][mask] = rate, names
        return found

    def _evaluate_now(self, book: Book) -> None:
        """The totals at now — earned and pending — and each unpaid contract's outlook."""
        earned = NIL if self._entries else ZERO  # a sum of cents (NIL: nothing paid yet)
        for key, paid in book.paid.items():  # contracts sharing a rate, each rounded on its own
            rate = self._rate(self._tiers.get(key & _WINDOWS, 0), key >> 24)[0]
            for capped in paid:
                earned += (rate * capped).quantize(CENT, ROUND_HALF_UP)  # `cents`, inlined: per contract
        was, tiers, rates = self._was, self._tiers, self._rates
        for e in book.recent:  # the same, one by one: "earned by t" looks at them again
            if e.capped:
                tier = tiers.get(e.window, 0)
                found = rates[tier].get(e.mask)
                rate = (self._rate(tier, e.mask) if found is None else found)[0]
                earned += was.setdefault(e.contract.id, (rate * e.capped).quantize(CENT, ROUND_HALF_UP))
            else:
                earned += NIL
        pending = NIL if len(book.unpaid) < len(self._entries) else ZERO  # a settled contract's pending is NIL
        for e in book.unpaid:
            tier = self._tiers.get(e.window, 0)
            rate = self._rate(tier, e.mask)[0]
            receivable = e.amount - e.capped
            due = cents(rate * receivable)
            pending += due
            self._unpaid[e.contract.id] = self._if_paid_today(e, tier, rate, due, receivable)
        self.earned, self.pending = earned, pending

    def _if_paid_today(self, e: Entry, tier: int, rate: Decimal, pending: Decimal, receivable: Decimal
                       ) -> tuple[Decimal, Decimal, tuple[str, ...]]:
        """An unpaid contract's pending, and the money and rules its full collection today would add."""
        if not self._collection_rules:
            return pending, pending, ()
        mask = e.fixed
        if e.moving:
            mask |= self._rules.holding(e, e.amount, max((self.today - e.signed_day).days, 0), self.today)
        full_rate = self._rate(tier, mask)[0]
        gain = cents(full_rate * receivable) + cents((full_rate - rate) * e.capped)
        return pending, gain, self._rate(0, mask & ~e.mask)[1]  # the rules it would add (names are unique)

    def _now(self, e: Entry) -> tuple[int, Decimal, tuple[str, ...], Decimal, Decimal]:
        """A contract now: tier, rate, rule names, earned and excess (R7: the part of earned above the base
        rate)."""
        tier = self._tiers.get(e.window, 0)
        found = self._rates[tier].get(e.mask)
        rate, names = self._rate(tier, e.mask) if found is None else found
        if not e.capped:
            return tier, rate, names, NIL, NIL
        earned = self._was.get(e.contract.id)
        if earned is None:
            earned = (rate * e.capped).quantize(CENT, ROUND_HALF_UP)
        if not (tier or e.mask):
            return tier, rate, names, earned, earned - earned  # earned at the base rate: NIL
        return tier, rate, names, earned, earned - cents(self.template.base_rate * e.capped)

    @cached_property
    def excess(self) -> Decimal:
        """R7: earned to date above the base tier rate."""
        return sum((self._now(e)[4] for e in self._entries), ZERO)

    def _changed_after(self, cut: datetime) -> list[Entry]:
        """The contracts whose facts changed after `cut`: signed, paid or refunded after it, in a window whose
        tier rose after it, or meeting a days_since_signed rule. Every other one is as it is now."""
        if self._since is None or cut < self._since:
            rises = {key: at for key, window in self._windows.items() if (at := window.rose_after(cut)) is not None}
            self._since, self._changed = cut, [
                (max(e.last_change, rises[e.window]) if e.window in rises else e.last_change, e)
                for e in (self._recent if cut >= self._horizon - _TICK else self._entries)
                if e.last_change > cut or e.window in rises]
        return [e for last, e in self._changed if last > cut]

    def _then(self, e: Entry, cut: datetime, day: date, tiers: dict[int, int]) -> tuple[Decimal, Decimal]:
        """(earned, excess) of one contract signed by `cut`, with every fact as of `cut` (`day` is its date;
        `tiers` remembers the windows' tiers at `cut`)."""
        payments = self._payments_of(e)
        if payments and payments[0].received_at > cut:  # (sorted) nothing paid yet: nothing earned
            return NIL, NIL
        tier = tiers.get(e.window)
        if tier is None:
            window = self._windows.get(e.window)
            tier = tiers[e.window] = 0 if window is None else self.template.tier_index(window.total_at(cut))
        if not payments or not payments[-1].received_at > cut:  # paid then as now
            capped, days, mask = e.capped, e.days, e.mask
            if e.moving and self._rules.plan.reads_days:
                mask = e.fixed | self._rules.holding(e, capped, days, day)
        else:
            instants, cum = self._instants(e)
            _net, capped, days = paid_after(e.amount, e.signed_day, instants, cum, bisect_right(instants, cut))
            mask = e.fixed | self._rules.holding(e, capped, days, day) if e.moving else e.fixed
        earned = cents(self._rate(tier, mask)[0] * capped)
        if not (tier or mask):
            return earned, earned - earned  # at the base rate: NIL
        return earned, earned - cents(self.template.base_rate * capped)

    def _instants(self, e: Entry) -> tuple[list[datetime], list[Decimal]]:
        found = self._by_instant.get(e.contract.id)
        if found is None:
            found = self._by_instant[e.contract.id] = by_instant(self._payments_of(e))
        return found

    def _payments_of(self, e: Entry) -> Sequence[PaymentFacts]:
        """A contract's payments known at now, by instant (grouped again for one that is not recent)."""
        if e.payments or e.last_change >= self._horizon:
            return e.payments
        if self._paid is None:
            self._paid = paid_by_contract(self._payments, self.now)
            for group in self._paid.values():
                group.sort(key=_RECEIVED_AT)
        return self._paid.get(e.contract.id, ())

    def _delta(self, cut: datetime) -> tuple[Decimal, Decimal]:
        """(earned, excess) by instant `cut` minus what they are now (0 from `cut` on)."""
        found = self._deltas.get(cut)
        if found is None:
            cut = self._local(cut)
            nothing = self.earned - self.earned  # 0, with the totals' exponent
            earned = excess = nothing
            if cut < self.now:
                day, tiers = day_of(cut), dict[int, int]()
                for e in self._changed_after(cut):  # every other contract contributes what it does now
                    now = self._is.get(e.contract.id)
                    if now is None:
                        now = self._is[e.contract.id] = self._now(e)[3:]
                    now_earned, now_excess = now
                    if e.signed_at > cut:  # not signed yet: nothing
                        earned -= now_earned
                        excess -= now_excess
                    else:
                        then_earned, then_excess = self._then(e, cut, day, tiers)
                        earned += then_earned - now_earned
                        excess += then_excess - now_excess
            found = self._deltas[cut] = earned, excess
        return found

    def cumulative(self, cut: datetime) -> tuple[Decimal, Decimal]:
        """(earned, excess) by instant `cut` (inclusive), every fact — payments, tiers, rules — as of `cut`."""
        earned, excess = self._delta(cut)
        return self.earned + earned, self.excess + excess

    def growth(self, start: date, end: date) -> tuple[Decimal, Decimal]:
        """(earned, excess) that accrued over the days [start, end) (Asia/Shanghai), up to now; negative when
        refunds clawed back more than was earned."""
        first = midnight(start)
        if first > self.now:
            return ZERO, ZERO
        e0, x0 = self._delta(first - _TICK)  # the earlier instant first: it gathers the changed contracts once
        e1, x1 = self._delta(min(midnight(end) - _TICK, self.now))
        return e1 - e0, x1 - x0

    def month_growth(self, month: date) -> tuple[Decimal, Decimal]:
        return self.growth(month, add_months(month, 1))

    def label(self, contract_id: int) -> str:
        """A signed contract's label; the bare id for any other."""
        e = self._by_id.get(contract_id)
        return f"#{contract_id}" if e is None else e.contract.label

    def best_collection(self, bonus: Mapping[int, Decimal]) -> ContractLine | None:
        """The unpaid contract whose full collection today adds the most: its `gain_if_paid_today` plus
        `bonus[contract id]`; ties go to the larger receivable, then the lower contract id."""
        best: tuple[Decimal, Decimal, int] | None = None
        chosen = None
        for cid, (_pending, gain, _rules) in self._unpaid.items():
            e = self._by_id[cid]
            key = (gain + bonus.get(cid, ZERO), e.amount - e.capped, -cid)
            if best is None or key > best:
                best, chosen = key, e
        return None if chosen is None else self._line(chosen, self.period(chosen.window).label)

    @cached_property
    def lines(self) -> tuple[ContractLine, ...]:
        """Every signed contract's line at `now`, in input order."""
        return without_cyclic_gc(self._lines)

    def _lines(self) -> tuple[ContractLine, ...]:
        labels: dict[int, str] = {}
        out = []
        for e in self._entries:
            label = labels.get(e.window)
            if label is None:
                label = labels[e.window] = self.period(e.window).label
            out.append(self._line(e, label))
        return tuple(out)

    def _line(self, e: Entry, period: str) -> ContractLine:
        c = e.contract
        tier, rate, names, earned, excess = self._now(e)
        pending, gain, potential = self._unpaid.get(c.id, _SETTLED)
        return ContractLine(
            c.id, c.label, e.amount, e.signed_day, period, e.qualifies, e.net,
            e.capped / e.amount if e.amount else ONE, e.days, tier, self.template.tiers[tier].rate, names,
            rate, earned, excess, pending, e.amount - e.capped, potential, gain)
