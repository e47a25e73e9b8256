"""A checked tree → nested Python closures, built once per formula and called per contract. Pure.

Plain function objects (no code generation): each node becomes a closure over its children's closures,
specialised by static type, so evaluating a typical condition costs a few microseconds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, DecimalException, DivisionByZero, InvalidOperation, Overflow
from operator import itemgetter
from typing import Any

from bot.rules.formula.parser import Binary, Call, Const, Field, Member, Node, Type, Unary

Value = Decimal | str | bool | None
Values = Mapping[str, Value]
Number = Callable[[Values], Decimal | None]
Boolean = Callable[[Values], bool | None]
Text = Callable[[Values], str | None]
Anything = Callable[[Values], Value]

# Arithmetic goes through this context's methods (never the thread's current context), so a caller's
# decimal settings cannot change a rebate, and 1/0, 0/0, inf-inf and overflow all raise here.
CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])

_ARITHMETIC: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": CONTEXT.add, "-": CONTEXT.subtract, "*": CONTEXT.multiply,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


def build(node: Node, reads: Mapping[str, Type]) -> Anything:
    """The whole formula as one function: its value, or None when unknown or when arithmetic failed.

    `reads` are the fields the formula reads; each is checked on every call, before evaluation, so a
    value of the wrong type raises TypeError even when `and`/`or` would skip the part that reads it.
    """
    inner = _any(node)
    decimals = tuple(name for name, kind in reads.items() if kind is Type.NUMBER)
    strings = tuple(name for name, kind in reads.items() if kind is Type.TEXT)
    booleans = tuple(name for name, kind in reads.items() if kind is Type.BOOL)

    def run(values: Values) -> Value:
        for name in decimals:
            value = values[name]
            if value is not None and not (isinstance(value, Decimal) and value.is_finite()):
                raise TypeError(f"formula field {name!r} must be a finite Decimal or None, got {value!r}")
        for name in strings:
            value = values[name]
            if value is not None and not isinstance(value, str):
                raise TypeError(f"formula field {name!r} must be a str or None, got {value!r}")
        for name in booleans:
            value = values[name]
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"formula field {name!r} must be a bool or None, got {value!r}")
        try:
            return inner(values)
        except DecimalException:  # division by zero (or 0/0, overflow): the whole result is unknown
            return None

    return run


def _any(node: Node) -> Anything:
    if node.type is Type.NUMBER:
        return _number(node)
    if node.type is Type.BOOL:
        return _boolean(node)
    return _text(node)


def _number(node: Node) -> Number:
    if isinstance(node, Const):
        assert isinstance(node.value, Decimal)
        constant = node.value
        return lambda values: constant
    if isinstance(node, Field):
        return itemgetter(node.name)  # type-checked by `run` before evaluation
    if isinstance(node, Unary):
        inner = _number(node.operand)
        if node.op == "+":
            return inner

        def negate(values: Values) -> Decimal | None:
            value = inner(values)
            return None if value is None else CONTEXT.minus(value)

        return negate
    if isinstance(node, Binary) and node.op == "/":
        return _division(_number(node.left), _number(node.right))
    if isinstance(node, Binary):
        left, right, apply = _number(node.left), _number(node.right), _ARITHMETIC[node.op]

        def arithmetic(values: Values) -> Decimal | None:
            a, b = left(values), right(values)
            return None if a is None or b is None else apply(a, b)

        return arithmetic
    assert isinstance(node, Call)
    return _extreme([_number(arg) for arg in node.args], smaller=node.function == "min")


def _division(left: Number, right: Number) -> Number:
    def division(values: Values) -> Decimal | None:
        a, b = left(values), right(values)
        if b is None:
            return None
        if a is None:
            if b.is_zero():
                raise DivisionByZero  # unknown / 0 is a division by zero all the same
            return None
        return CONTEXT.divide(a, b)

    return division


def _extreme(args: list[Number], *, smaller: bool) -> Number:
    def extreme(values: Values) -> Decimal | None:
        found = [arg(values) for arg in args]  # all of them, as every operator but and/or
        best: Decimal | None = None
        for value in found:
            if value is None:
                return None  # min(unknown, 5) is unknown: the unknown one may be smaller
            if best is None or (value < best if smaller else value > best):
                best = value
        return best

    return extreme


def _boolean(node: Node) -> Boolean:
    if isinstance(node, Const):
        assert isinstance(node.value, bool)
        constant = node.value
        return lambda values: constant
    if isinstance(node, Field):
        return itemgetter(node.name)
    if isinstance(node, Unary):
        inner = _boolean(node.operand)

        def negation(values: Values) -> bool | None:
            value = inner(values)
            return None if value is None else not value

        return negation
    if isinstance(node, Member):
        return _member(node)
    assert isinstance(node, Binary)
    if node.op == "and":
        return _and(_boolean(node.left), _boolean(node.right))
    if node.op == "or":
        return _or(_boolean(node.left), _boolean(node.right))
    return _comparison(node)


def _and(left: Boolean, right: Boolean) -> Boolean:
    def conjunction(values: Values) -> bool | None:  # Kleene: false wins, then unknown
        a = left(values)
        if a is False:
            return False
        b = right(values)
        if b is False:
            return False
        return None if a is None or b is None else True

    return conjunction


def _or(left: Boolean, right: Boolean) -> Boolean:
    def disjunction(values: Values) -> bool | None:  # Kleene: true wins, then unknown
        a = left(values)
        if a is True:
            return True
        b = right(values)
        if b is True:
            return True
        return None if a is None or b is None else False

    return disjunction


def _comparison(node: Binary) -> Boolean:
    left, compare = _any(node.left), _COMPARE[node.op]
    if isinstance(node.right, Const):  # the common shape, `amount >= 50000`: one call fewer
        constant = node.right.value

        def against_constant(values: Values) -> bool | None:
            a = left(values)
            return None if a is None else compare(a, constant)

        return against_constant
    right = _any(node.right)

    def comparison(values: Values) -> bool | None:
        a, b = left(values), right(values)
        return None if a is None or b is None else compare(a, b)

    return comparison


def _member(node: Member) -> Boolean:
    operand, choices, negated = _any(node.operand), node.choices, node.negated

    def membership(values: Values) -> bool | None:
        value = operand(values)
        return None if value is None else (value in choices) is not negated

    return membership


def _text(node: Node) -> Text:
    if isinstance(node, Const):
        assert isinstance(node.value, str)
        constant = node.value
        return lambda values: constant
    assert isinstance(node, Field)
    return itemgetter(node.name)
