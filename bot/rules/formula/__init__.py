"""R8 safe formulas: rebate policy conditions and amounts written as data in the config file. Pure.

    when = "amount >= 50000 and collection_days <= 30"
    rate = "min(0.8%, amount / 10000000)"

A hand-written tokenizer (`lexer`), a recursive-descent parser with a static type check (`parser`) and
closures built once from the tree (`evaluate`). Nothing is ever handed to Python's own compiler.

Grammar (loosest binding first)::

    formula    := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [ ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
                      | ["not"] "in" "(" literal ("," literal)* [","] ")" ]
    sum        := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | primary
    primary    := NUMBER | STRING | "true" | "false" | FIELD
                | ("min" | "max") "(" or_expr ("," or_expr)+ ")" | "(" or_expr ")"
    literal    := ["-" | "+"] NUMBER | STRING | "true" | "false"

- NUMBER: digits with an optional fraction (`50000`, `0.008`); no exponent, no `_`, no leading `.`;
  at most 10^12 and 8 decimal places as written; a trailing `%` divides by 100 (`0.8%` is 0.008).
- STRING: `"…"` or `'…'` with no escapes (a string cannot hold its own quote); `industry == "IT服务"`.
- FIELD: an ASCII identifier among the fields the caller allows; any other name is refused, listing them.
  Keywords: and, or, not, in, true, false. Functions: only min and max, with at least two arguments.
- Comparisons do not chain: `0 < amount < 10` is refused (write `0 < amount and amount < 10`).
- Nothing else: no other calls, attributes (`a.b`), subscripts, `**`, `%` as modulo, `=`, `;`, lambdas.
- Limits, refused at compile time: 500 characters, 200 tokens, nesting (brackets, calls and prefix
  operators inside each other) 20 deep.

Types are checked at compile time: fields are `Decimal` (number), `str` or `bool`; arithmetic, ordering and
min/max take numbers; `==`/`!=` and `in` take two sides of one type; `not`/`and`/`or` take booleans.
`compile_condition` wants a boolean formula, `compile_formula` a numeric one. A FormulaError names the
1-based column: ``column 12: unknown name 'foo' (allowed: amount, collection_days)``.

Evaluation semantics:

- Values are `Decimal | str | bool | None`; None means unknown (e.g. `collection_days` of an unpaid
  contract). Every field the formula reads must be a key of the mapping (None when unknown): a missing
  key raises KeyError, a value of the wrong type (float, int, NaN, …) raises TypeError — caller bugs.
- Arithmetic is Decimal in a private context (28 digits, half-even), never float. A division by zero
  (whatever the dividend, even an unknown one), or any other invalid or overflowing operation, makes the
  whole formula's value None.
- Unknown propagates: arithmetic, comparison, `in`, min/max and `not` of an unknown are unknown.
  `and`/`or` follow Kleene (SQL) logic: false and unknown = false, true or unknown = true, otherwise
  unknown. They evaluate left to right and stop once the result is decided, so a guard such as
  `days > 0 and amount / days > 1000` never divides by zero.
- Only `and`/`or` skip an operand; every other operator evaluates all of its operands, so a division by
  zero anywhere outside a skipped side makes the result unknown, even `amount + 1/0` with amount unknown.
- `Formula.test` is True only for a result that is exactly True: unknown never qualifies a contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot.rules.formula.errors import FormulaError
from bot.rules.formula.evaluate import Value, Values, build
from bot.rules.formula.lexer import FUNCTIONS, KEYWORDS
from bot.rules.formula.parser import Type, parse

__all__ = ["Formula", "FormulaError", "Value", "compile_condition", "compile_formula"]

_TYPES: dict[type, Type] = {Decimal: Type.NUMBER, str: Type.TEXT, bool: Type.BOOL}
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Formula:
    """A compiled formula: its text, the fields it reads, and a fast evaluator."""

    text: str
    names: frozenset[str]
    result_type: type  # Decimal for compile_formula, bool for compile_condition
    _run: Callable[[Values], Value] = field(repr=False, compare=False)

    def evaluate(self, values: Values) -> Value:
        """The formula's value for these field values; None when unknown (or after a division by zero)."""
        return self._run(values)

    def test(self, values: Values) -> bool:
        """True only when the formula is exactly True: an unknown result does not qualify."""
        return self._run(values) is True


def compile_condition(text: str, fields: Mapping[str, type]) -> Formula:
    """A boolean formula (a policy's `when`) over `fields` (name → Decimal, str or bool)."""
    return _compile(text, fields, Type.BOOL)


def compile_formula(text: str, fields: Mapping[str, type]) -> Formula:
    """A numeric formula (a rate or an amount) over `fields` (name → Decimal, str or bool)."""
    return _compile(text, fields, Type.NUMBER)


def _compile(text: str, fields: Mapping[str, type], want: Type) -> Formula:
    types = _field_types(fields)
    node, names = parse(text, types)
    if node.type is not want:
        raise FormulaError(f"expected a {want.value} result, got a {node.type.value}", 1)
    run = build(node, {name: types[name] for name in names})
    return Formula(text, names, Decimal if want is Type.NUMBER else bool, run)


def _field_types(fields: Mapping[str, type]) -> dict[str, Type]:
    """The caller's field declarations, checked: a bad one is a programming error, not the admin's."""
    types: dict[str, Type] = {}
    for name, kind in fields.items():
        if not _FIELD_NAME.fullmatch(name) or name in KEYWORDS or name in FUNCTIONS:
            raise ValueError(f"{name!r} cannot be a formula field name")
        if kind not in _TYPES:
            raise TypeError(f"formula field {name!r} must be Decimal, str or bool, not {kind!r}")
        types[name] = _TYPES[kind]
    return types
