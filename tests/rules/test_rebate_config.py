"""R8 rebate policy as configuration: the shipped templates parse, a team switches by name, and hostile or
invalid policies are refused with the key path of the bad value."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.rules.rebate import DEFAULT_TOML, RebateConfigError, parse_rate, parse_rebate

D = Decimal


def test_shipped_templates_parse_and_are_the_default() -> None:
    s = parse_rebate(None)
    assert sorted(s.templates) == ["it_services", "retail_stores"] and s.payout_day == 15
    it = s.template
    assert (it.key, it.label, it.period) == ("it_services", "IT 服务", "month")
    assert [(t.threshold, t.rate) for t in it.tiers] == [(0, D("0.01")), (300000, D("0.015")), (800000, D("0.02"))]
    first = it.rules[0]
    assert (first.name, first.rate) == ("大单快回款", D("0.008"))
    assert first.text == "amount >= 50000 and collection_days <= 30"
    retail = parse_rebate({"template": "retail_stores", "payout_day": 10})
    assert (retail.template.period, retail.template.label, retail.payout_day) == ("quarter", "零售门店", 10)
    assert [r.name for r in retail.template.rules] == ["连锁客户", "自有品牌", "账期内回款"]
    # DEFAULT_TOML is the text for config.example.toml: parsed as a file, it gives the same policy.
    assert parse_rebate(tomllib.loads(DEFAULT_TOML)["rebate"]) == s


def test_example_config_rebate_section_parses() -> None:
    """config.example.toml shows [rebate] with its defaults (once integrated; skipped before)."""
    raw = tomllib.loads((Path(__file__).parents[2] / "config.example.toml").read_text(encoding="utf-8"))
    if "rebate" not in raw:
        pytest.skip("config.example.toml has no [rebate] section yet")
    assert parse_rebate(raw["rebate"]) == parse_rebate(None)


def test_a_team_adds_or_replaces_a_template_by_name() -> None:
    own = {"label": "SaaS", "tiers": [{"from": 0, "rate": 0.02}, {"from": "1e5", "rate": "3%"}]}
    s = parse_rebate({"template": "saas", "templates": {"saas": own, "it_services": own}})
    assert s.template.key == "saas" and s.template.period == "month" and s.template.qualify is None
    assert [t.rate for t in s.template.tiers] == [D("0.02"), D("0.03")] and s.template.rules == ()
    assert s.templates["it_services"].label == "SaaS" and "retail_stores" in s.templates


@pytest.mark.parametrize(("text", "rate"), [
    ("1.5%", "0.015"), (" 0.8 % ", "0.008"), ("0.015", "0.015"), (0.015, "0.015"), (0, "0"), ("100%", "1"),
    (1, "1"),
])
def test_rates(text: object, rate: str) -> None:
    assert parse_rate(text, "x") == D(rate)


def _template(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "period": "month", "qualify": "amount >= 10000",
        "tiers": [{"from": 0, "rate": "1%"}, {"from": 300000, "rate": "1.5%"}],
        "rules": [{"name": "a", "when": "amount >= 1", "rate": "0.1%"},
                  {"name": "b", "when": "amount >= 50000 and collection_days <= 30", "rate": "0.8%"}],
    }
    base.update(changes)
    return {"template": "x", "templates": {"x": base}}


def _rule(**changes: Any) -> dict[str, Any]:
    rule = {"name": "b", "when": "amount >= 1", "rate": "0.8%"}
    rule.update(changes)
    return _template(rules=[{"name": "a", "when": "amount >= 1", "rate": "0.1%"}, rule])


X = "rebate.templates.x"
HOSTILE: list[tuple[object, str]] = [
    (_rule(when="amount >= 1 and foo > 2"), f"{X}.rules[1].when: column 17: unknown name 'foo'"),
    (_rule(when="amount >="), f"{X}.rules[1].when: column "),
    (_rule(when="amount"), f"{X}.rules[1].when: column 1: expected a boolean"),
    (_rule(when="__import__('os').system('x')"), f"{X}.rules[1].when: column "),
    (_rule(when="amount > 1 and " * 40 + "true"), f"{X}.rules[1].when: column "),
    (_rule(when=""), f"{X}.rules[1].when: expected a non-empty string"),
    (_rule(when=42), f"{X}.rules[1].when: expected a non-empty string"),
    (_rule(rate="150%"), f"{X}.rules[1].rate: must be between 0% and 100%"),
    (_rule(rate="1.5"), f"{X}.rules[1].rate: must be between 0% and 100%"),  # 150% written as a fraction
    (_rule(rate="-1%"), f"{X}.rules[1].rate: must be between 0% and 100%"),
    (_rule(rate="abc"), f"{X}.rules[1].rate: not a rate"),
    (_rule(rate="NaN%"), f"{X}.rules[1].rate: not a rate"),
    (_rule(rate="Infinity"), f"{X}.rules[1].rate: not a rate"),
    (_rule(rate=True), f"{X}.rules[1].rate: expected a rate"),
    (_rule(rate=["1%"]), f"{X}.rules[1].rate: expected a rate"),
    (_rule(name="a"), f"{X}.rules[1].name: 'a' is used by an earlier rule"),
    (_rule(name=""), f"{X}.rules[1].name: expected a non-empty string"),
    (_rule(colour="red"), f"{X}.rules[1].colour: unknown key"),
    (_template(rules=[{"name": "a", "rate": "1%"}]), f"{X}.rules[0].when: missing"),
    (_template(rules={"a": 1}), f"{X}.rules: expected a list"),
    (_template(rules=[{"name": f"r{i}", "when": "true", "rate": "0%"} for i in range(51)]), f"{X}.rules: at most 50"),
    (_rule(rate="99%"), f"{X}.rules: the top tier plus every extra rule comes to 100.6%, more than 100%"),
    (_template(tiers=[{"from": 0, "rate": "1%"}, {"from": 300000, "rate": "2%"}, {"from": 300000, "rate": "3%"}]),
     f"{X}.tiers[2].from: thresholds must be strictly increasing"),
    (_template(tiers=[{"from": 0, "rate": "1%"}, {"from": 300000, "rate": "2%"}, {"from": 200000, "rate": "3%"}]),
     f"{X}.tiers[2].from: thresholds must be strictly increasing"),
    (_template(tiers=[{"from": 1000, "rate": "1%"}]), f"{X}.tiers[0].from: the first tier must start at 0"),
    (_template(tiers=[{"from": 0, "rate": "2%"}, {"from": 10, "rate": "1%"}]),
     f"{X}.tiers[1].rate: must not be below the previous tier's rate"),
    (_template(tiers=[{"from": 0, "rate": "150%"}]), f"{X}.tiers[0].rate: must be between 0% and 100%"),
    (_template(tiers=[{"from": -5, "rate": "1%"}]), f"{X}.tiers[0].from: must be a non-negative amount"),
    (_template(tiers=[{"from": "lots", "rate": "1%"}]), f"{X}.tiers[0].from: not an amount"),
    (_template(tiers=[{"from": 0}]), f"{X}.tiers[0].rate: missing"),
    (_template(tiers=[]), f"{X}.tiers: expected a non-empty list"),
    (_template(tiers="1%"), f"{X}.tiers: expected a non-empty list"),
    (_template(tiers=[{"from": i, "rate": "1%"} for i in range(21)]), f"{X}.tiers: at most 20 tiers"),
    (_template(qualify="collection_days <= 30"), f"{X}.qualify: may use only names fixed at signing"),
    (_template(qualify="paid_ratio >= 1 or amount > 0"), f"{X}.qualify: may use only names fixed at signing"),
    (_template(qualify="amount >= 1 and bar"), f"{X}.qualify: column 17: unknown name 'bar'"),
    (_template(period="week"), f"{X}.period: expected one of month, quarter"),
    (_template(label=""), f"{X}.label: expected a non-empty string"),
    (_template(colour="red"), f"{X}.colour: unknown key"),
    ({"template": "x", "templates": {"x": {"period": "month"}}}, f"{X}.tiers: missing"),
    ({"template": "x", "templates": {"x": "it_services"}}, f"{X}: expected a table"),
    ({"templates": ["x"]}, "rebate.templates: expected a table of templates"),
    ({"template": "nope"}, "rebate.template: unknown template 'nope' (known: it_services, retail_stores)"),
    ({"template": 3}, "rebate.template: unknown template 3"),
    ({"payout_day": 0}, "rebate.payout_day: expected a day of the month 1..28, got 0"),
    ({"payout_day": 29}, "rebate.payout_day: expected a day of the month 1..28, got 29"),
    ({"payout_day": "15"}, "rebate.payout_day: expected a day of the month 1..28"),
    ({"payout_day": True}, "rebate.payout_day: expected a day of the month 1..28"),
    ({"colour": "red"}, "rebate.colour: unknown key"),
    ("it_services", "rebate: expected a table"),
]


@pytest.mark.parametrize(("raw", "message"), HOSTILE)
def test_invalid_policies_are_refused_naming_the_key(raw: object, message: str) -> None:
    with pytest.raises(RebateConfigError) as caught:
        parse_rebate(raw)
    assert str(caught.value).startswith(message), str(caught.value)
    assert isinstance(caught.value, ValueError)  # bot/config.py turns it into a ConfigError with the file line
