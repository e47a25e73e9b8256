"""Formula text → tokens, enforcing the text, token and number-literal limits (R8). Pure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from bot.rules.formula.errors import FormulaError

MAX_TEXT = 500
MAX_TOKENS = 200
MAX_INTEGER_DIGITS = 13  # with the magnitude check below: at most 10^12
MAX_MAGNITUDE = Decimal(10) ** 12
MAX_FRACTION_DIGITS = 8

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
FUNCTIONS = frozenset({"min", "max"})
OPERATORS = ("<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/")  # two-character ones first
_PUNCTUATION = frozenset("(),")
_REFUSED = {  # things a Python-minded author may try, with a hint
    "**": "'**' is not supported",
    "=": "'=' is not an operator (use '==' to compare)",
    "!": "'!' is not an operator (use 'not')",
    "&&": "'&&' is not an operator (use 'and')",
    "||": "'||' is not an operator (use 'or')",
    "&": "'&' is not an operator (use 'and')",
    "|": "'|' is not an operator (use 'or')",
    ".": "attribute access is not allowed",
    "[": "subscripts are not allowed",
    ";": "only one expression is allowed (no ';')",
    "%": "'%' only marks a percentage right after a number (there is no modulo)",
}
_REFUSED_LONGEST_FIRST = sorted(_REFUSED, key=len, reverse=True)
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS = frozenset("0123456789")
_NAME_CHARS = _ASCII_LETTERS | _DIGITS
_SPACE = frozenset(" \t\r\n")


class Kind(Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"  # a field or function name
    KEYWORD = "keyword"
    OP = "operator"
    PUNCT = "punctuation"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # as written (a string literal's content, without quotes)
    column: int  # 1-based
    number: Decimal | None = None

    def describe(self) -> str:
        if self.kind is Kind.END:
            return "end of formula"
        if self.kind is Kind.STRING:
            return f"string {self.text!r}"
        return f"{self.kind.value} {self.text!r}"


def tokenize(text: str) -> Iterator[Token]:
    """Yield the tokens of `text`, then one END token; FormulaError at the first bad character.

    Lazy, so that the parser reports problems in reading order (`lambda: 1` is an unknown name at
    column 1, not a bad ':' at column 7).
    """
    if len(text) > MAX_TEXT:
        raise FormulaError(f"formula is longer than {MAX_TEXT} characters", MAX_TEXT + 1)
    count = 0
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            break
        if count == MAX_TOKENS:
            raise FormulaError(f"formula has more than {MAX_TOKENS} tokens", i + 1)
        char = text[i]
        if char in _DIGITS:
            token, i = _number(text, i)
        elif char in _ASCII_LETTERS:
            start = i
            while i < n and text[i] in _NAME_CHARS:
                i += 1
            word = text[start:i]
            token = Token(Kind.KEYWORD if word in KEYWORDS else Kind.NAME, word, start + 1)
        elif char in "\"'":
            end = text.find(char, i + 1)
            if end < 0:
                raise FormulaError("unterminated string", i + 1)
            token, i = Token(Kind.STRING, text[i + 1 : end], i + 1), end + 1
        elif char in _PUNCTUATION:
            token, i = Token(Kind.PUNCT, char, i + 1), i + 1
        else:
            token, i = _operator(text, i)
        count += 1
        yield token
    yield Token(Kind.END, "", n + 1)


def _number(text: str, start: int) -> tuple[Token, int]:
    i, n = start, len(text)
    while i < n and text[i] in _DIGITS:
        i += 1
    integer_digits = i - start
    fraction_digits = 0
    if i < n and text[i] == ".":
        i += 1
        fraction_start = i
        while i < n and text[i] in _DIGITS:
            i += 1
        fraction_digits = i - fraction_start
        if fraction_digits == 0:
            raise FormulaError("a number needs digits after '.'", start + 1)
    if i < n and text[i] in _NAME_CHARS:  # 1e999, 0x10, 12abc
        while i < n and text[i] in _NAME_CHARS:
            i += 1
        raise FormulaError(f"malformed number {text[start:i]!r}", start + 1)
    written = text[start:i]
    if fraction_digits > MAX_FRACTION_DIGITS:
        raise FormulaError(f"number {written} has more than {MAX_FRACTION_DIGITS} decimal places", start + 1)
    value = Decimal(written) if integer_digits <= MAX_INTEGER_DIGITS else MAX_MAGNITUDE + 1
    if value > MAX_MAGNITUDE:
        raise FormulaError(f"number {written} is larger than 10^12", start + 1)
    if i < n and text[i] == "%":
        i += 1
        value = value.scaleb(-2)
    return Token(Kind.NUMBER, text[start:i], start + 1, value), i


def _operator(text: str, i: int) -> tuple[Token, int]:
    if text.startswith(".", i) and text[i + 1 : i + 2] in _DIGITS:
        raise FormulaError("a number needs a digit before '.'", i + 1)
    for refused in _REFUSED_LONGEST_FIRST:
        if text.startswith(refused, i) and not (refused in ("=", "!") and text.startswith(("==", "!="), i)):
            raise FormulaError(_REFUSED[refused], i + 1)
    for op in OPERATORS:
        if text.startswith(op, i):
            return Token(Kind.OP, op, i + 1), i + len(op)
    raise FormulaError(f"unexpected character {text[i]!r}", i + 1)
