"""The one error a formula's author sees: what is wrong, and where (1-based column)."""

from __future__ import annotations


class FormulaError(ValueError):
    """A formula refused at compile time; `str()` reads ``column 12: unknown name 'foo' (allowed: …)``."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column
