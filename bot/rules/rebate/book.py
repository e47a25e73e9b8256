"""R8 rebate inputs read once: a rep's signed contracts with their payments, and tier windows. Pure.

`read_book` makes one pass over the payments (grouping them by contract) and one over the contracts, and
leaves each signed contract as an `Entry`: its signing facts and its state at `now` up to the tier — which
needs every contract of its window first (`Window`). Rates and money are the engine's (engine.py).

This is the per-contract hot path of "我的返点" (10,000 contracts in a few milliseconds), hence: one tuple
per contract and no other object kept; conditions decided by a memo (`Rules`); the state now computed from
the payments without building their instants, which `by_instant` builds only for the few contracts asked
about at an earlier instant; their payments kept only for the contracts that changed since the horizon
(the engine groups them again for an instant before it).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple

from bot.clock import SHANGHAI
from bot.rules.rebate.conditions import ROW, Plan, Row, plan
from bot.rules.rebate.facts import ContractFacts, PaymentFacts
from bot.rules.rebate.periods import SHIFTS, VARIES, shift_of
from bot.rules.rebate.policy import Template
from bot.rules.signed import is_signed

ZERO = Decimal(0)
ONE = Decimal(1)
_RECEIVED_AT = attrgetter("received_at")
_SIGNED_AT = attrgetter("signed_at")
_AMOUNT = attrgetter("amount")
_MEMO_LIMIT = 4096  # states remembered by `Rules` (then it starts afresh): a bound on memory


class Entry(NamedTuple):
    """A signed contract, read once: signing facts, payments, and its state at `now` but for the tier."""

    contract: ContractFacts
    signed_at: datetime
    signed_day: date
    window: int  # its tier window (`window_key`)
    amount: Decimal  # never below 0
    qualifies: bool  # counts toward its window's tier total
    fixed: int  # the extra rules that hold whatever its payments (a mask: bit i is rule i)
    moving: int  # the extra rules whose signing part holds: they depend on payments or days
    payments: Sequence[PaymentFacts]  # those known at now, by instant (kept for the recent ones only)
    net: Decimal  # at now: payments minus refunds, never below 0
    capped: Decimal  # … capped at the amount
    days: int | None  # … collection days (None while not fully paid)
    mask: int  # … the extra rules that hold
    last_change: datetime  # its own facts no longer change after this instant


def paid_by_contract(payments: Iterable[PaymentFacts], now: datetime) -> dict[int, list[PaymentFacts]]:
    """The payments received by `now`, by contract id, in input order."""
    paid: dict[int, list[PaymentFacts]] = {}
    for p in payments:
        if p.received_at <= now:
            group = paid.get(p.contract_id)
            if group is None:
                paid[p.contract_id] = [p]
            else:
                group.append(p)
    return paid


def by_instant(payments: Sequence[PaymentFacts]) -> tuple[list[datetime], list[Decimal]]:
    """Distinct instants in order and the net paid after each (payments at one instant land together)."""
    if len(payments) == 1:
        return [payments[0].received_at], [payments[0].amount]
    instants: list[datetime] = []
    cum: list[Decimal] = []
    total = ZERO
    for p in sorted(payments, key=_RECEIVED_AT):
        at = p.received_at
        total += p.amount
        # (`not <` rather than `==`: sorted, and an aware `==` asks the zone about folds.)
        if instants and not instants[-1] < at:
            cum[-1] = total
        else:
            instants.append(at)
            cum.append(total)
    return instants, cum


def paid_after(amount: Decimal, signed_day: date, instants: Sequence[datetime], cum: Sequence[Decimal],
               k: int) -> tuple[Decimal, Decimal, int | None]:
    """After the first `k` payment instants: net paid (≥ 0), net paid capped at the amount, and the
    collection days (None while not fully paid)."""
    raw = cum[k - 1] if k else ZERO
    net = raw if raw > ZERO else ZERO
    if not amount:
        return net, ZERO, 0
    if raw < amount:
        return net, net, None
    j = k - 1  # the instant it last became fully paid: walk back while it already was
    while j > 0 and cum[j - 1] >= amount:
        j -= 1
    return net, amount, collection_days(instants[j], signed_day)


def collection_days(paid_at: datetime, signed_day: date) -> int:
    """Whole Asia/Shanghai days from signing to being fully paid, 0 if paid in advance."""
    days = paid_at.astimezone(SHANGHAI).toordinal() - signed_day.toordinal()
    return days if days > 0 else 0


def _fully_paid_since(payments: list[PaymentFacts], raw: Decimal, amount: Decimal) -> datetime:
    """The instant sorted `payments` (net `raw` ≥ `amount`) last made the contract fully paid: `paid_after`'s
    walk back, over the payments themselves."""
    i, rest = len(payments) - 1, raw
    while True:
        at = payments[i].received_at
        while i >= 0 and not payments[i].received_at < at:  # take back every payment at that instant
            rest -= payments[i].amount
            i -= 1
        if i < 0 or rest < amount:  # not fully paid before it
            return at


class Rules:
    """A template's conditions, remembered by what decides them (`Plan.state_key`; for a contract's moving
    rules alone, those and the values they read), so that a contract costs a dictionary look-up, not a
    formula. One per template (`rules`), kept between summaries: the memos are bounded, and never change a
    result."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.states: dict[object, tuple[bool, int, int, int]] = {}  # see `verdict`
        self._holds: dict[tuple[object, ...], int] = {}
        self._decimals: dict[int, Decimal] = {}
        names = [ROW[i] for i in plan.signing_reads]  # ContractFacts' names too
        self._moving: Callable[[ContractFacts], object] | None = attrgetter(*names) if names else None

    def decimal(self, n: int) -> Decimal:
        found = self._decimals.get(n)
        if found is None:
            found = self._decimals[n] = Decimal(n)
        return found

    def row(self, contract: ContractFacts, amount: Decimal) -> Row:
        """The condition fields fixed at signing (`conditions.ROW`); `amount` as it counts."""
        terms = contract.payment_terms_days
        return (amount, None if terms is None else self.decimal(terms), contract.industry, contract.product_line,
                contract.customer_type)

    def moving_values(self, amount: Decimal, signed_day: date, capped: Decimal, day: date
                      ) -> tuple[Decimal | None, int | None]:
        """paid_ratio and days_since_signed with `capped` paid on `day`, or None where no rule reads them."""
        p = self.plan
        return ((capped / amount if amount else ONE) if p.reads_ratio else None,
                (day - signed_day).days if p.reads_days else None)

    def verdict(self, contract: ContractFacts, amount: Decimal, days: int | None, ratio: Decimal | None,
                since: int | None) -> tuple[bool, int, int, int]:
        """A contract's (qualifies, fixed, moving, mask): `Plan.at_signing`, and the rules that hold with
        these moving values (`moving_values`; `days`: collection days)."""
        key = self.plan.state_key(contract, amount, days, ratio, since)
        found = self.states.get(key)
        if found is None:
            if len(self.states) >= _MEMO_LIMIT:
                self.states.clear()
            row = self.row(contract, amount)
            qualifies, fixed, moving = self.plan.at_signing(row)
            holds = self._hold(row, moving, days, ratio, since) if moving else 0
            found = self.states[key] = qualifies, fixed, moving, fixed | holds
        return found

    def holding(self, e: Entry, capped: Decimal, days: int | None, day: date) -> int:
        """The rules of `e.moving` (see `Plan.at_signing`) that hold with `capped` paid and `days` collection
        days, on `day`."""
        ratio, since = self.moving_values(e.amount, e.signed_day, capped, day)
        key = (e.moving, None if self._moving is None else self._moving(e.contract),
               days if self.plan.reads_collection else None, ratio, since)
        holds = self._holds.get(key)
        if holds is None:
            if len(self._holds) >= _MEMO_LIMIT:
                self._holds.clear()
            holds = self._holds[key] = self._hold(self.row(e.contract, e.amount), e.moving, days, ratio, since)
        return holds

    def _hold(self, row: Row, moving: int, days: int | None, ratio: Decimal | None, since: int | None) -> int:
        full = (*row, None if days is None else self.decimal(days), ratio,
                None if since is None else self.decimal(since))
        return self.plan.mask(moving, full)


