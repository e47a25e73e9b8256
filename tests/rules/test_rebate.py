"""R8 rebate engine by hand-worked examples (and R7's frozen excess, R10's one "signed"): boundaries to the
cent and the day, pro rata earning, refunds, tiers, quarter windows, Asia/Shanghai days, payouts, best move."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.clock import SHANGHAI
from bot.rules.rebate import (
    ContractFacts,
    ContractLine,
    FreezeFacts,
    Ledger,
    PaymentFacts,
    RebateSettings,
    RepSummary,
    parse_rebate,
    progress_bar,
    summarize,
)

REP = 7
D = Decimal


def settings(period: str = "month", payout_day: int = 15) -> RebateSettings:
    return parse_rebate({"template": "hand", "payout_day": payout_day, "templates": {"hand": {
        "period": period, "qualify": "amount >= 10000",
        "tiers": [{"from": 0, "rate": "1%"}, {"from": 100000, "rate": "2%"}],
        "rules": [{"name": "大单快回款", "when": "amount >= 50000 and collection_days <= 30", "rate": "0.8%"}],
    }}})


MONTHLY = settings()
QUARTERLY = settings("quarter")


def sh(y: int, m: int, d: int, h: int = 12, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SHANGHAI)


def contract(cid: int, amount: str, signed_at: datetime | None, *, owner: int = REP, status: str = "signed",
             approved: bool = True, **kw: Any) -> ContractFacts:
    return ContractFacts(cid, owner, D(amount), status, sh(2026, 1, 1) if approved else None, signed_at,
                         customer_name=f"客户{cid}", **kw)


def pay(cid: int, amount: str, at: datetime) -> PaymentFacts:
    return PaymentFacts(cid, D(amount), at)


def run(contracts: Sequence[ContractFacts], payments: Sequence[PaymentFacts], now: datetime,
        freezes: Sequence[FreezeFacts] = (), policy: RebateSettings = MONTHLY) -> RepSummary:
    return summarize(policy, REP, contracts, payments, freezes, now)


def line(summary: RepSummary, cid: int) -> ContractLine:
    (found,) = [x for x in summary.lines if x.contract_id == cid]
    return found


@pytest.mark.parametrize(("amount", "extra", "earned"), [
    ("49999.99", False, "500.00"),  # 1% × 49,999.99 = 499.9999 → half up
    ("50000", True, "900.00"),  # the source's example: ≥ 50,000 and ≤ 30 days → +0.8%
    ("50000.01", True, "900.00"),
])
def test_amount_boundary_to_the_cent(amount: str, extra: bool, earned: str) -> None:
    """R8: `amount >= 50000` holds from exactly 50,000.00, not one cent below."""
    s = run([contract(1, amount, sh(2026, 3, 2, 10))], [pay(1, amount, sh(2026, 3, 12))], sh(2026, 3, 20))
    got = line(s, 1)
    assert (got.rules == ("大单快回款",)) is extra
    assert got.earned == D(earned) and got.pending == 0 and got.receivable == 0


@pytest.mark.parametrize(("days", "extra"), [(29, True), (30, True), (31, False)])
def test_collection_days_boundary(days: int, extra: bool) -> None:
    """R8: collection_days = Asia/Shanghai days from signing to fully paid; ≤ 30 gets the extra."""
    paid_at = datetime.combine(date(2026, 3, 2) + timedelta(days=days), datetime.min.time(), SHANGHAI)
    s = run([contract(1, "50000", sh(2026, 3, 2, 10))], [pay(1, "50000", paid_at + timedelta(hours=9))],
            sh(2026, 5, 1))
    assert line(s, 1).collection_days == days
    assert line(s, 1).earned == (D("900.00") if extra else D("500.00"))


def test_shanghai_day_boundaries() -> None:
    """A payment at 23:30 UTC is already the next day in Shanghai: 31 days, no extra, and April's money."""
    signed = sh(2026, 3, 1, 10)
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # 2026-04-01 07:30 in Shanghai
    s = run([contract(1, "50000", signed)], [pay(1, "50000", late)], sh(2026, 4, 5))
    assert line(s, 1).collection_days == 31 and line(s, 1).rules == ()
    assert [(p.month, p.on, p.earned) for p in s.payouts] == [
        ("2026-03", date(2026, 4, 15), D("0.00")), ("2026-04", date(2026, 5, 15), D("500.00"))]
    in_time = datetime(2026, 3, 31, 15, 59, tzinfo=UTC)  # 23:59 on the 31st in Shanghai: 30 days
    assert line(run([contract(1, "50000", signed)], [pay(1, "50000", in_time)], sh(2026, 4, 5)), 1).earned == 900
    # Signed at 01:00 on 1 April Shanghai time (still 31 March in UTC): it counts in April's window.
    s = run([contract(2, "20000", datetime(2026, 3, 31, 17, tzinfo=UTC))], [], sh(2026, 4, 2))
    assert line(s, 2).period == "2026-04" and s.qualifying_total == 20000


