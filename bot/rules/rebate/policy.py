"""R8 rebate policy as data: the `[rebate]` config section parsed into templates of tiers and extra rules.

`parse_rebate(table)` takes the `[rebate]` table as tomllib gives it (or None when the file has none) and
returns `RebateSettings`, or raises `RebateConfigError` naming the key path ("rebate.templates.x.rules[0].when:
column 12: unknown name 'foo'"; list indexes count from 0); bot/config.py adds the file line.

The shipped templates (`DEFAULT_TOML`, also the text for config.example.toml) are always available; a
`[rebate.templates.<name>]` table in the file adds a template or replaces the shipped one of that name whole.
"""

from __future__ import annotations

import tomllib
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from bot.rules.formula import Formula, FormulaError, compile_condition
from bot.rules.rebate.facts import FIELDS, SIGNING_FIELDS
from bot.rules.rebate.periods import PERIOD_KINDS

MAX_TIERS = 20
MAX_RULES = 50
ONE = Decimal(1)

DEFAULT_TOML = """\
[rebate]
# R8 返点: policies are data (formulas over contract fields), never code. A template = a tier window, an
# optional qualify condition, tiers by the window's qualifying signed total (R10 signed only), extra rules.
# Condition names (an unknown value never matches):
#   fixed at signing:   amount, payment_terms_days, industry, product_line, customer_type
#   move with payments: collection_days (Asia/Shanghai days from signing to fully paid; unknown until then),
#                       paid_ratio (0..1), days_since_signed
# Earned on payment: rate × money received (refunds deduct); rate = tier rate + matching extras.
# R7: the excess bonus (earned above the first tier's rate) of a month with an overdue contract is frozen.
# Rates: "1.5%" or a fraction "0.015", each 0..100%. A [rebate.templates.<name>] table here adds a template
# or replaces the shipped one of that name. Full semantics: bot/rules/rebate/__init__.py.
template = "it_services"   # R8: the active template; a team switches by naming another one
payout_day = 15            # R8: money earned in month M is paid on this day (1..28) of month M+1
                           #     (a calendar day: a weekend or holiday is not moved)

[rebate.templates.it_services]
label = "IT 服务"
period = "month"           # R8: tier window by signing date (R10): "month" or "quarter", Asia/Shanghai
qualify = "amount >= 10000"  # R8: which signed contracts count toward the tier (signing-time names only)
tiers = [                  # R8: `from` = the window's qualifying signed total: 0 first, then increasing;
                           #     rates never decrease
    { from = 0, rate = "1%" },
    { from = 300000, rate = "1.5%" },
    { from = 800000, rate = "2%" },
]

[[rebate.templates.it_services.rules]]   # R8: extra rate added to the tier rate while `when` holds
name = "大单快回款"
when = "amount >= 50000 and collection_days <= 30"   # the source's example
rate = "0.8%"

[[rebate.templates.it_services.rules]]
name = "云服务"
when = "product_line == '云服务'"
rate = "0.3%"

[rebate.templates.retail_stores]
label = "零售门店"
period = "quarter"         # store roll-outs sign over weeks: a quarter evens out the tier
qualify = "amount >= 3000 and customer_type != '个体'"   # a store's contract; not sole traders (nor a
                                                       # customer whose type is not set: unknown never matches)
tiers = [
    { from = 0, rate = "0.8%" },
    { from = 200000, rate = "1.2%" },
    { from = 500000, rate = "1.6%" },
    { from = 1000000, rate = "2%" },
]

[[rebate.templates.retail_stores.rules]]
name = "连锁客户"
when = "customer_type == '连锁'"
rate = "0.3%"

[[rebate.templates.retail_stores.rules]]
name = "自有品牌"
when = "product_line == '自有品牌'"
rate = "0.5%"

[[rebate.templates.retail_stores.rules]]
name = "账期内回款"
when = "collection_days <= payment_terms_days"   # unknown (no bonus) when the contract has no terms
rate = "0.2%"
"""