@lru_cache(maxsize=64)
def rules(template: Template) -> Rules:
    return Rules(plan(template))


class Book(NamedTuple):
    """What `read_book` found: the entries, and what the engine needs of them all at now."""

    entries: dict[int, Entry]  # by contract id, in input order
    windows: dict[int, list[Entry]]  # the qualifying ones, by tier window
    paid: dict[int, list[Decimal]]  # `bucket_key(window, rule mask)` → the capped amounts of the others paid
    recent: list[Entry]  # those whose own facts last changed at or after the horizon
    unpaid: list[Entry]  # not fully paid
    receivables: Decimal  # Σ (amount − capped)


def read_book(rules: Rules, quarter: bool, rep_id: int, contracts: Iterable[ContractFacts],
              payments: Iterable[PaymentFacts], now: datetime, today: date, horizon: datetime) -> Book:
    """The rep's contracts that are R10 signed, and signed by now (any other counts nowhere), with the
    payments received by now (later ones are not known yet). Those that changed since `horizon` are the
    `recent` ones."""
    paid = paid_by_contract(payments, now)
    plan, verdict, states = rules.plan, rules.verdict, rules.states
    state_key, reads_ratio, days_matter, new = plan.state_key, plan.reads_ratio, plan.reads_days, tuple.__new__
    entries: dict[int, Entry] = {}
    windows: dict[int, list[Entry]] = {}
    earning: dict[int, list[Decimal]] = {}
    recent: list[Entry] = []
    unpaid: list[Entry] = []
    owed = settled = ZERO  # Σ amount − capped of the unpaid ones; Σ amount of the others
    admitted = 0
    for c in contracts:
        if c.owner_id != rep_id or not is_signed(c):
            continue
        signed_at = c.signed_at
        if signed_at is None or signed_at > now:
            continue
        if signed_at.tzinfo is UTC:  # (see periods.SHIFTS)
            shift = SHIFTS.get(utc_day := signed_at.date()) or shift_of(utc_day)
            day = signed_at.astimezone(SHANGHAI).date() if shift is VARIES else (signed_at + shift).date()
        else:
            day = signed_at.astimezone(SHANGHAI).date()
        month = day.year * 12 + day.month - 1
        amount = c.amount if c.amount > ZERO else ZERO  # a negative amount counts as zero
        # Its state now: `paid_after(…, every instant)`, without building the instants.
        group = paid.get(c.id)
        last, raw = signed_at, ZERO
        if group is not None:
            if len(group) > 1:
                group.sort(key=_RECEIVED_AT)
                for p in group:
                    raw += p.amount
            else:
                raw = group[0].amount
            if group[-1].received_at > last:
                last = group[-1].received_at
        net = raw if raw > ZERO else ZERO
        if not amount:
            capped, days = ZERO, 0
        elif raw < amount:
            capped, days = net, None
        else:
            assert group is not None  # raw ≥ amount > 0
            capped, final = amount, group[-1]
            if len(group) == 1 or (group[-2].received_at < final.received_at and raw - final.amount < amount):
                paid_at = final.received_at  # (the common case: its last payment paid it off)
            else:
                paid_at = _fully_paid_since(group, raw, amount)
            if paid_at.tzinfo is UTC:  # `collection_days`, inlined
                shift = SHIFTS.get(utc_day := paid_at.date()) or shift_of(utc_day)
                paid_at = paid_at.astimezone(SHANGHAI) if shift is VARIES else paid_at + shift
            else:
                paid_at = paid_at.astimezone(SHANGHAI)
            days = paid_at.toordinal() - day.toordinal()
            if days < 0:
                days = 0
        # `rules.verdict(row, days, *rules.moving_values(…))`, inlined: a look-up for nearly every contract.
        ratio = (capped / amount if amount else ONE) if reads_ratio else None
        since = (today - day).days if days_matter else None
        found = states.get(state_key(c, amount, days, ratio, since))
        qualifies, fixed, moving, mask = verdict(c, amount, days, ratio, since) if found is None else found
        if days_matter and moving and plan.reads_days_in(moving):
            last = now  # days_since_signed moves every day
        key = month // 3 if quarter else month
        recently = last >= horizon
        e = entries[c.id] = new(Entry, (c, signed_at, day, key, amount, qualifies, fixed, moving,
                                        group if recently and group else (), net, capped, days, mask, last))
        admitted += 1
        if qualifies:
            window = windows.get(key)
            if window is None:
                windows[key] = [e]
            else:
                window.append(e)
        if recently:
            recent.append(e)
        elif capped:
            bucket = earning.get(by_rate := mask << 24 | key)  # `bucket_key`, inlined
            if bucket is None:
                earning[by_rate] = [capped]
            else:
                bucket.append(capped)
        if capped is amount or not amount:
            settled += amount
        else:
            owed += amount - capped
            unpaid.append(e)
    if admitted > len(entries):  # a contract id came twice: the last one counts
        return _deduplicated(entries, horizon)
    return Book(entries, windows, earning, recent, unpaid, owed + (settled - settled))  # (0, with their exponent)


