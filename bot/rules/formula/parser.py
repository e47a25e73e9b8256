"""Tokens → a typed expression tree: recursive descent with a static type check and a depth limit. Pure.

Every node carries its static type, so `"a" + 1` or `amount and 1` is refused here, naming the column of
the operator, and the evaluator never meets a value of an unexpected type.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from bot.rules.formula.errors import FormulaError
from bot.rules.formula.lexer import FUNCTIONS, Kind, Token, tokenize

MAX_DEPTH = 20  # brackets, function calls and prefix operators nested inside each other

ARITHMETIC = frozenset({"+", "-", "*", "/"})
ORDERING = frozenset({"<", "<=", ">", ">="})
EQUALITY = frozenset({"==", "!="})


class Type(Enum):
    NUMBER = "number"
    TEXT = "string"
    BOOL = "boolean"


Literal = Decimal | str | bool


@dataclass(frozen=True, slots=True)
class Const:
    value: Literal
    type: Type
    column: int


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: Type
    column: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "+", "not"
    operand: Node
    type: Type
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # arithmetic, comparison, "and", "or"
    left: Node
    right: Node
    type: Type
    column: int


@dataclass(frozen=True, slots=True)
class Member:
    operand: Node
    choices: frozenset[Literal]
    negated: bool  # `not in`
    type: Type
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    function: str  # "min" or "max"
    args: tuple[Node, ...]
    type: Type
    column: int


Node = Const | Field | Unary | Binary | Member | Call


def parse(text: str, fields: Mapping[str, Type]) -> tuple[Node, frozenset[str]]:
    """The tree of `text` and the field names it reads; FormulaError on the first problem."""
    parser = _Parser(tokenize(text), fields)
    if parser.peek().kind is Kind.END:
        raise FormulaError("empty formula", 1)
    node = parser.expression()
    end = parser.peek()
    if end.kind is not Kind.END:
        raise FormulaError(f"unexpected {end.describe()} (expected an operator or the end)", end.column)
    return node, frozenset(parser.names)


class _Parser:
    def __init__(self, tokens: Iterator[Token], fields: Mapping[str, Type]) -> None:
        self._tokens = tokens
        self._ahead: list[Token] = []
        self._fields = fields
        self._depth = 0
        self.names: set[str] = set()

    # -- token stream ---------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token:
        while len(self._ahead) <= offset:
            if self._ahead and self._ahead[-1].kind is Kind.END:
                return self._ahead[-1]
            self._ahead.append(next(self._tokens))
        return self._ahead[offset]

    def _take(self) -> Token:
        token = self.peek()
        if token.kind is not Kind.END:
            self._ahead.pop(0)
        return token

    def _at(self, kind: Kind, *texts: str) -> bool:
        token = self.peek()
        return token.kind is kind and token.text in texts

    def _expect(self, text: str, what: str) -> Token:
        token = self.peek()
        if token.kind is not Kind.PUNCT or token.text != text:
            raise FormulaError(f"expected {what}, found {token.describe()}", token.column)
        return self._take()

    def _enter(self, token: Token) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise FormulaError(f"formula nests deeper than {MAX_DEPTH} levels", token.column)

    # -- grammar, loosest binding first ---------------------------------------------------------
    def expression(self) -> Node:
        """or_expr := and_expr ("or" and_expr)*"""
        node = self._and()
        while self._at(Kind.KEYWORD, "or"):
            op = self._take()
            node = _logic(op, node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._at(Kind.KEYWORD, "and"):
            op = self._take()
            node = _logic(op, node, self._not())
        return node

    def _not(self) -> Node:
        if not self._at(Kind.KEYWORD, "not"):
            return self._comparison()
        op = self._take()
        self._enter(op)
        operand = self._not()
        self._depth -= 1
        if operand.type is not Type.BOOL:
            raise FormulaError(f"'not' needs a boolean, got a {operand.type.value}", op.column)
        return Unary("not", operand, Type.BOOL, op.column)

    def _comparison(self) -> Node:
        left = self._sum()
        token = self.peek()
        if token.kind is Kind.OP and token.text in ORDERING | EQUALITY:
            self._take()
            node: Node = _compare(token, left, self._sum())
        elif token.kind is Kind.KEYWORD and token.text == "in":
            node = self._member(left, negated=False)
        elif token.kind is Kind.KEYWORD and token.text == "not" and self._is_in(self.peek(1)):
            node = self._member(left, negated=True)
        else:
            return left
        after = self.peek()
        if (after.kind is Kind.OP and after.text in ORDERING | EQUALITY) or self._is_in(after):
            raise FormulaError("comparisons cannot be chained (join them with 'and')", after.column)
        return node

    @staticmethod
    def _is_in(token: Token) -> bool:
        return token.kind is Kind.KEYWORD and token.text == "in"

    def _member(self, left: Node, *, negated: bool) -> Node:
        op = self._take()
        if negated:
            self._take()
        self._expect("(", "'(' and a list of literals after 'in'")
        choices: set[Literal] = set()
        while True:
            choice = self._literal()
            if choice.type is not left.type:
                raise FormulaError(
                    f"'in' list holds a {choice.type.value} but the left side is a {left.type.value}", choice.column
                )
            choices.add(choice.value)
            if self._at(Kind.PUNCT, ","):
                self._take()
                if not self._at(Kind.PUNCT, ")"):
                    continue
            self._expect(")", "',' or ')' in the 'in' list")
            return Member(left, frozenset(choices), negated, Type.BOOL, op.column)

    def _literal(self) -> Const:
        token = self._take()
        sign = token if token.kind is Kind.OP and token.text in ("-", "+") else None
        if sign is not None:
            token = self._take()
        if token.kind is Kind.NUMBER and token.number is not None:
            value = -token.number if sign is not None and sign.text == "-" else token.number
            return Const(value, Type.NUMBER, (sign or token).column)
        if sign is None and token.kind is Kind.STRING:
            return Const(token.text, Type.TEXT, token.column)
        if sign is None and token.kind is Kind.KEYWORD and token.text in ("true", "false"):
            return Const(token.text == "true", Type.BOOL, token.column)
        raise FormulaError(f"'in' lists hold only literals, found {token.describe()}", token.column)

    def _sum(self) -> Node:
        node = self._term()
        while self._at(Kind.OP, "+", "-"):
            op = self._take()
            node = _arithmetic(op, node, self._term())
        return node

    def _term(self) -> Node:
        node = self._unary()
        while self._at(Kind.OP, "*", "/"):
            op = self._take()
            node = _arithmetic(op, node, self._unary())
        return node

    def _unary(self) -> Node:
        if not self._at(Kind.OP, "-", "+"):
            return self._primary()
        op = self._take()
        self._enter(op)
        operand = self._unary()
        self._depth -= 1
        if operand.type is not Type.NUMBER:
            raise FormulaError(f"unary '{op.text}' needs a number, got a {operand.type.value}", op.column)
        return Unary(op.text, operand, Type.NUMBER, op.column)

    def _primary(self) -> Node:
        token = self._take()
        if token.kind is Kind.NUMBER and token.number is not None:
            return Const(token.number, Type.NUMBER, token.column)
        if token.kind is Kind.STRING:
            return Const(token.text, Type.TEXT, token.column)
        if token.kind is Kind.KEYWORD and token.text in ("true", "false"):
            return Const(token.text == "true", Type.BOOL, token.column)
        if token.kind is Kind.PUNCT and token.text == "(":
            self._enter(token)
            node = self.expression()
            self._expect(")", "')'")
            self._depth -= 1
            return node
        if token.kind is Kind.NAME:
            return self._name(token)
        raise FormulaError(f"unexpected {token.describe()}", token.column)

    def _name(self, token: Token) -> Node:
        kind = self._fields.get(token.text)
        try:
            called = self._at(Kind.PUNCT, "(")
        except FormulaError:  # a bad character right after an unknown name: the name is the first problem
            if kind is not None:
                raise
            called = False
        if token.text in FUNCTIONS:
            if not called:
                raise FormulaError(f"{token.text} is a function: write {token.text}(a, b, ...)", token.column)
            return self._call(token)
        if called:
            raise FormulaError(f"unknown function '{token.text}' (only min and max)", token.column)
        if kind is None:
            allowed = ", ".join(sorted(self._fields)) or "none"
            raise FormulaError(f"unknown name '{token.text}' (allowed: {allowed})", token.column)
        self.names.add(token.text)
        return Field(token.text, kind, token.column)

    def _call(self, name: Token) -> Node:
        self._enter(self._take())
        args = [self.expression()]
        while self._at(Kind.PUNCT, ","):
            self._take()
            args.append(self.expression())
        self._expect(")", f"',' or ')' in {name.text}()")
        self._depth -= 1
        if len(args) < 2:
            raise FormulaError(f"{name.text}() needs at least 2 arguments", name.column)
        for position, arg in enumerate(args, 1):
            if arg.type is not Type.NUMBER:
                raise FormulaError(
                    f"{name.text}() takes numbers, argument {position} is a {arg.type.value}", arg.column
                )
        return Call(name.text, tuple(args), Type.NUMBER, name.column)


def _logic(op: Token, left: Node, right: Node) -> Node:
    if left.type is not Type.BOOL or right.type is not Type.BOOL:
        raise FormulaError(
            f"'{op.text}' needs booleans on both sides, got {left.type.value} and {right.type.value}", op.column
        )
    return Binary(op.text, left, right, Type.BOOL, op.column)


def _compare(op: Token, left: Node, right: Node) -> Node:
    if op.text in ORDERING and (left.type is not Type.NUMBER or right.type is not Type.NUMBER):
        raise FormulaError(
            f"'{op.text}' compares numbers, got {left.type.value} and {right.type.value}", op.column
        )
    if left.type is not right.type:
        raise FormulaError(
            f"'{op.text}' compares values of one type, got {left.type.value} and {right.type.value}", op.column
        )
    return Binary(op.text, left, right, Type.BOOL, op.column)


def _arithmetic(op: Token, left: Node, right: Node) -> Node:
    if left.type is not Type.NUMBER or right.type is not Type.NUMBER:
        raise FormulaError(
            f"'{op.text}' needs numbers on both sides, got {left.type.value} and {right.type.value}", op.column
        )
    return Binary(op.text, left, right, Type.NUMBER, op.column)
