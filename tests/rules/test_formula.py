"""R8 safe formulas: rebate conditions are data, parsed by our own small language — hostile text is refused
with its column, unknown values propagate with Kleene logic, and no eval/exec/compile exists in the code."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError
from decimal import Decimal, DivisionByZero, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.rules.formula import Formula, FormulaError, compile_condition, compile_formula

D = Decimal
FIELDS: dict[str, type] = {"amount": Decimal, "collection_days": Decimal, "industry": str, "vip": bool}
ROOT = Path(__file__).resolve().parents[2]


def row(amount: str | None = "60000", days: str | None = "10", industry: str | None = "零售",
        vip: bool | None = False) -> dict[str, Decimal | str | bool | None]:
    return {"amount": None if amount is None else D(amount), "collection_days": None if days is None else D(days),
            "industry": industry, "vip": vip}


# -- values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "values", "expected"), [
    ("amount >= 50000 and collection_days <= 30", row(), True),
    ("amount >= 50000 and collection_days <= 30", row(amount="49999.99"), False),
    ("amount >= 50000 and collection_days <= 30", row(days="31"), False),
    ("amount >= 50000 and collection_days <= 30", row(days=None), None),  # unpaid: unknown
    ("amount < 50000 and collection_days <= 30", row(days=None), False),  # false and unknown
    ("amount >= 50000 or collection_days <= 30", row(days=None), True),  # true or unknown
    ("amount < 50000 or collection_days <= 30", row(days=None), None),
    ("not collection_days <= 30", row(days=None), None),
    ("not amount > 1", row(), False),
    ('industry == "IT服务"', row(industry="IT服务"), True),
    ("industry != 'IT服务'", row(industry="IT服务"), False),
    ('industry in ("零售", "IT服务")', row(), True),
    ('industry in ("IT服务",)', row(), False),
    ('industry not in ("IT服务", "制造")', row(), True),
    ('industry in ("零售")', row(industry=None), None),
    ("amount in (60000, -1)", row(amount="60000.00"), True),
    ("vip == true", row(vip=True), True),
    ("vip", row(vip=None), None),
    ("vip or amount > 1", row(vip=None), True),
    ("true and not false", row(), True),
    ("1 + 2 * 3 == 7", row(), True),
    ("(1 + 2) * 3 == 9", row(), True),
    ("10 - 4 - 3 == 3", row(), True),  # left-associative
    ("12 / 3 / 2 == 2", row(), True),
    ("-2 * -3 == 6 and +2 == 2 and - -2 == 2", row(), True),
    ("not vip and vip", row(vip=True), False),  # not binds tighter than and
    ("vip or vip and false", row(vip=True), True),  # and binds tighter than or
    ("not amount > 1 + 2", row(amount="2"), True),  # comparison tighter than not, arithmetic tighter still
    ("0.8% == 0.008 and 100% == 1 and 12.5% == 0.125", row(), True),
    ("amount / collection_days > 1000", row(days="0"), None),  # division by zero: unknown, not an error
    ("collection_days > 0 and amount / collection_days > 1000", row(days="0"), False),  # a guard works
    ("collection_days == 0 or amount / collection_days > 1000", row(days="0"), True),
    ("not (collection_days > 0 and amount / collection_days > 1000)", row(days="0"), True),
    ("amount + 1 / 0 > 1 or true", row(amount=None), None),  # every operand of + is evaluated
    ("min(amount, collection_days) == 10 and max(1, 2, 3) == 3", row(), True),
    ("min(amount, collection_days, 5) > 0", row(days=None), None),
    ("amount / 0 > 1 or true", row(amount=None), None),  # unknown / 0 is a division by zero too
    ("amount / collection_days > 1 or true", row(amount=None), True),
])
def test_values(text: str, values: dict[str, Any], expected: bool | None) -> None:
    formula = compile_condition(text, FIELDS)
    assert formula.evaluate(values) is expected
    assert formula.test(values) is (expected is True)


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("amount * 0.8%", row(), D("480")),
    ("amount * 0.8% / collection_days", row(days="3"), D("160")),
    ("amount / collection_days", row(days="0"), None),
    ("0 / 0", row(), None),
    ("amount - collection_days", row(days=None), None),
    ("-amount", row(amount=None), None),
    ("min(amount * 1%, 500) + max(0, amount - 50000) * 0.1%", row(), D("510")),
    ("1 / 3", row(), D("0.3333333333333333333333333333")),  # 28 significant digits
    ("0.1 + 0.2", row(), D("0.3")),  # Decimal, never float
    ("999999999999 * 999999999999 * 999999999999", row(), D("9.999999999970000000000030000E+35")),
])
def test_numeric_values(text: str, values: dict[str, Any], expected: Decimal | None) -> None:
    result = compile_formula(text, FIELDS).evaluate(values)
    if expected is None:
        assert result is None
    else:
        assert isinstance(result, Decimal) and result == expected


@pytest.mark.parametrize("operator", ["and", "or"])
def test_kleene_truth_tables(operator: str) -> None:
    fields = {"p": bool, "q": bool}
    formula = compile_condition(f"p {operator} q", fields)
    values: list[bool | None] = [True, False, None]
    rank = {False: 0, None: 1, True: 2}  # Kleene: and = minimum, or = maximum on false < unknown < true
    pick = min if operator == "and" else max
    for p in values:
        for q in values:
            expected = pick([p, q], key=lambda v: rank[v])
            assert formula.evaluate({"p": p, "q": q}) is expected, (p, q)


def test_the_formula_object() -> None:
    formula = compile_condition("amount >= 50000 and industry in ('零售') and amount < 10000000", FIELDS)
    assert isinstance(formula, Formula)
    assert formula.text.startswith("amount >= 50000")
    assert formula.names == frozenset({"amount", "industry"})
    assert formula.result_type is bool
    assert compile_formula("1 + 1", FIELDS).names == frozenset()
    with pytest.raises(FrozenInstanceError):
        formula.text = "true"  # type: ignore[misc]
    assert compile_condition("amount > 1", FIELDS) == compile_condition("amount > 1", FIELDS)


# -- refusals ------------------------------------------------------------------------------------

NESTED = "(" * 200 + "amount > 1" + ")" * 200


@pytest.mark.parametrize(("text", "column", "message"), [
    ("__import__('os')", 1, "unknown function '__import__'"),
    ("amount.__class__", 7, "attribute access"),
    ('open("x")', 1, "unknown function 'open' (only min and max)"),
    ("amount ** 2 > 1", 8, "'**' is not supported"),
    ("amount[0] > 1", 7, "subscripts"),
    ("lambda: 1", 1, "unknown name 'lambda'"),
    ("1e999 > amount", 1, "malformed number '1e999'"),
    ("amount > 0x10", 10, "malformed number"),
    ("amount > 10000000000000", 10, "larger than 10^12"),
    ("amount > 1000000000001", 10, "larger than 10^12"),
    ("amount > 0.123456789", 10, "more than 8 decimal places"),
    ("amount > 1.", 10, "digits after '.'"),
    ("amount > .5", 10, "a digit before '.'"),
    (NESTED, 21, "nests deeper than 20"),
    ("not " * 21 + "vip", 81, "nests deeper than 20"),
    ("amount > " + "-" * 21 + "1", 30, "nests deeper than 20"),
    ("1+" * 100 + "1 > 0", 201, "more than 200 tokens"),
    ("a" * 600, 501, "longer than 500 characters"),
    ("amount >= 1; x = 2", 12, "no ';'"),
    ("foo > 1", 1, "unknown name 'foo' (allowed: amount, collection_days, industry, vip)"),
    ("amount > 1 and Amount > 1", 16, "unknown name 'Amount'"),
    ("round(amount) > 1", 1, "unknown function 'round'"),
    ("amount.bit_length() > 1", 7, "attribute access"),
    ("min(amount) > 1", 1, "min() needs at least 2 arguments"),
    ("min > 1", 1, "min is a function"),
    ('industry == "IT服务', 13, "unterminated string"),
    ("industry == 'IT服务\"", 13, "unterminated string"),
    ("amount = 1", 8, "'=' is not an operator (use '==' to compare)"),
    ("=", 1, "'=' is not an operator"),
    ("vip && vip", 5, "use 'and'"),
    ("vip || vip", 5, "use 'or'"),
    ("!vip", 1, "use 'not'"),
    ("amount % 2 == 0", 8, "no modulo"),
    ("amount @ 2", 8, "unexpected character '@'"),
    ("amount ＞ 2", 8, "unexpected character '＞'"),
    ("amount > 1 amount", 12, "unexpected name 'amount'"),
    ("(amount > 1", 12, "expected ')'"),
    ("amount > 1)", 11, "unexpected punctuation ')'"),
    ("", 1, "empty formula"),
    ("   ", 1, "empty formula"),
    ("amount >", 9, "unexpected end of formula"),
    ("1 < amount < 3", 12, "cannot be chained"),
    ("amount == 1 in (1)", 13, "cannot be chained"),
    ("industry in ()", 14, "only literals"),
    ("industry in (industry)", 14, "only literals"),
    ("industry in 'a'", 13, "expected '('"),
    ('industry in ("a" "b")', 18, "',' or ')'"),
    ("amount in (1, 'x')", 15, "holds a string but the left side is a number"),
    ('"a" + 1 == 2', 5, "'+' needs numbers on both sides, got string and number"),
    ("amount and 1", 8, "'and' needs booleans"),
    ("vip or amount", 5, "'or' needs booleans"),
    ("industry < 'b'", 10, "'<' compares numbers, got string and string"),
    ("industry == 1", 10, "compares values of one type, got string and number"),
    ("not amount", 1, "'not' needs a boolean, got a number"),
    ("-industry == 'a'", 1, "unary '-' needs a number"),
    ("min(amount, vip) > 1", 13, "argument 2 is a boolean"),
    ("amount", 1, "expected a boolean result, got a number"),
])
def test_refused_with_its_column(text: str, column: int, message: str) -> None:
    with pytest.raises(FormulaError) as raised:
        compile_condition(text, FIELDS)
    error = raised.value
    assert isinstance(error, ValueError)
    assert message in error.message, error.message
    assert error.column == column, str(error)
    assert str(error) == f"column {column}: {error.message}"


def test_compile_formula_wants_a_number() -> None:
    with pytest.raises(FormulaError, match="expected a number result, got a boolean"):
        compile_formula("amount > 1", FIELDS)
    with pytest.raises(FormulaError, match="expected a number result, got a string"):
        compile_formula("industry", FIELDS)


def test_limits_are_inclusive() -> None:
    compile_condition("amount > 1000000000000 and amount < 0.00000001", FIELDS)
    compile_condition(" " * 480 + "amount > 1", FIELDS)  # 490 characters
    compile_condition("(" * 20 + "vip" + ")" * 20, FIELDS)
    compile_condition("not " * 20 + "vip", FIELDS)
    compile_condition("1+" * 98 + "1 >= -1", FIELDS)  # 98 * 2 + 4 = 200 tokens
    exactly_500 = "amount > 1" + " " * 490
    compile_condition(exactly_500, FIELDS)
    with pytest.raises(FormulaError, match="longer than 500"):
        compile_condition(exactly_500 + " ", FIELDS)


def test_bad_field_declarations_are_programming_errors() -> None:
    with pytest.raises(TypeError, match="must be Decimal, str or bool"):
        compile_condition("x > 1", {"x": float})
    with pytest.raises(TypeError):
        compile_condition("x > 1", {"x": int})
    for name in ("and", "min", "2x", "a.b", "金额"):
        with pytest.raises(ValueError, match="cannot be a formula field name"):
            compile_condition("true", {name: Decimal})


@pytest.mark.parametrize(("values", "error"), [
    ({**row(), "amount": 60000.0}, TypeError),
    ({**row(), "amount": 60000}, TypeError),
    ({**row(), "amount": "60000"}, TypeError),
    ({**row(), "amount": D("NaN")}, TypeError),
    ({**row(), "amount": D("Infinity")}, TypeError),
    ({**row(), "industry": 1}, TypeError),
    ({**row(), "vip": 1}, TypeError),
    ({"amount": D(1)}, KeyError),  # every field the formula reads must be given (None when unknown)
])
def test_wrong_runtime_values_raise(values: dict[str, Any], error: type[Exception]) -> None:
    formula = compile_condition("amount > 1 or industry == 'x' or vip", FIELDS)
    with pytest.raises(error):
        formula.evaluate(values)


def test_a_callers_decimal_context_changes_nothing() -> None:
    formula = compile_formula("amount / 3", FIELDS)
    with localcontext() as context:
        context.prec = 3
        context.traps[DivisionByZero] = False
        assert formula.evaluate(row(amount="1")) == D("0.3333333333333333333333333333")
    assert compile_formula("1 / 0", FIELDS).evaluate(row()) is None


# -- hypothesis: nothing but FormulaError at compile time, nothing at all at evaluation --------------

ALPHABET = ["amount", "collection_days", "industry", "vip", "min", "max", "and", "or", "not", "in", "true", "false",
            "(", ")", ",", "+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=", "=", "%", ".", "0", "1", "0.5", "2%",
            "50000", "'IT服务'", '"零售"', "'", '"', "**", ";", "[", "]", "x", "__import__", "1e9", " ", "\n", "\t"]
NUMBERS = st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False))
VALUES = st.fixed_dictionaries({
    "amount": NUMBERS,
    "collection_days": NUMBERS,
    "industry": st.one_of(st.none(), st.sampled_from(["零售", "IT服务"])),
    "vip": st.one_of(st.none(), st.booleans()),
})


def _compile_any(text: str) -> list[Formula]:
    compiled = []
    for compile_function in (compile_condition, compile_formula):
        try:
            compiled.append(compile_function(text, FIELDS))
        except FormulaError as error:
            assert 1 <= error.column <= max(len(text), 500) + 1
    return compiled


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=600), VALUES)
def test_random_text_never_crashes(text: str, values: dict[str, Any]) -> None:
    for formula in _compile_any(text):
        formula.evaluate(values)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map(" ".join), VALUES)
def test_token_soup_never_crashes(text: str, values: dict[str, Any]) -> None:
    for formula in _compile_any(text):
        result = formula.evaluate(values)
        assert result is None or isinstance(result, formula.result_type)


# -- hypothesis: random trees, rendered to text, against a reference evaluator written here ---------

class _Undefined(Exception):
    """The reference's division by zero: the whole value is unknown."""


