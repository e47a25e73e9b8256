"""R8 rebate engine's fast paths against the slow definitions they stand for.

- conditions: a condition split into conjuncts, each tested directly or through a memo, holds exactly when
  the formula evaluator says it does;
- the state memo (`Rules.verdict`): contracts sharing a key share a verdict, whatever the amounts;
- "earned by t" at any instant, long before the last months too (the engine looks at the recent contracts
  only when it can), against the independent oracle of test_rebate_oracle;
- what the pure engine must not change: the collector's state, duplicate contract ids, the zone the
  instants come in.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import SHANGHAI
from bot.rules.formula import compile_condition
from bot.rules.rebate import ContractFacts, FreezeFacts, Ledger, PaymentFacts, parse_rebate, summarize
from bot.rules.rebate.book import Rules
from bot.rules.rebate.conditions import ROW, conjuncts, plan
from bot.rules.rebate.facts import FIELDS
from tests.rules.test_rebate_oracle import POLICIES, REP, SETTINGS, contract_sets, o_contract, o_midnight

D = Decimal
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- conditions

FORMULAS = [
    "amount >= 50000", "50000 <= amount", "amount > 100 and amount <= 500", "amount == 300", "amount != 0",
    "collection_days <= payment_terms_days", "payment_terms_days >= collection_days",
    "product_line == '云服务'", "customer_type != '个体'", "industry in ('IT', '零售')",
    "industry not in ('IT')", "not (amount > 100)", "amount >= 50000 and collection_days <= 30",
    "paid_ratio >= 0.5 or days_since_signed <= 45", "amount / collection_days > 1000",
    "collection_days - 10 > 0 and 1 / (collection_days - 10) > 0", "amount * paid_ratio >= 25000",
    "min(amount, 40000) == 40000 and customer_type == '连锁'", "1 < 2", "1 > 2 and amount > 0",
    "true and amount >= 3000 and customer_type != '个体' and (product_line == '自有品牌' or 1 / 0 > 1)",
]
number = st.one_of(st.none(), st.sampled_from([D(0), D(30), D(100), D(300), D(500), D("0.5"), D(50000)]),
                   st.decimals(min_value=-100, max_value=200000, places=2))
text = st.one_of(st.none(), st.sampled_from(["IT", "零售", "云服务", "自有品牌", "连锁", "个体", ""]))
rows = st.tuples(number, number, text, text, text, number, number, number)


@FAST
@given(row=rows)
def test_conjuncts_hold_exactly_when_the_formula_does(row: tuple[Any, ...]) -> None:
    values = dict(zip(ROW, row, strict=True))
    for text_ in FORMULAS:
        formula = compile_condition(text_, FIELDS)
        assert all(c.test(row) for c in conjuncts(formula)) is formula.test(values), text_


def test_conjuncts_are_the_top_level_and_operands() -> None:
    formula = compile_condition("amount >= 1 and (collection_days <= 30 or paid_ratio > 0) and 1 < 2", FIELDS)
    assert [sorted(c.names) for c in conjuncts(formula)] == [["amount"], ["collection_days", "paid_ratio"], []]


# ---------------------------------------------------------------- the state memo

TEMPLATES = {
    "mixed": {"qualify": "amount > 100 and amount <= 500000 and customer_type != '个体'", "rules": [
        {"name": "exact", "when": "amount == 300", "rate": "0.1%"},
        {"name": "big", "when": "50000 <= amount and collection_days <= payment_terms_days", "rate": "0.2%"},
        {"name": "cloud", "when": "product_line == '云服务'", "rate": "0.3%"}]},
    "strict": {"qualify": "amount > 100", "rules": [
        {"name": "small", "when": "amount <= 300 and paid_ratio >= 0.5", "rate": "0.1%"},
        {"name": "large", "when": "amount > 50000", "rate": "0.2%"}]},
    "arithmetic": {"qualify": "amount * 2 >= 20000", "rules": [
        {"name": "share", "when": "amount * paid_ratio >= 25000", "rate": "0.1%"},
        {"name": "fresh", "when": "days_since_signed <= 45 and amount != 0", "rate": "0.2%"}]},
}


def _settings(name: str) -> Any:
    body = {"period": "month", "tiers": [{"from": 0, "rate": "1%"}, {"from": 100000, "rate": "2%"}],
            **TEMPLATES[name]}
    return parse_rebate({"template": name, "templates": {name: body}})


MEMOS = {name: Rules(plan(_settings(name).template)) for name in TEMPLATES}  # shared by the examples


@FAST
@given(name=st.sampled_from(sorted(TEMPLATES)), amount=number.filter(lambda x: x is not None),
       terms=st.one_of(st.none(), st.sampled_from([0, 30, 45])), product=text, ctype=text,
       days=st.one_of(st.none(), st.integers(0, 90)), ratio=st.sampled_from([D(0), D("0.5"), D("0.75"), D(1)]),
       since=st.integers(0, 120))
def test_the_state_memo_gives_the_verdict_of_the_conditions(
        name: str, amount: Decimal, terms: int | None, product: str | None, ctype: str | None, days: int | None,
        ratio: Decimal, since: int) -> None:
    template = _settings(name).template
    p = plan(template)
    memo = MEMOS[name]
    counted = amount if amount > 0 else D(0)
    contract = ContractFacts(1, REP, amount, "signed", None, None, terms, product, "IT", ctype)
    row = memo.row(contract, counted)
    qualifies, fixed, moving = p.at_signing(row)
    full = (*row, None if days is None else D(days), ratio if p.reads_ratio else None,
            D(since) if p.reads_days else None)
    expected = (qualifies, fixed, moving, fixed | p.mask(moving, full))
    for _ in range(2):  # computed, then remembered
        got = memo.verdict(contract, counted, days, ratio if p.reads_ratio else None,
                           since if p.reads_days else None)
        assert got == expected
    # And by the formulas themselves.
    values = dict(zip(ROW, full, strict=True))
    assert qualifies is (template.qualify is None or template.qualify.test(values))
    assert [bool(expected[3] >> i & 1) for i in range(len(template.rules))] == [
        r.when.test(values) for r in template.rules]


# ---------------------------------------------------------------- earned by any instant

CUT_DAYS = [date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 15), date(2026, 3, 1), date(2026, 4, 1),
            date(2026, 4, 30), date(2026, 5, 31)]


@FAST
@given(case=contract_sets(), name=st.sampled_from(sorted(POLICIES)), cut_day=st.sampled_from(CUT_DAYS),
       hour=st.sampled_from([0, 12]))
def test_earned_by_any_instant_agrees_with_the_oracle(
        case: tuple[list[ContractFacts], list[PaymentFacts], list[FreezeFacts], datetime], name: str,
        cut_day: date, hour: int) -> None:
    contracts, payments, _freezes, now = case
    cut = o_midnight(cut_day) + timedelta(hours=hour)
    ledger = Ledger(SETTINGS[name].template, REP, contracts, payments, now)
    lines = [o_contract(POLICIES[name], c, contracts, payments, min(cut, now)) for c in contracts
             if c.owner_id == REP]
    expected = (sum((x.earned for x in lines if x), D(0)), sum((x.excess for x in lines if x), D(0)))
    assert ledger.cumulative(cut) == expected
    month = cut_day.replace(day=1)
    if o_midnight(month) <= now:  # a month's growth, the R7 figure: any month, however old
        end = o_midnight(date(month.year + month.month // 12, month.month % 12 + 1, 1)) - timedelta(microseconds=1)
        at_end = [o_contract(POLICIES[name], c, contracts, payments, min(end, now)) for c in contracts
                  if c.owner_id == REP]
        before = [o_contract(POLICIES[name], c, contracts, payments, o_midnight(month) - timedelta(microseconds=1))
                  for c in contracts if c.owner_id == REP]
        grew = sum((x.earned for x in at_end if x), D(0)) - sum((x.earned for x in before if x), D(0))
        assert ledger.month_growth(month)[0] == grew


# ---------------------------------------------------------------- what must not change


def _case() -> tuple[list[ContractFacts], list[PaymentFacts], datetime]:
    signed = datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
    contracts = [ContractFacts(cid, REP, D(amount), "signed", signed, signed + timedelta(days=cid),
                               customer_name=f"客户{cid}")
                 for cid, amount in ((1, "60000"), (2, "30000"), (3, "120000"))]
    payments = [PaymentFacts(1, D("60000"), signed + timedelta(days=20)),
                PaymentFacts(3, D("50000"), signed + timedelta(days=40)),
                PaymentFacts(3, D("-5000"), signed + timedelta(days=41)),
                PaymentFacts(3, D("75000"), signed + timedelta(days=41))]
    return contracts, payments, datetime(2026, 4, 20, 9, tzinfo=SHANGHAI)


@pytest.mark.parametrize("enabled", [True, False])
def test_summarize_leaves_the_collector_as_it_found_it(enabled: bool) -> None:
    contracts, payments, now = _case()
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        s = summarize(parse_rebate(None), REP, contracts, payments, [], now)
        assert gc.isenabled() is enabled
        assert len(s.lines) == 3 and gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_a_contract_id_given_twice_counts_once_as_the_last_one() -> None:
    contracts, payments, now = _case()
    twice = [*contracts, replace(contracts[0], amount=D("70000"))]
    s = summarize(parse_rebate(None), REP, twice, payments, [], now)
    assert [(x.contract_id, x.amount) for x in s.lines] == [(1, D("70000")), (2, D("30000")), (3, D("120000"))]
    alone = summarize(parse_rebate(None), REP, [twice[3], *contracts[1:]], payments, [], now)
    assert (s.earned_to_date, s.pending, s.receivables, s.qualifying_total, s.earned_period) == (
        alone.earned_to_date, alone.pending, alone.receivables, alone.qualifying_total, alone.earned_period)


@FAST
@given(case=contract_sets(), name=st.sampled_from(sorted(POLICIES)))
def test_the_zone_of_the_instants_changes_nothing(
        case: tuple[list[ContractFacts], list[PaymentFacts], list[FreezeFacts], datetime], name: str) -> None:
    """The store hands over UTC instants, tests use Asia/Shanghai ones: the same summary, to the cent."""
    contracts, payments, freezes, now = case

    def utc(at: datetime | None) -> datetime | None:
        return None if at is None else at.astimezone(UTC)

    as_utc = [replace(c, signed_at=utc(c.signed_at), legal_approved_at=utc(c.legal_approved_at)) for c in contracts]
    paid_utc = [replace(p, received_at=p.received_at.astimezone(UTC)) for p in payments]
    freezes_utc = [replace(f, released_at=utc(f.released_at)) for f in freezes]
    a = summarize(SETTINGS[name], REP, contracts, payments, freezes, now)
    b = summarize(SETTINGS[name], REP, as_utc, paid_utc, freezes_utc, now.astimezone(UTC))
    fields = ("earned_period", "earned_to_date", "pending", "receivables", "qualifying_total", "frozen", "payouts",
              "best_move", "lines")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]


def test_shanghai_days_of_utc_instants_across_the_zones_old_summer_times() -> None:
    """The engine dates the store's UTC instants by a shift per UTC day; Asia/Shanghai kept summer time in
    1986–1991, so those days (offset changing within the day) must come out as the zone says."""
    start = datetime(1986, 4, 1, tzinfo=UTC)
    instants = [start + timedelta(hours=7 * i + 0.5) for i in range(0, 6 * 24 * 200 // 7)]  # every 7 h, ~200 days
    instants += [datetime(1991, 9, 14, 14, 59, tzinfo=UTC) + timedelta(minutes=m) for m in range(0, 240, 7)]
    contracts = [ContractFacts(i, REP, D(1000), "signed", at, at, customer_name=f"c{i}")
                 for i, at in enumerate(instants)]
    payments = [PaymentFacts(i, D(1000), at + timedelta(hours=17)) for i, at in enumerate(instants)]
    s = summarize(parse_rebate(None), REP, contracts, payments, [], datetime(1992, 1, 1, tzinfo=UTC))
    assert [(x.signed_on, x.collection_days) for x in s.lines] == [
        (at.astimezone(SHANGHAI).date(), ((at + timedelta(hours=17)).astimezone(SHANGHAI).date()
                                          - at.astimezone(SHANGHAI).date()).days) for at in instants]
