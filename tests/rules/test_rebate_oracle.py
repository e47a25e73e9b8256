"""R8/R7/R10 rebate engine against an independent oracle, to the cent, on generated contract sets.

The oracle below shares nothing with bot.rules.rebate but the input dataclasses: the test policies are
written twice (formulas for the engine, Python lambdas for the oracle), and it recomputes every contract
from scratch for every instant it is asked about — O(n²), no windows, no bisect, no fast paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import SHANGHAI
from bot.rules.rebate import ContractFacts, FreezeFacts, PaymentFacts, RepSummary, parse_rebate, summarize

REP, OTHER = 7, 8
D = Decimal
Ctx = dict[str, Any]


# ---------------------------------------------------------------- the test policies, twice


@dataclass(frozen=True)
class Policy:
    config: dict[str, Any]  # the `[rebate]` table the engine parses
    quarter: bool
    qualify: Callable[[ContractFacts], bool]
    tiers: list[tuple[Decimal, Decimal]]
    rules: list[tuple[str, Decimal, Callable[[Ctx], bool]]]
    payout_day: int


def _known(*values: Any) -> bool:
    return all(v is not None for v in values)


MONTHLY = Policy(
    config={"template": "m", "payout_day": 15, "templates": {"m": {
        "period": "month", "qualify": "amount >= 10000",
        "tiers": [{"from": 0, "rate": "1%"}, {"from": 100000, "rate": "1.5%"}, {"from": 150000, "rate": "2.5%"}],
        "rules": [
            {"name": "fast", "when": "amount >= 50000 and collection_days <= 30", "rate": "0.8%"},
            {"name": "cloud", "when": "product_line == '云服务'", "rate": "0.3%"},
            {"name": "half", "when": "paid_ratio >= 0.5", "rate": "0.1%"},
        ]}}},
    quarter=False,
    qualify=lambda c: c.amount >= 10000,
    tiers=[(D(0), D("0.01")), (D(100000), D("0.015")), (D(150000), D("0.025"))],
    rules=[
        ("fast", D("0.008"), lambda f: f["amount"] >= 50000 and _known(f["collection_days"])
         and f["collection_days"] <= 30),
        ("cloud", D("0.003"), lambda f: f["product_line"] == "云服务"),
        ("half", D("0.001"), lambda f: f["paid_ratio"] >= D("0.5")),
    ],
    payout_day=15,
)

QUARTERLY = Policy(
    config={"template": "q", "payout_day": 10, "templates": {"q": {
        "period": "quarter", "qualify": "amount >= 3000 and customer_type != '个体'",
        "tiers": [{"from": 0, "rate": "0.8%"}, {"from": 60000, "rate": "1.2%"}, {"from": 120000, "rate": "1.6%"}],
        "rules": [
            {"name": "chain", "when": "customer_type == '连锁'", "rate": "0.3%"},
            {"name": "terms", "when": "collection_days <= payment_terms_days", "rate": "0.2%"},
            {"name": "early", "when": "days_since_signed <= 45 and paid_ratio >= 0.5", "rate": "0.1%"},
        ]}}},
    quarter=True,
    qualify=lambda c: c.amount >= 3000 and c.customer_type is not None and c.customer_type != "个体",
    tiers=[(D(0), D("0.008")), (D(60000), D("0.012")), (D(120000), D("0.016"))],
    rules=[
        ("chain", D("0.003"), lambda f: f["customer_type"] == "连锁"),
        ("terms", D("0.002"), lambda f: _known(f["collection_days"], f["payment_terms_days"])
         and f["collection_days"] <= f["payment_terms_days"]),
        ("early", D("0.001"), lambda f: f["days_since_signed"] <= 45 and f["paid_ratio"] >= D("0.5")),
    ],
    payout_day=10,
)
POLICIES = {"monthly": MONTHLY, "quarterly": QUARTERLY}
SETTINGS = {name: parse_rebate(p.config) for name, p in POLICIES.items()}


# ---------------------------------------------------------------- the oracle


def o_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def o_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), SHANGHAI)


def o_cents(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def o_signed(c: ContractFacts, t: datetime) -> bool:
    return c.status == "signed" and c.legal_approved_at is not None and c.signed_at is not None and c.signed_at <= t


def o_window(pol: Policy, day: date) -> tuple[int, int]:
    return (day.year, (day.month - 1) // 3) if pol.quarter else (day.year, day.month)


def o_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass
class OLine:
    net: Decimal
    paid: Decimal
    days: int | None
    tier: int
    rate: Decimal
    names: list[str]
    earned: Decimal
    excess: Decimal
    pending: Decimal
    receivable: Decimal
    gain: Decimal


def o_contract(pol: Policy, c: ContractFacts, contracts: Sequence[ContractFacts], payments: Sequence[PaymentFacts],
               t: datetime) -> OLine | None:
    """Everything about one contract with every fact as of `t`, from scratch."""
    if not o_signed(c, t):
        return None
    assert c.signed_at is not None
    amount = max(c.amount, D(0))
    signed_day = o_day(c.signed_at)
    total = D(0)
    for x in contracts:
        if x.owner_id == c.owner_id and o_signed(x, t) and pol.qualify(x):
            assert x.signed_at is not None
            if o_window(pol, o_day(x.signed_at)) == o_window(pol, signed_day):
                total += max(x.amount, D(0))
    tier = max(i for i, (threshold, _) in enumerate(pol.tiers) if total >= threshold)
    mine = sorted((p for p in payments if p.contract_id == c.id and p.received_at <= t), key=lambda p: p.received_at)
    running, since, i = D(0), None, 0
    while i < len(mine):
        instant = mine[i].received_at
        while i < len(mine) and mine[i].received_at == instant:
            running += mine[i].amount
            i += 1
        if running >= amount:
            since = since or instant
        else:
            since = None
    days = 0 if amount == 0 else None if since is None else max((o_day(since) - signed_day).days, 0)
    net = max(running, D(0))
    paid = min(net, amount)

    def rate_of(paid_now: Decimal, collection: int | None) -> tuple[Decimal, list[str]]:
        ctx = {"amount": amount, "collection_days": collection, "paid_ratio": paid_now / amount if amount else D(1),
               "days_since_signed": (o_day(t) - signed_day).days, "industry": c.industry,
               "product_line": c.product_line, "customer_type": c.customer_type,
               "payment_terms_days": c.payment_terms_days}
        names = [name for name, _, test in pol.rules if test(ctx)]
        return pol.tiers[tier][1] + sum((r for name, r, _ in pol.rules if name in names), D(0)), names

    rate, names = rate_of(paid, days)
    earned = o_cents(rate * paid)
    full_rate, _ = rate_of(amount, max((o_day(t) - signed_day).days, 0))
    gain = o_cents(full_rate * (amount - paid)) + o_cents((full_rate - rate) * paid) if paid < amount else D(0)
    return OLine(net, paid, days, tier, rate, names, earned, earned - o_cents(pol.tiers[0][1] * paid),
                 o_cents(rate * (amount - paid)), amount - paid, gain)


def oracle(pol: Policy, contracts: Sequence[ContractFacts], payments: Sequence[PaymentFacts],
           freezes: Sequence[FreezeFacts], now: datetime) -> dict[str, Any]:
    mine = [c for c in contracts if c.owner_id == REP]

    def by(t: datetime) -> tuple[Decimal, Decimal]:
        lines = [o_contract(pol, c, contracts, payments, t) for c in mine]
        return sum((x.earned for x in lines if x), D(0)), sum((x.excess for x in lines if x), D(0))

    def between(first: date, end: date) -> tuple[Decimal, Decimal]:
        if o_midnight(first) > now:
            return D(0), D(0)
        e1, x1 = by(min(o_midnight(end) - timedelta(microseconds=1), now))
        e0, x0 = by(o_midnight(first) - timedelta(microseconds=1))
        return e1 - e0, x1 - x0

    today = o_day(now)
    lines = {c.id: line for c in mine if (line := o_contract(pol, c, contracts, payments, now))}
    frozen: dict[str, tuple[Decimal, list[int]]] = {}
    for f in sorted(freezes, key=lambda f: f.contract_id):
        if f.user_id == REP and (f.released_at is None or f.released_at > now):
            first = date(int(f.month[:4]), int(f.month[5:]), 1)
            earned, excess = between(first, o_next_month(first))
            amount = min(max(excess, D(0)), max(earned, D(0)))
            frozen[f.month] = (amount, [*frozen.get(f.month, (D(0), []))[1], f.contract_id])
    first = today.replace(day=1)
    prev = (first - timedelta(days=1)).replace(day=1)
    payouts = []
    for month in ([prev] if today.day <= pol.payout_day else []) + [first]:
        label = f"{month.year:04d}-{month.month:02d}"
        earned = between(month, o_next_month(month))[0]
        held = frozen[label][0] if label in frozen else D(0)
        payouts.append((label, o_next_month(month).replace(day=pol.payout_day), earned, held, earned - held))
    best = None
    for cid, x in sorted(lines.items()):
        if x.receivable > 0:
            freed = sum((amount for amount, ids in frozen.values() if set(ids) == {cid}), D(0))
            key = (x.gain + freed, x.receivable, -cid)
            if best is None or key > best[0]:
                best = (key, (cid, x.gain, freed))
    window_start = first if not pol.quarter else date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    window_end = o_next_month(o_next_month(o_next_month(window_start))) if pol.quarter else o_next_month(first)
    total = D(0)
    for c in mine:
        if o_signed(c, now) and pol.qualify(c) and c.signed_at is not None and \
                o_window(pol, o_day(c.signed_at)) == o_window(pol, today):
            total += max(c.amount, D(0))
    tier = max(i for i, (threshold, _) in enumerate(pol.tiers) if total >= threshold)
    return {
        "lines": {cid: (x.net, x.days, x.tier, x.rate, tuple(x.names), x.earned, x.excess, x.pending,
                        x.receivable, x.gain) for cid, x in lines.items()},
        "earned_to_date": by(now)[0], "earned_period": between(window_start, window_end)[0],
        "pending": sum((x.pending for x in lines.values()), D(0)),
        "receivables": sum((x.receivable for x in lines.values()), D(0)),
        "window": (window_start, window_end, total, tier),
        "frozen": [(m, amount, ids) for m, (amount, ids) in sorted(frozen.items())],
        "payouts": payouts, "best": best[1] if best else None,
    }


def engine_view(s: RepSummary) -> dict[str, Any]:
    return {
        "lines": {x.contract_id: (x.net_paid, x.collection_days, x.tier, x.rate, x.rules, x.earned, x.excess,
                                  x.pending, x.receivable, x.gain_if_paid_today) for x in s.lines},
        "earned_to_date": s.earned_to_date, "earned_period": s.earned_period, "pending": s.pending,
        "receivables": s.receivables, "window": (s.period.start, s.period.end, s.qualifying_total, s.tier),
        "frozen": [(f.month, f.amount, [c.contract_id for c in f.causes]) for f in s.frozen],
        "payouts": [(p.month, p.on, p.earned, p.frozen, p.payable) for p in s.payouts],
        "best": None if s.best_move is None else (s.best_move.contract_id, s.best_move.gain, s.best_move.unfreezes),
    }


# ---------------------------------------------------------------- generated contract sets, boundaries drawn often

NOWS = [
    datetime(2026, 4, 15, 10, tzinfo=SHANGHAI), datetime(2026, 4, 16, 0, 0, tzinfo=SHANGHAI),
    datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI), datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=SHANGHAI),
    datetime(2026, 4, 9, 16, 0, tzinfo=UTC),  # 10 April 00:00 in Shanghai: the quarterly policy's payout day
    datetime(2026, 6, 30, 20, tzinfo=SHANGHAI), datetime(2026, 5, 20, 9, tzinfo=SHANGHAI),
]
AMOUNTS = ["49999.99", "50000", "50000.01", "10000", "9999.99", "3000", "2999.99", "60000", "100000", "0.01",
           "12344.50", "50.50"]  # 1% of these ends in an exact half cent: half up, not half even
TIMES = [timedelta(0), timedelta(hours=7, minutes=30),  # 23:30 UTC the day before
         timedelta(hours=8), timedelta(hours=12), timedelta(hours=23, minutes=30), timedelta(days=1, microseconds=-1)]
MONTHS = ["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]

money = st.decimals(min_value=D("0.01"), max_value=D("200000"), places=2)


@st.composite
def contract_sets(draw: st.DrawFn) -> tuple[list[ContractFacts], list[PaymentFacts], list[FreezeFacts], datetime]:
    now = draw(st.sampled_from(NOWS))
    contracts: list[ContractFacts] = []
    payments: list[PaymentFacts] = []
    for cid in range(1, draw(st.integers(0, 7)) + 1):
        amount = draw(st.one_of(st.sampled_from(AMOUNTS).map(D), money))
        back = draw(st.one_of(st.sampled_from([29, 30, 31, 45, 46]), st.integers(0, 130)))  # today's age
        signed_day = o_day(now) - timedelta(days=back)
        signed_at = o_midnight(signed_day) + draw(st.sampled_from(TIMES))  # may lie after now: not signed yet
        contracts.append(ContractFacts(
            cid, draw(st.sampled_from([REP] * 4 + [OTHER])), amount,
            draw(st.sampled_from(["signed"] * 5 + ["draft", "void"])),
            draw(st.sampled_from([signed_at - timedelta(days=1)] * 6 + [None])),  # None: no legal approval
            draw(st.sampled_from([signed_at] * 12 + [None])),
            draw(st.sampled_from([None, 30, 45])), draw(st.sampled_from([None, "云服务", "硬件"])), "IT",
            draw(st.sampled_from([None, "连锁", "个体", "企业"])), f"客户{cid}"))
        paid = D(0)
        offsets = draw(st.lists(st.one_of(st.sampled_from([29, 30, 31]), st.integers(-3, 100)), max_size=3))
        for offset in sorted(offsets):  # in time order, so "paid, refunded, paid again" happens
            kind = draw(st.sampled_from(["rest", "rest", "half", "part", "refund"]))
            value = {"rest": amount - paid, "half": (amount / 2).quantize(D("0.01")),
                     "part": draw(money), "refund": -draw(money)}[kind]
            at = o_midnight(signed_day + timedelta(days=offset)) + draw(st.sampled_from(TIMES))
            payments.append(PaymentFacts(cid, value, at))
            paid += value
    pairs = draw(st.lists(st.tuples(st.integers(1, len(contracts) + 1), st.sampled_from(MONTHS)), max_size=3,
                          unique=True))
    freezes = [FreezeFacts(cid, draw(st.sampled_from([REP, REP, REP, OTHER])), month, f"逾期 {cid}",
                           draw(st.sampled_from([None, None, None, now - timedelta(days=1), now, now + timedelta(1)])))
               for cid, month in pairs]
    return contracts, payments, freezes, now


CHECKS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CHECKS
@given(case=contract_sets(), name=st.sampled_from(sorted(POLICIES)))
def test_engine_agrees_with_the_oracle_to_the_cent(
        case: tuple[list[ContractFacts], list[PaymentFacts], list[FreezeFacts], datetime], name: str) -> None:
    """R8 + R7 + R10: every line and every figure of the summary, against the oracle."""
    contracts, payments, freezes, now = case
    got = engine_view(summarize(SETTINGS[name], REP, contracts, payments, freezes, now))
    assert got == oracle(POLICIES[name], contracts, payments, freezes, now)


# ---------------------------------------------------------------- monotonicity

MONOTONE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _earned(name: str, contracts: Sequence[ContractFacts], payments: Sequence[PaymentFacts], now: datetime) -> Decimal:
    return summarize(SETTINGS[name], REP, contracts, payments, [], now).earned_to_date


@MONOTONE
@given(case=contract_sets(), name=st.sampled_from(sorted(POLICIES)),
       amount=st.decimals(min_value=D(10000), max_value=D(200000), places=2),
       back=st.integers(0, 130), paid_after=st.integers(0, 60))
def test_a_new_signed_paid_contract_never_lowers_earned(
        case: tuple[list[ContractFacts], list[PaymentFacts], list[FreezeFacts], datetime], name: str,
        amount: Decimal, back: int, paid_after: int) -> None:
    contracts, payments, _freezes, now = case
    before = _earned(name, contracts, payments, now)
    signed_at = now - timedelta(days=back)
    new = ContractFacts(99, REP, amount, "signed", signed_at, signed_at, customer_type="企业")  # qualifies in both
    paid_at = min(signed_at + timedelta(days=paid_after), now)
    assert _earned(name, [*contracts, new], [*payments, PaymentFacts(99, amount, paid_at)], now) >= before


@MONOTONE
@given(case=contract_sets(), name=st.sampled_from(sorted(POLICIES)), pick=st.integers(0, 100), more=money)
def test_raising_a_payment_never_lowers_earned(
        case: tuple[list[ContractFacts], list[PaymentFacts], list[FreezeFacts], datetime], name: str, pick: int,
        more: Decimal) -> None:
    contracts, payments, _freezes, now = case
    if not payments:
        return
    i = pick % len(payments)
    raised = [*payments[:i], replace(payments[i], amount=payments[i].amount + more), *payments[i + 1:]]
    assert _earned(name, contracts, raised, now) >= _earned(name, contracts, payments, now)