def _reference(tree: tuple[Any, ...], env: dict[str, Any]) -> Any:
    kind = tree[0]
    if kind == "const":
        return tree[1]
    if kind == "field":
        return env[tree[1]]
    if kind == "neg":
        value = _reference(tree[1], env)
        return None if value is None else -value
    if kind in ("and", "or"):
        stop = kind == "or"  # the value that decides: true for or, false for and
        left = _reference(tree[1], env)
        if left is stop:
            return stop
        right = _reference(tree[2], env)
        if right is stop:
            return stop
        return None if left is None or right is None else not stop
    if kind == "not":
        value = _reference(tree[1], env)
        return None if value is None else not value
    operands = [_reference(child, env) for child in tree[1:]]  # eager: every operand is evaluated
    if kind == "/" and operands[1] is not None and operands[1] == 0:
        raise _Undefined
    if any(value is None for value in operands):
        return None
    a, b = operands[0], operands[-1]
    result: Any = {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
        "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
        "==": lambda: a == b, "!=": lambda: a != b,
        "min": lambda: sorted(operands)[0], "max": lambda: sorted(operands)[-1],
    }[kind]()
    return result


def _render(tree: tuple[Any, ...]) -> str:
    kind = tree[0]
    if kind == "const":
        return str(tree[1]).lower() if isinstance(tree[1], bool) else tree[2]
    if kind == "field":
        return str(tree[1])
    if kind == "neg":
        return f"(-{_render(tree[1])})"
    if kind == "not":
        return f"(not {_render(tree[1])})"
    if kind in ("min", "max"):
        return f"{kind}({', '.join(_render(child) for child in tree[1:])})"
    return f"({_render(tree[1])} {kind} {_render(tree[2])})"


