"""Render docs/import.md from the spec tables; tests/test_importer.py checks the file is in sync.

Regenerate with:  python -m store.importing.docs > docs/import.md
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot.config_defaults import DEFAULT_STAGES
from store.importing.spec import KINDS, MAX_LIST_ITEMS, SPECS, Column, ColumnType

_INTRO = """\
# Importing data: CSV files and the JSON API

<!-- Generated from store/importing/spec.py by `python -m store.importing.docs`; do not edit by hand. -->

Six kinds of data come in: {kinds}. Import them in that order: each kind refers to the ones before
it by **external id** (your system's stable id, the `external_id` column). Every import is an
**upsert by external_id**: a new external_id creates a row, a known one updates it, and importing
the same data twice changes nothing (no new rows, no changed values, `updated_at` untouched).

    salesbot import users users.csv
    salesbot import customers customers.csv

The same columns are the fields of the JSON API (`PUT /api/v1/{{kind}}` with a JSON array, or
`{{"items": [...]}}`, bearer token from `[api] token`); its OpenAPI document is served at
`/api/v1/openapi.json`. `GET /api/v1/{{kind}}/{{external_id}}` returns a stored object in the same
shape (times in Asia/Shanghai, amounts as strings, plus read-only `id`, `updated_at` and, where it
is not a column, `created_at`: ignored when sent back). A sample team lives in `bot/demo_data/*.csv`.

## Rules for every file

- **Encoding**: UTF-8, with or without BOM (Excel: 另存为 “CSV UTF-8(逗号分隔)”). CRLF or LF line ends.
- **Header row** (line 1) is required. A column may be named by its name or its Chinese header
  (both below, case-insensitive), in any order. Optional columns may be left out: a column that
  is not in the file leaves the stored value alone. An **unknown or duplicated column stops the
  import** (reported once, nothing written), as does a missing required column.
- **Empty cells**: an empty required cell rejects the row; an empty optional cell clears the stored
  value, except where the table says it keeps it (then the default applies to new rows).
- **Errors** are reported per row with the physical line number (header = line 1; a quoted value
  spanning lines counts each line) and the column; good rows are imported. A row is written
  completely or not at all. The run is recorded in the audit log (action `import`).
- **Text** is trimmed; control characters are rejected; values longer than the column allows are
  rejected (not truncated).
- **Dates and times**: ISO 8601 — `2026-11-30`, `2026-11-30 10:00`, `2026-11-30T10:00:00+08:00`
  (`2026/11/30 10:00` also accepted). A time without an offset is Asia/Shanghai.
- **Amounts** (yuan): `50000`, `50000.5`, `50,000.00`, `¥50,000`; at most 2 decimals; never NaN or
  infinity. In JSON, a number or a string.
- **Lists**: separated by `;` (or `；`) in CSV, a JSON array in the API; at most {max_items} items.
- **Funnel stages** are the configured `[funnel] stages` (default: {stages}).
"""


def _type(col: Column, stages: Sequence[str]) -> str:
    if col.type is ColumnType.STR:
        return f"text ≤ {col.max_length}" if col.max_length else "text"
    if col.type is ColumnType.INT:
        return f"integer {col.minimum}–{col.maximum}"
    if col.type is ColumnType.DECIMAL:
        return "amount (may be negative)" if col.allow_negative else "amount ≥ 0"
    if col.type is ColumnType.ENUM:
        choices = stages if col.stages else col.choices
        return "one of: " + ", ".join(f"`{c}`" for c in choices)
    if col.type is ColumnType.LIST:
        if col.choices:
            return "list of: " + ", ".join(f"`{c}`" for c in col.choices)
        return f"list of text ≤ {col.max_length}" if col.max_length else "list of text"
    return col.type.value


def _empty(col: Column) -> str:
    if col.required:
        return "error"
    if col.clears:
        return "clears"
    return f"keeps (new: {col.default})" if col.default else "keeps"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(stages: Sequence[str] = DEFAULT_STAGES) -> str:
    """docs/import.md: the general rules, then one table per kind."""
    parts = [
        _INTRO.format(
            kinds=", ".join(f"`{k}`" for k in KINDS),
            stages=" → ".join(stages),
            max_items=MAX_LIST_ITEMS,
        )
    ]
    for kind in KINDS:
        spec = SPECS[kind]
        parts.append(f"\n## {spec.title}: `{kind}`\n\n{spec.description}\n")
        parts.append("| Column | 表头 | Required | Type | If empty | Description |")
        parts.append("|---|---|---|---|---|---|")
        for col in spec.columns:
            default = f" Default: {col.default}." if col.default else ""
            parts.append(
                f"| `{col.name}` | {col.label} | {'yes' if col.required else 'no'} | "
                f"{_cell(_type(col, stages))} | {_empty(col)} | {_cell(col.description + default)} |"
            )
    return "\n".join(parts) + "\n"


def main() -> None:
    sys.stdout.write(render_markdown())


if __name__ == "__main__":
    main()
