"""The vocabulary of the spec tables: column types, the Column and KindSpec records, fixed choices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cached_property


class ColumnType(StrEnum):
    """How a cell is parsed; see store/importing/values.py."""

    STR = "str"
    INT = "int"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    LIST = "list"  # ";"-separated in CSV (also "；"), a JSON array in the API
    ENUM = "enum"
    BOOL = "bool"


@dataclass(frozen=True)
class Column:
    """One documented column of an import kind.

    `clears`: for an optional column, an empty cell (or JSON null) clears the stored value; when False
    an empty cell means "not given" (keep the stored value, or the default on create).
    `stages`: an enum whose choices are the configured funnel stages ([funnel] stages).
    `synonyms`: accepted spellings (e.g. Chinese) mapped to a choice.
    `ref`: the kind (or "org") a reference column points at, by external id.
    """

    name: str
    type: ColumnType
    label: str
    description: str
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    synonyms: tuple[tuple[str, str], ...] = ()
    stages: bool = False
    minimum: int | None = None
    maximum: int | None = None
    allow_negative: bool = False
    nonzero: bool = False
    clears: bool = True
    pattern: str | None = None
    ref: str | None = None
    default: str | None = None  # documented default when absent on create

    def synonym_map(self) -> dict[str, str]:
        return {k.casefold(): v for k, v in self.synonyms}


@dataclass(frozen=True)
class KindSpec:
    """The columns of one import kind; upsert key is always `external_id`."""

    kind: str
    title: str
    description: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        return self.by_name[name]

    @cached_property
    def by_name(self) -> Mapping[str, Column]:
        return {c.name: c for c in self.columns}

    @cached_property
    def header_aliases(self) -> dict[str, str]:
        """Header cell (name or Chinese label, case-insensitive) -> column name."""
        out: dict[str, str] = {}
        for c in self.columns:
            out[c.name.casefold()] = c.name
            out[c.label.casefold()] = c.name
        return out

    @cached_property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


MAX_AMOUNT = Decimal("1000000000000")  # Numeric(14, 2): |amount| < 10^12
MAX_LIST_ITEMS = 50

ROLES = ("rep", "manager", "finance", "delivery", "sales_ops", "admin")
ROLE_SYNONYMS = (
    ("销售", "rep"),
    ("销售代表", "rep"),
    ("销售主管", "manager"),
    ("主管", "manager"),
    ("经理", "manager"),
    ("财务", "finance"),
    ("交付", "delivery"),
    ("销售运营", "sales_ops"),
    ("运营", "sales_ops"),
    ("管理员", "admin"),
)
LEAD_STATUSES = ("open", "converted", "closed")
OPPORTUNITY_STATUSES = ("open", "won", "lost", "silent")
CONTRACT_STATUSES = ("draft", "signed", "void")
BOOL_TRUE = ("true", "1", "yes", "y", "是")
BOOL_FALSE = ("false", "0", "no", "n", "否")