def _number_leaf(value: Decimal, percent: bool) -> tuple[Any, ...]:
    return ("const", value / 100, f"{value:f}%") if percent else ("const", value, f"{value:f}")


NUMBER_TREES = st.recursive(
    st.one_of(
        st.builds(_number_leaf, st.decimals(min_value=0, max_value=10**6, places=2), st.booleans()),
        st.sampled_from([("field", "x"), ("field", "y")]),
    ),
    lambda children: st.one_of(
        st.tuples(st.just("neg"), children),
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children),
        st.tuples(st.sampled_from(["min", "max"]), children, children),
    ),
    max_leaves=4,
)
BOOL_TREES = st.recursive(
    st.one_of(
        st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), NUMBER_TREES, NUMBER_TREES),
        st.just(("field", "flag")),
        st.sampled_from([("const", True), ("const", False)]),
    ),
    lambda children: st.one_of(
        st.tuples(st.just("not"), children),
        st.tuples(st.sampled_from(["and", "or"]), children, children),
    ),
    max_leaves=3,
)
TREE_VALUES = st.fixed_dictionaries({
    "x": st.one_of(st.none(), st.just(D(0)), st.decimals(min_value=-10**6, max_value=10**6, places=3)),
    "y": st.one_of(st.none(), st.just(D(0)), st.decimals(min_value=-10**6, max_value=10**6, places=3)),
    "flag": st.one_of(st.none(), st.booleans()),
})