def test_partial_payment_earns_pro_rata() -> None:
    c = contract(1, "80000", sh(2026, 3, 2))
    s = run([c], [pay(1, "30000", sh(2026, 3, 5))], sh(2026, 3, 10))
    got = line(s, 1)
    assert (got.net_paid, got.receivable, got.paid_ratio, got.collection_days) == (30000, 50000, D("0.375"), None)
    assert (got.earned, got.pending) == (D("300.00"), D("500.00"))  # 1% now; the extra is not pending yet
    # Collected today it would meet 大单快回款: 1.8% on the rest + 0.8% catch-up on the 30,000 already paid.
    assert got.potential_rules == ("大单快回款",) and got.gain_if_paid_today == D("1140.00")
    assert s.best_move is not None and s.best_move.contract_id == 1 and s.best_move.total == D("1140.00")
    s = run([c], [pay(1, "30000", sh(2026, 3, 5)), pay(1, "50000", sh(2026, 3, 20))], sh(2026, 3, 25))
    assert (line(s, 1).earned, line(s, 1).pending, s.best_move) == (D("1440.00"), 0, None)


def test_refund_reduces_net_paid_and_claws_back_in_its_month() -> None:
    payments = [pay(1, "60000", sh(2026, 3, 10)), pay(1, "-20000", sh(2026, 4, 3))]
    s = run([contract(1, "60000", sh(2026, 3, 2))], payments, sh(2026, 4, 10))
    got = line(s, 1)
    assert (got.net_paid, got.collection_days, got.rules) == (40000, None, ())  # no longer fully paid
    assert (got.earned, got.pending, got.receivable) == (D("400.00"), D("200.00"), 20000)
    assert [(p.month, p.earned) for p in s.payouts] == [("2026-03", D("1080.00")), ("2026-04", D("-680.00"))]
    # A refund beyond what was paid leaves net paid at zero, never negative.
    s = run([contract(1, "60000", sh(2026, 3, 2))], [pay(1, "10000", sh(2026, 3, 3)), pay(1, "-15000", sh(2026, 3, 4))],
            sh(2026, 3, 10))
    assert (line(s, 1).net_paid, line(s, 1).earned, line(s, 1).receivable) == (0, 0, 60000)


def test_overpayment_earns_on_the_amount_only() -> None:
    s = run([contract(1, "20000", sh(2026, 3, 2))], [pay(1, "25000", sh(2026, 3, 3))], sh(2026, 3, 10))
    assert (line(s, 1).net_paid, line(s, 1).earned, line(s, 1).receivable) == (25000, D("200.00"), 0)


def test_only_r10_signed_contracts_count_anywhere() -> None:
    """R10: no legal approval, draft, void or no signing date → no earned, pending, tier or receivable."""
    signed = sh(2026, 3, 2)
    contracts = [
        contract(1, "200000", signed, approved=False),
        contract(2, "200000", signed, status="draft"),
        contract(3, "200000", signed, status="void"),
        contract(4, "200000", None),
        contract(5, "20000", signed),
    ]
    payments = [pay(cid, "100000", sh(2026, 3, 5)) for cid in (1, 2, 3, 4)] + [pay(5, "20000", sh(2026, 3, 5))]
    s = run(contracts, payments, sh(2026, 3, 10))
    assert [x.contract_id for x in s.lines] == [5]
    assert (s.qualifying_total, s.tier, s.earned_to_date, s.pending, s.receivables) == (20000, 0, 200, 0, 0)
    assert s.best_move is None