class RebateConfigError(ValueError):
    """The `[rebate]` section is invalid; the message starts with the key path."""


@dataclass(frozen=True, slots=True)
class Tier:
    threshold: Decimal  # the window's qualifying signed total from which this rate applies
    rate: Decimal


@dataclass(frozen=True, slots=True)
class ExtraRule:
    """An extra rate added on top of the tier rate for a contract while `when` holds."""

    name: str
    when: Formula
    rate: Decimal
    text: str


@dataclass(frozen=True)
class Template:
    key: str
    label: str
    period: str  # month | quarter
    qualify: Formula | None  # None: every signed contract counts toward the tier
    tiers: tuple[Tier, ...]
    rules: tuple[ExtraRule, ...]
    thresholds: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(t.threshold for t in self.tiers))

    @property
    def base_rate(self) -> Decimal:
        """The first tier's rate: what every signed contract earns at least (R7 excess is above it)."""
        return self.tiers[0].rate

    def tier_index(self, total: Decimal) -> int:
        """The tier reached by a qualifying total (the highest whose threshold it meets)."""
        return max(bisect_right(self.thresholds, total) - 1, 0)

    @property
    def uses_days_since_signed(self) -> bool:
        return any("days_since_signed" in r.when.names for r in self.rules)


@dataclass(frozen=True)
class RebateSettings:
    template: Template  # the active one
    payout_day: int = 15
    templates: Mapping[str, Template] = field(default_factory=dict, hash=False)