def _check_tree(tree: tuple[Any, ...], values: dict[str, Any], *, condition: bool) -> None:
    text = _render(tree)
    fields = {"x": Decimal, "y": Decimal, "flag": bool}
    try:
        formula = (compile_condition if condition else compile_formula)(text, fields)
    except FormulaError as error:  # only the size limits may refuse a well-formed tree
        assert re.search("nests deeper|more than 200 tokens|longer than 500", error.message), (text, error)
        assume(False)
        raise
    with localcontext() as context:
        context.prec = 28
        try:
            expected = _reference(tree, values)
        except _Undefined:
            expected = None
    result = formula.evaluate(values)
    if expected is None or isinstance(expected, bool):
        assert result is expected, text
    else:
        assert isinstance(result, Decimal) and result == expected, text


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(NUMBER_TREES, TREE_VALUES)
def test_arithmetic_trees_match_the_reference(tree: tuple[Any, ...], values: dict[str, Any]) -> None:
    _check_tree(tree, values, condition=False)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(BOOL_TREES, TREE_VALUES)
def test_condition_trees_match_the_reference(tree: tuple[Any, ...], values: dict[str, Any]) -> None:
    _check_tree(tree, values, condition=True)


# -- no eval, exec or compile anywhere in the application ------------------------------------------