def bucket_key(window: int, mask: int) -> int:
    """`Book.paid`'s key for a window and a rule mask (windows count months since year 0: < 2**24)."""
    return mask << 24 | window


def _deduplicated(entries: dict[int, Entry], horizon: datetime) -> Book:
    """`read_book`'s book when some contracts came twice (the last of each is in `entries`)."""
    windows: dict[int, list[Entry]] = {}
    earning: dict[int, list[Decimal]] = {}
    recent: list[Entry] = []
    unpaid: list[Entry] = []
    receivables = ZERO
    for e in entries.values():  # (as read_book: `payments` of the recent ones only)
        if e.qualifies:
            windows.setdefault(e.window, []).append(e)
        if e.last_change >= horizon:
            recent.append(e)
        elif e.capped:
            earning.setdefault(bucket_key(e.window, e.mask), []).append(e.capped)
        receivables += e.amount - e.capped
        if e.capped < e.amount:
            unpaid.append(e)
    return Book(entries, windows, earning, recent, unpaid, receivables)


class Window:
    """A tier window's qualifying signed contracts: its total and tier now, and — sorted by signing on first
    use — its total at any instant and when it last moved up a tier."""

    __slots__ = ("_changed_at", "_cum", "_signed", "items", "threshold", "tier", "total", "until")

    def __init__(self, template: Template, items: list[Entry], until: datetime) -> None:
        self.items = items
        self.until = until  # its last instant: every one of its contracts was signed by then
        self.total: Decimal = sum(map(_AMOUNT, items), ZERO)
        self.tier = template.tier_index(self.total)
        self.threshold = template.thresholds[self.tier]
        self._signed: list[datetime] | None = None
        self._cum: list[Decimal] = []  # the running total after each signing
        self._changed_at: datetime | None = None

    def _sort(self) -> list[datetime]:
        if self._signed is None:
            self.items.sort(key=_SIGNED_AT)
            self._signed = [e.signed_at for e in self.items]
            total = ZERO
            for e in self.items:
                total += e.amount
                self._cum.append(total)
            if self.tier:  # the signing that reached the tier it is in now
                self._changed_at = self._signed[bisect_left(self._cum, self.threshold)]
        return self._signed

    def total_at(self, cut: datetime) -> Decimal:
        if self.until <= cut:
            return self.total
        k = bisect_right(self._sort(), cut)
        return self._cum[k - 1] if k else ZERO

    def rose_after(self, cut: datetime) -> datetime | None:
        """When the window last moved up a tier, if that was after `cut` (None: not after, or never)."""
        if self.until <= cut or not self.tier:
            return None
        self._sort()
        assert self._changed_at is not None
        return self._changed_at if self._changed_at > cut else None
