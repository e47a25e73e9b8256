"""R8 rebate (返点) with the R7 frozen part: policies are data, the engine is pure (`now` is passed in).

    settings = parse_rebate(toml["rebate"])            # RebateConfigError names the bad key path
    summary = summarize(settings, rep_id, contracts, payments, freezes, now)   # "我的返点"
    progress_bar(summary.progress)                      # "▓▓▓▓▓░░░░░ 50%"

Policy (`policy.py`, config `[rebate]`; text in `policy.DEFAULT_TOML`)
    A *template* (chosen by name: `[rebate] template`) has a tier window `period` (month | quarter, by
    signing date, Asia/Shanghai), an optional `qualify` condition, `tiers` ({from, rate}: from 0, strictly
    increasing; rates never decreasing) and extra `rules` ({name, when, rate}). Conditions are safe
    formulas (bot/rules/formula) over these names:
      fixed at signing: amount, payment_terms_days, industry, product_line, customer_type;
      moving with collections: collection_days (whole Asia/Shanghai days from signing to the moment the
      contract last became fully paid, 0 if paid in advance; unknown while not fully paid), paid_ratio
      (net paid capped at the amount / amount, 0..1), days_since_signed.
    An unknown value makes a comparison unknown, and unknown never matches. `qualify` may only use the
    names fixed at signing: tier progress counts signings and never moves with collections.
    Rates: "1.5%" or 0.015, each 0..100%, and the top tier plus all extras ≤ 100%.

Semantics
    - Only R10-signed contracts (`is_signed`, signed by `now`) count: earned, pending, tier progress and
      receivables all ignore drafts, void contracts and contracts without legal approval. Payments received
      after `now` are not yet known. A negative contract amount counts as zero (a zero one is paid at signing).
    - Tier: the tier reached by the rep's qualifying signed total in the contract's window. Every signed
      contract (qualifying or not) gets its window's tier rate; rate = tier rate + the rates of every
      extra rule whose `when` holds.
    - Earned on payment, pro rata: earned = cents(rate × min(net paid, amount)); a refund is a negative
      payment (net paid never below 0). Pending = cents(rate × (amount − that)) at today's rate, so a
      `collection_days <= 30` extra is not in pending until it is met; each line also gives the rules
      that full collection today would meet (`potential_rules`) and the money it would add
      (`gain_if_paid_today` = cents(paid-in-full rate × receivable) + cents(extra rate × paid so far)).
      Receivable = amount − capped net paid.
    - Rounding: ONE rule — per contract, each amount is rounded to the cent, half up (`engine.cents`);
      every total is a sum of rounded per-contract amounts; rates are exact Decimals.
    - Months (payouts, R7): "earned by instant t" is the sum above with every fact — payments, tiers,
      rules, days — as of t; money earned in month M is its growth over M (Asia/Shanghai), so a catch-up
      (e.g. 大单快回款 met by the last payment, or a tier crossed later in the window) lands in the month it
      happens and a refund claws back in its own month (a month can be negative). Money earned in M is
      paid on day `payout_day` of M+1 (a calendar day; weekends and holidays are not moved). Upcoming
      payouts: last month's until its payout day (inclusive), and this month's so far.
    - R7 frozen: the rep's *excess bonus* is the part of earned above the base (first) tier rate, i.e.
      cents(rate × paid) − cents(base rate × paid) per contract: tier uplift plus extras. An active freeze
      (not released by `now`) on month M withholds the rep's excess earned in M (clamped to 0..earned in M),
      once per month however many contracts froze it; those contracts and reasons are listed. Frozen money
      is in earned-to-date but not in the payout's payable amount.
    - Best move: the unpaid contract whose full collection today adds the most money: its gain (above)
      plus any R7 frozen bonus that only it holds back (paid in full releases its freeze). Ties: the larger
      receivable, then the lower contract id. Collecting never moves the tier bar (it counts signings).
    - Progress: qualifying total in the current window / the next tier's threshold, 0..1 (1 at the top).
"""

from bot.rules.rebate.engine import ContractLine, Ledger, cents
from bot.rules.rebate.facts import FIELDS, ContractFacts, FreezeFacts, PaymentFacts
from bot.rules.rebate.periods import Period, payout_date, period_of
from bot.rules.rebate.policy import (
    DEFAULT_TOML,
    ExtraRule,
    RebateConfigError,
    RebateSettings,
    Template,
    Tier,
    parse_rate,
    parse_rebate,
)
from bot.rules.rebate.summary import BestMove, FreezeCause, FrozenPart, Payout, RepSummary, progress_bar, summarize

__all__ = [
    "DEFAULT_TOML",
    "FIELDS",
    "BestMove",
    "ContractFacts",
    "ContractLine",
    "ExtraRule",
    "FreezeCause",
    "FreezeFacts",
    "FrozenPart",
    "Ledger",
    "PaymentFacts",
    "Payout",
    "Period",
    "RebateConfigError",
    "RebateSettings",
    "RepSummary",
    "Template",
    "Tier",
    "cents",
    "parse_rate",
    "parse_rebate",
    "payout_date",
    "period_of",
    "progress_bar",
    "summarize",
]
