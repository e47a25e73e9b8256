"""R8 template conditions prepared for the engine's hot loop: split into conjuncts, tested over rows. Pure.

A condition (`qualify`, a rule's `when`) holds exactly when each of its top-level `and` operands — its
*conjuncts* — holds: Kleene `and` is True only when both sides are True, and an operand whose arithmetic
fails (a division by zero) is unknown, so the condition is not True either way. So a rule's conjuncts that
read only names fixed at signing decide whether it can hold at all (`Plan.at_signing`), and its other
conjuncts — collection_days, paid_ratio, days_since_signed — whether it holds in a given state
(`Plan.mask`).

A conjunct is a test over a *row*: the field values in `ROW` order, the first `SIGNING` of them fixed at
signing (numbers as Decimal, unknown as None). A comparison whose operands are each a field or a literal
(`amount >= 50000`, `product_line == '云服务'`, `collection_days <= payment_terms_days`) is tested directly:
unknown never holds, otherwise the comparison, exactly as the formula evaluator computes that shape. Any
other conjunct runs through the formula evaluator and is remembered per distinct value of the fields it
reads (a memo, so it never changes a result).

`Plan.state_key` names what decides all the verdicts for a contract — the values the conditions read, but
the amount only by its place among the literals it is compared with when that is all they do with it — so
that the engine decides 10,000 contracts with a few hundred evaluations (book.Rules).
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache, partial
from operator import attrgetter, itemgetter
from typing import Any

from bot.rules.formula import Formula, Value
from bot.rules.formula.evaluate import build
from bot.rules.formula.parser import Binary, Const, Field, Member, Node, Type, Unary, parse
from bot.rules.rebate.facts import FIELDS, ContractFacts
from bot.rules.rebate.policy import Template

# The names a condition may read, in row order: fixed at signing first, then those moving with payments.
ROW = ("amount", "payment_terms_days", "industry", "product_line", "customer_type",
       "collection_days", "paid_ratio", "days_since_signed")
SIGNING = 5
MOVING = frozenset(ROW[SIGNING:])
Row = tuple[Value, ...]
Test = Callable[[Row], bool]
# (contract, its amount as counted, collection days, paid ratio, days since signed) → what decides its verdicts
StateKey = Callable[[ContractFacts, Decimal, "int | None", "Decimal | None", "int | None"], object]

_TYPES: Mapping[str, Type] = {name: {Decimal: Type.NUMBER, str: Type.TEXT, bool: Type.BOOL}[kind]
                              for name, kind in FIELDS.items()}
_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}  # `a op b` is `b op' a`
_MEMO_LIMIT = 4096  # distinct values remembered per conjunct (then it starts afresh): a bound on memory


@dataclass(frozen=True, slots=True)
class Conjunct:
    names: frozenset[str]  # the fields it reads
    test: Test  # True only when the conjunct is exactly True for the row
    bound: Value = None  # the literal of a `field op literal` (or `literal op field`) comparison …
    op: str = ""  # … and its operator as `field op literal` reads it


def conjuncts(formula: Formula) -> tuple[Conjunct, ...]:
    """A condition's top-level `and` operands, left to right, each as a test over a row."""
    node, _names = parse(formula.text, _TYPES)
    return tuple(_conjunct(part) for part in _operands(node))