def parse_rate(value: object, where: str) -> Decimal:
    """"1.5%" or a plain fraction ("0.015", 0.015) → Decimal fraction in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RebateConfigError(f"{where}: expected a rate like \"1.5%\" or 0.015, got {value!r}")
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        rate = Decimal(text[:-1].strip() if percent else text)
    except InvalidOperation:
        raise RebateConfigError(f"{where}: not a rate: {value!r}") from None
    if not rate.is_finite():
        raise RebateConfigError(f"{where}: not a rate: {value!r}")
    if percent:
        rate /= 100
    if not 0 <= rate <= ONE:
        raise RebateConfigError(f"{where}: must be between 0% and 100%, got {value!r}")
    return rate


def _amount(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RebateConfigError(f"{where}: expected an amount, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RebateConfigError(f"{where}: not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise RebateConfigError(f"{where}: must be a non-negative amount, got {value!r}")
    return amount


def _table(value: object, where: str, known: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RebateConfigError(f"{where}: expected a table, got {value!r}")
    names = set(known)
    for key in value:
        if key not in names:
            raise RebateConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(names))})")
    for key in sorted(set(required) - value.keys()):
        raise RebateConfigError(f"{where}.{key}: missing")
    return value


def _text(value: object, where: str, *, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RebateConfigError(f"{where}: expected a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise RebateConfigError(f"{where}: longer than {max_len} characters")
    return value.strip()


def _condition(value: object, where: str, *, allowed: frozenset[str] | None = None) -> Formula:
    text = _text(value, where, max_len=1000)
    try:
        formula = compile_condition(text, FIELDS)
    except FormulaError as e:
        raise RebateConfigError(f"{where}: column {e.column}: {e.message}") from None
    if allowed is not None and not set(formula.names) <= allowed:
        bad = ", ".join(sorted(set(formula.names) - allowed))
        raise RebateConfigError(
            f"{where}: may use only names fixed at signing ({', '.join(sorted(allowed))}), not {bad}")
    return formula


def _tiers(value: object, where: str) -> tuple[Tier, ...]:
    if not isinstance(value, list) or not value:
        raise RebateConfigError(f"{where}: expected a non-empty list of {{ from = …, rate = … }}")
    if len(value) > MAX_TIERS:
        raise RebateConfigError(f"{where}: at most {MAX_TIERS} tiers")
    tiers: list[Tier] = []
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        item = _table(raw, at, {"from", "rate"}, {"from", "rate"})
        tier = Tier(_amount(item["from"], f"{at}.from"), parse_rate(item["rate"], f"{at}.rate"))
        if i == 0 and tier.threshold != 0:
            raise RebateConfigError(f"{at}.from: the first tier must start at 0, got {item['from']!r}")
        if tiers and tier.threshold <= tiers[-1].threshold:
            raise RebateConfigError(f"{at}.from: thresholds must be strictly increasing, got {item['from']!r}")
        if tiers and tier.rate < tiers[-1].rate:  # crossing a tier must never lower a rep's rebate
            raise RebateConfigError(f"{at}.rate: must not be below the previous tier's rate, got {item['rate']!r}")
        tiers.append(tier)
    return tuple(tiers)


def _rules(value: object, where: str) -> tuple[ExtraRule, ...]:
    if not isinstance(value, list):
        raise RebateConfigError(f"{where}: expected a list of rule tables ([[…rules]])")
    if len(value) > MAX_RULES:
        raise RebateConfigError(f"{where}: at most {MAX_RULES} rules")
    rules: list[ExtraRule] = []
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        item = _table(raw, at, {"name", "when", "rate"}, {"name", "when", "rate"})
        name = _text(item["name"], f"{at}.name", max_len=64)
        if any(r.name == name for r in rules):
            raise RebateConfigError(f"{at}.name: {name!r} is used by an earlier rule")
        when = _condition(item["when"], f"{at}.when")
        rules.append(ExtraRule(name, when, parse_rate(item["rate"], f"{at}.rate"), str(item["when"]).strip()))
    return tuple(rules)


def parse_template(key: str, value: object, where: str) -> Template:
    """One `[rebate.templates.<key>]` table → Template (RebateConfigError names the bad key)."""
    item = _table(value, where, {"label", "period", "qualify", "tiers", "rules"}, {"tiers"})
    label = _text(item.get("label", key), f"{where}.label", max_len=64)
    period = item.get("period", "month")
    if period not in PERIOD_KINDS:
        raise RebateConfigError(f"{where}.period: expected one of {', '.join(PERIOD_KINDS)}, got {period!r}")
    qualify = None
    if "qualify" in item:
        qualify = _condition(item["qualify"], f"{where}.qualify", allowed=SIGNING_FIELDS)
    tiers = _tiers(item["tiers"], f"{where}.tiers")
    rules = _rules(item.get("rules", []), f"{where}.rules")
    most = tiers[-1].rate + sum((r.rate for r in rules), Decimal(0))
    if most > ONE:
        raise RebateConfigError(
            f"{where}.rules: the top tier plus every extra rule comes to {(most * 100).normalize():f}%, more than 100%")
    return Template(key, label, period, qualify, tiers, rules)


@cache
def builtin_templates() -> Mapping[str, Template]:
    """The shipped templates (DEFAULT_TOML)."""
    raw = tomllib.loads(DEFAULT_TOML)["rebate"]["templates"]
    return {key: parse_template(key, value, f"rebate.templates.{key}") for key, value in raw.items()}


def parse_rebate(raw: object) -> RebateSettings:
    """The `[rebate]` table (None when absent) → RebateSettings, or RebateConfigError naming the key path."""
    where = "rebate"
    item = _table({} if raw is None else raw, where, {"template", "payout_day", "templates"})
    payout_day = item.get("payout_day", 15)
    if isinstance(payout_day, bool) or not isinstance(payout_day, int) or not 1 <= payout_day <= 28:
        raise RebateConfigError(f"{where}.payout_day: expected a day of the month 1..28, got {payout_day!r}")
    templates = dict(builtin_templates())
    own = item.get("templates", {})
    if not isinstance(own, dict):
        raise RebateConfigError(f"{where}.templates: expected a table of templates, got {own!r}")
    for key, value in own.items():
        templates[key] = parse_template(key, value, f"{where}.templates.{key}")
    name = item.get("template", "it_services")
    if not isinstance(name, str) or name not in templates:
        raise RebateConfigError(
            f"{where}.template: unknown template {name!r} (known: {', '.join(sorted(templates))})")
    return RebateSettings(templates[name], payout_day, templates)