# A call of the builtin: not a method (`re.compile(`), not part of a longer name (`compile_formula(`,
# `literal_eval(` — caught separately below), not a definition (`def compile(`).
BUILTIN_CALL = re.compile(r"(?<![\w.])(?<!def )(?:eval|exec|compile)\s*\(")
FORBIDDEN = re.compile(r"literal_eval|^\s*(?:import|from)\s+ast\b|__import__\s*\(", re.MULTILINE)


def test_the_grep_catches_what_it_should() -> None:
    for line in ["eval(x)", "x = exec (code)", "compile(src, 'f', 'exec')", "f(eval(x))", "[compile(a)]"]:
        assert BUILTIN_CALL.search(line), line
    for line in ["re.compile(r'x')", "query.compile(dialect)", "compile_formula(t, f)", "def compile(self):",
                 "evaluate(values)", "my_eval(x)", "formula.evaluate(row)", "recompile(x)"]:
        assert not BUILTIN_CALL.search(line), line
    for line in ["from ast import literal_eval", "import ast", "  import ast as a", "__import__('os')"]:
        assert FORBIDDEN.search(line), line


def test_no_eval_exec_or_compile_in_the_application() -> None:
    sources = [path for top in ("bot", "handlers", "store", "jobs") for path in (ROOT / top).rglob("*.py")]
    assert any(path.parts[-2:] == ("formula", "parser.py") for path in sources)
    offences = []
    for path in sources:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if BUILTIN_CALL.search(line) or FORBIDDEN.search(line):
                offences.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offences == []