def test_tier_crossing_lifts_every_contract_of_the_window() -> None:
    contracts = [contract(1, "60000", sh(2026, 3, 2)), contract(2, "50000", sh(2026, 3, 20)),
                 contract(3, "5000", sh(2026, 3, 5)),  # below `qualify`: not counted, but earns the tier rate
                 contract(4, "9999.99", sh(2026, 4, 2))]
    payments = [pay(cid, amount, sh(2026, 4, 25)) for cid, amount in ((1, "60000"), (2, "50000"), (3, "5000"))]
    s = run(contracts, payments, sh(2026, 4, 28))
    assert [(x.qualifies, x.tier, x.rate, x.earned, x.excess) for x in s.lines[:3]] == [
        (True, 1, D("0.02"), D("1200.00"), D("600.00")),
        (True, 1, D("0.02"), D("1000.00"), D("500.00")),
        (False, 1, D("0.02"), D("100.00"), D("50.00")),
    ]
    assert s.period.label == "2026-04" and (s.qualifying_total, s.tier, s.next_threshold) == (0, 0, 100000)
    assert line(s, 4).qualifies is False and line(s, 4).pending == D("100.00")


def test_quarter_window_and_an_uplift_landing_in_the_month_it_happens() -> None:
    """A later signing lifts the quarter's tier: the uplift on money already paid is earned then."""
    contracts = [contract(1, "45000", sh(2026, 1, 5)), contract(2, "60000", sh(2026, 2, 20))]
    payments = [pay(1, "45000", sh(2026, 1, 10)), pay(2, "60000", sh(2026, 3, 25))]  # 33 days: no extra
    now = sh(2026, 3, 31)
    ledger = Ledger(QUARTERLY.template, REP, contracts, payments, now)
    assert [ledger.month_growth(date(2026, m, 1))[0] for m in (1, 2, 3)] == [D("450.00"), D("450.00"), D("1200.00")]
    s = run(contracts, payments, now, policy=QUARTERLY)
    assert (s.period.label, s.qualifying_total, s.tier, s.next_threshold, s.progress) == ("2026-Q1", 105000, 1, None, 1)
    assert s.earned_period == s.earned_to_date == D("2100.00")
    s = run(contracts, payments, sh(2026, 4, 1, 0), policy=QUARTERLY)  # midnight: a new quarter starts
    assert (s.period.label, s.qualifying_total, s.earned_period) == ("2026-Q2", 0, 0)


@pytest.mark.parametrize(("today", "months"), [
    (sh(2026, 4, 15, 23, 59), [("2026-03", date(2026, 4, 15), True), ("2026-04", date(2026, 5, 15), False)]),
    (sh(2026, 4, 16, 0, 0), [("2026-04", date(2026, 5, 15), False)]),
])
def test_payouts_not_yet_paid(today: datetime, months: list[tuple[str, date, bool]]) -> None:
    """R8: money earned in month M is paid on the payout day of M+1; on that day it is still upcoming."""
    s = run([contract(1, "20000", sh(2026, 3, 2))], [pay(1, "10000", sh(2026, 3, 3)), pay(1, "10000", sh(2026, 4, 3))],
            today)
    assert [(p.month, p.on, p.closed) for p in s.payouts] == months
    assert s.next_payout is not None and s.next_payout.earned == D("100.00")


def _frozen_case(freezes: Sequence[FreezeFacts]) -> RepSummary:
    contracts = [contract(1, "100000", sh(2026, 1, 5)), contract(2, "120000", sh(2026, 4, 1)),
                 contract(3, "30000", sh(2026, 4, 2))]
    return run(contracts, [pay(2, "120000", sh(2026, 4, 10))], sh(2026, 4, 20), freezes)


def test_r7_freeze_withholds_the_months_excess_bonus() -> None:
    """R7: excess = earned above the base tier rate; April's is frozen by contract 1, not payable."""
    s = _frozen_case([FreezeFacts(1, REP, "2026-04", "逾期未回款")])
    assert line(s, 2).earned == D("3360.00") and line(s, 2).excess == D("2160.00")  # 2% tier + 0.8% over 1%
    (part,) = s.frozen
    assert (part.month, part.amount, [(c.contract_id, c.label, c.reason) for c in part.causes]) == (
        "2026-04", D("2160.00"), [(1, "客户1", "逾期未回款")])
    april = s.payouts[-1]
    assert (april.earned, april.frozen, april.payable) == (D("3360.00"), D("2160.00"), D("1200.00"))
    assert s.earned_to_date == D("3360.00") and s.frozen_total == D("2160.00")  # frozen is still earned
    # Collecting contract 1 releases its freeze: that counts in the best move.
    assert s.best_move is not None and (s.best_move.contract_id, s.best_move.gain, s.best_move.unfreezes) == (
        1, D("2000.00"), D("2160.00"))