def _operands(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "and":
        return _operands(node.left) + _operands(node.right)
    return [node]


def _reads(node: Node) -> set[str]:
    if isinstance(node, Field):
        return {node.name}
    if isinstance(node, Unary | Member):
        return _reads(node.operand)
    if isinstance(node, Binary):
        return _reads(node.left) | _reads(node.right)
    if isinstance(node, Const):
        return set()
    return set().union(*(_reads(arg) for arg in node.args))


def _conjunct(node: Node) -> Conjunct:
    names = frozenset(_reads(node))
    direct = _comparison(node)
    if direct is not None:
        assert isinstance(node, Binary)
        if isinstance(node.right, Const):
            return Conjunct(names, direct, node.right.value, node.op)
        if isinstance(node.left, Const):
            return Conjunct(names, direct, node.left.value, _MIRRORED[node.op])
        return Conjunct(names, direct)
    run = build(node, {name: _TYPES[name] for name in names})
    if not names:  # a constant: decided once
        holds = run({}) is True
        return Conjunct(names, lambda row: holds)
    return Conjunct(names, _remembered(run, sorted(names)))


def _comparison(node: Node) -> Test | None:
    """`field op literal`, `literal op field` or `field op field`: unknown never holds, else the comparison."""
    if not isinstance(node, Binary) or node.op not in _COMPARE:
        return None
    compare, left, right = _COMPARE[node.op], node.left, node.right
    if isinstance(left, Field) and isinstance(right, Const):
        i, constant = ROW.index(left.name), right.value
        return lambda row: (value := row[i]) is not None and compare(value, constant)
    if isinstance(left, Const) and isinstance(right, Field):
        constant, j = left.value, ROW.index(right.name)
        return lambda row: (value := row[j]) is not None and compare(constant, value)
    if isinstance(left, Field) and isinstance(right, Field):
        i, j = ROW.index(left.name), ROW.index(right.name)
        return lambda row: (a := row[i]) is not None and (b := row[j]) is not None and compare(a, b)
    return None


def _remembered(run: Callable[[Mapping[str, Value]], Value], names: list[str]) -> Test:
    """The formula evaluator's verdict, remembered per distinct value of the fields it reads."""
    places = [ROW.index(name) for name in names]
    key_of = itemgetter(*places)
    memo: dict[object, bool] = {}

    def test(row: Row) -> bool:
        key = key_of(row)
        found = memo.get(key)
        if found is None:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            found = memo[key] = run({name: row[i] for name, i in zip(names, places, strict=True)}) is True
        return found

    return test


@dataclass(frozen=True, slots=True)
class RulePlan:
    """An extra rule: its bit in a contract's rule mask, and its conjuncts by when they can change."""

    bit: int
    at_signing: tuple[Test, ...]  # read only names fixed at signing
    moving: tuple[Test, ...]  # read collection_days, paid_ratio or days_since_signed
    reads_days: bool  # a moving conjunct reads days_since_signed


@dataclass(frozen=True)
class Plan:
    """A template's conditions as tests. A contract's extra rules are a bit mask (bit i: `rules[i]`).

    The rules' moving conjuncts read only the moving names and the signing fields at `signing_reads`, so
    those values decide `mask` for a contract (the engine remembers it by them)."""

    qualify: tuple[Test, ...]  # empty: every contract qualifies
    rules: tuple[RulePlan, ...]
    reads_collection: bool  # some rule reads collection_days
    reads_ratio: bool  # … paid_ratio
    reads_days: bool  # … days_since_signed
    signing_reads: tuple[int, ...]  # the row places of the signing fields that moving conjuncts read
    state_key: StateKey  # what decides the verdicts (`_state_key`)

    def at_signing(self, row: Row) -> tuple[bool, int, int]:
        """From a contract's signing fields (a row of `SIGNING` values): whether it qualifies for the tier
        total, the mask of rules that hold whatever its payments, and the mask of rules that may hold
        depending on them."""
        qualifies = True
        for test in self.qualify:
            if not test(row):
                qualifies = False
                break
        fixed = moving = 0
        for rule in self.rules:
            for test in rule.at_signing:
                if not test(row):
                    break
            else:
                if rule.moving:
                    moving |= rule.bit
                else:
                    fixed |= rule.bit
        return qualifies, fixed, moving

    def mask(self, moving: int, row: Row) -> int:
        """The rules of a `moving` mask (from `at_signing`) whose moving conjuncts hold for a full row."""
        holds = 0
        for rule in self.rules:
            if moving & rule.bit:
                for test in rule.moving:
                    if not test(row):
                        break
                else:
                    holds |= rule.bit
        return holds

    def reads_days_in(self, moving: int) -> bool:
        """Whether the rules in a `moving` mask read days_since_signed (so they may change every day)."""
        return any(rule.reads_days for rule in self.rules if moving & rule.bit)


def _state_key(signing: list[Conjunct], moving_reads: set[str]) -> StateKey:
    """What decides a contract's verdicts (`Plan.at_signing`, then `Plan.mask`): the values the conditions
    read — except the amount when the signing conjuncts only compare it with literals (`amount >= 50000`):
    then its place among those literals, so that contracts of different amounts share a verdict."""
    reads = {name for c in signing for name in c.names} | (moving_reads - MOVING)
    by_amount = [c for c in signing if "amount" in c.names]
    bounds = sorted({c.bound for c in by_amount if isinstance(c.bound, Decimal)})
    ops = {c.op for c in by_amount}
    place: Callable[[Decimal], object]
    if "amount" in moving_reads or any(c.names != {"amount"} or not c.op for c in by_amount):
        place = _itself  # read some other way: the amount itself decides
    elif not bounds:
        place = _nothing
    elif ops <= {">=", "<"}:  # `a >= b` and `a < b` follow #{b ≤ a}
        place = partial(bisect_right, bounds)
    elif ops <= {">", "<="}:  # … #{b < a}
        place = partial(bisect_left, bounds)
    else:
        place = partial(_both_sides, bounds)
    names = [name for name in ROW[1:SIGNING] if name in reads]  # ContractFacts' names too
    rest: Callable[[ContractFacts], object] = attrgetter(*names) if names else _nothing
    collection = "collection_days" in moving_reads

    def key(contract: ContractFacts, amount: Decimal, days: int | None, ratio: Decimal | None,
            since: int | None) -> object:
        return place(amount), rest(contract), days if collection else None, ratio, since

    return key


def _itself(value: object) -> object:
    return value


def _nothing(value: object) -> None:
    return None


def _both_sides(bounds: list[Decimal], amount: Decimal) -> tuple[int, int]:
    return bisect_left(bounds, amount), bisect_right(bounds, amount)


@lru_cache(maxsize=64)
def plan(template: Template) -> Plan:
    """The template's conditions as tests (built once per template)."""
    qualify = [] if template.qualify is None else list(conjuncts(template.qualify))
    signing = list(qualify)
    rules = []
    reads: set[str] = set()
    for i, rule in enumerate(template.rules):
        parts = conjuncts(rule.when)
        fixed = [c for c in parts if not c.names & MOVING]
        moving = [c for c in parts if c.names & MOVING]
        signing += fixed
        for c in moving:
            reads |= c.names
        rules.append(RulePlan(1 << i, tuple(c.test for c in fixed), tuple(c.test for c in moving),
                              any("days_since_signed" in c.names for c in moving)))
    return Plan(tuple(c.test for c in qualify), tuple(rules), "collection_days" in reads, "paid_ratio" in reads,
                "days_since_signed" in reads, tuple(i for i, name in enumerate(ROW[:SIGNING]) if name in reads),
                _state_key(signing, reads))