def test_r7_released_foreign_and_shared_freezes() -> None:
    released = FreezeFacts(1, REP, "2026-04", "逾期", released_at=sh(2026, 4, 18))
    assert _frozen_case([released, FreezeFacts(1, REP + 1, "2026-04", "别人的")]).frozen == ()
    later = FreezeFacts(1, REP, "2026-04", "逾期", released_at=sh(2026, 4, 25))  # not released yet at now
    assert _frozen_case([later]).frozen_total == D("2160.00")
    s = _frozen_case([FreezeFacts(3, REP, "2026-04", "B"), FreezeFacts(1, REP, "2026-04", "A")])
    (part,) = s.frozen  # one month frozen once, whatever the number of overdue contracts
    assert part.amount == D("2160.00") and [c.contract_id for c in part.causes] == [1, 3]
    assert s.best_move is not None and s.best_move.unfreezes == 0  # paying one alone releases nothing
    with pytest.raises(ValueError, match="not YYYY-MM"):
        _frozen_case([FreezeFacts(1, REP, "April", "x")])


def test_future_facts_are_not_known_yet() -> None:
    now = sh(2026, 3, 10)
    s = run([contract(1, "20000", sh(2026, 3, 2)), contract(2, "20000", sh(2026, 3, 11))],
            [pay(1, "20000", sh(2026, 3, 11)), pay(2, "20000", sh(2026, 3, 12))], now)
    assert [x.contract_id for x in s.lines] == [1] and s.earned_to_date == 0 and s.receivables == 20000
    with pytest.raises(ValueError, match="timezone-aware"):
        run([], [], datetime(2026, 3, 10))


def test_other_reps_contracts_are_ignored() -> None:
    s = run([contract(1, "20000", sh(2026, 3, 2), owner=REP + 1)], [pay(1, "20000", sh(2026, 3, 3))], sh(2026, 3, 9))
    assert s.lines == () and s.earned_to_date == 0


def test_shipped_retail_template_end_to_end() -> None:
    retail = parse_rebate({"template": "retail_stores"})
    contracts = [contract(1, "40000", sh(2026, 2, 1), customer_type="连锁", product_line="自有品牌",
                          payment_terms_days=45),
                 contract(2, "40000", sh(2026, 2, 1), customer_type="个体"),  # sole trader: not in the tier total
                 contract(3, "40000", sh(2026, 2, 1), customer_type="连锁")]  # no terms: 账期内回款 unknown
    payments = [pay(1, "40000", sh(2026, 3, 13)), pay(3, "40000", sh(2026, 3, 13))]  # 40 days
    s = run(contracts, payments, sh(2026, 3, 20), policy=retail)
    assert line(s, 1).rules == ("连锁客户", "自有品牌", "账期内回款") and line(s, 1).rate == D("0.018")
    assert line(s, 3).rules == ("连锁客户",) and s.qualifying_total == 80000 and s.period.label == "2026-Q1"


def test_current_window_progress() -> None:
    s = run([contract(1, "60000", sh(2026, 3, 2))], [], sh(2026, 3, 9))
    assert (s.qualifying_total, s.next_threshold, s.progress) == (60000, 100000, D("0.6"))
    assert progress_bar(s.progress) == "▓▓▓▓▓▓░░░░ 60%"


@pytest.mark.parametrize(("ratio", "bar"), [
    (0, "░░░░░░░░░░ 0%"), (D("0.5"), "▓▓▓▓▓░░░░░ 50%"), (D("0.999"), "▓▓▓▓▓▓▓▓▓░ 99%"),
    (1, "▓▓▓▓▓▓▓▓▓▓ 100%"), (D("1.7"), "▓▓▓▓▓▓▓▓▓▓ 100%"), (-0.2, "░░░░░░░░░░ 0%"),
    (0.29, "▓▓░░░░░░░░ 29%"),  # a float: 0.29 × 100 is 28.999… in binary, still shown as 29%
    (D("0.19"), "▓░░░░░░░░░ 19%"),
])
def test_progress_bar(ratio: Decimal | float, bar: str) -> None:
    assert progress_bar(ratio) == bar
    assert progress_bar(D("0.25"), width=4) == "▓░░░ 25%"
