"""Read an import CSV: UTF-8 with or without BOM, CRLF or LF, a required header row.

Every row keeps its physical line number (header = line 1; a quoted field spanning lines counts
each line), so a report points at the line an operator sees in a text editor.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from store.importing import messages as m
from store.importing.report import RowError
from store.importing.spec import KindSpec
from store.importing.values import shown


@dataclass
class CsvTable:
    """A parsed file: `fatal` problems stop the whole import; `errors` are per line."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    fatal: list[RowError] = field(default_factory=list)


def read_csv(path: str | Path, spec: KindSpec) -> CsvTable:
    """Read and check a CSV file for `spec`; never raises for bad content (see CsvTable.fatal)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return CsvTable(fatal=[RowError(None, None, m.FILE_NOT_FOUND.format(path=path))])
    except OSError as exc:
        return CsvTable(fatal=[RowError(None, None, m.FILE_UNREADABLE.format(reason=exc.strerror or exc))])
    text, problem = decode(data)
    if problem is not None:
        return CsvTable(fatal=[problem])
    return parse_csv_text(text, spec)


def decode(data: bytes) -> tuple[str, RowError | None]:
    """UTF-8 (a BOM is dropped); a clear error with the line of the first bad byte otherwise."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "", RowError(None, None, m.UTF16)
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return "", RowError(line, None, m.NOT_UTF8.format(line=line))


def parse_csv_text(text: str, spec: KindSpec) -> CsvTable:
    """Split decoded text into header-checked rows keyed by column name."""
    table = CsvTable()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        table.fatal.append(RowError(1, None, m.CSV_SYNTAX.format(reason=exc)))
        return table
    if header is None or not any(cell.strip() for cell in header):
        table.fatal.append(RowError(None, None, m.EMPTY_FILE))
        return table
    columns = _check_header(header, spec, table)
    if table.fatal:
        return table
    table.columns = columns
    width = len(columns)
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            cells = next(reader, None)
        except csv.Error as exc:  # e.g. a field over the csv module's size limit: stop, keep what we have
            table.errors.append(RowError(start, None, m.CSV_SYNTAX.format(reason=exc)))
            break
        if cells is None:
            break
        last_line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank line, or a row of empty cells as spreadsheets write them
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            table.errors.append(RowError(start, None, m.TOO_MANY_FIELDS.format(count=len(cells), header=width)))
            continue
        cells = cells[:width] + [""] * (width - len(cells))
        table.rows.append((start, dict(zip(columns, cells, strict=True))))
    return table


def _check_header(header: list[str], spec: KindSpec, table: CsvTable) -> list[str]:
    cells = [cell.strip().lstrip("\ufeff").strip() for cell in header]
    while cells and not cells[-1]:
        cells.pop()  # spreadsheets often leave trailing empty header cells
    aliases = spec.header_aliases
    columns: list[str] = []
    unknown: list[str] = []
    for index, cell in enumerate(cells, start=1):
        if not cell:
            table.fatal.append(RowError(1, None, m.EMPTY_HEADER.format(index=index)))
            continue
        name = aliases.get(cell.casefold())
        if name is None:
            unknown.append(cell)
            continue
        if name in columns:
            table.fatal.append(RowError(1, name, m.DUPLICATE_COLUMN.format(column=cell)))
        columns.append(name)
    if unknown:
        known = ", ".join(c.name for c in spec.columns)
        shown_cells = ", ".join(shown(cell) for cell in unknown)
        table.fatal.append(RowError(1, None, m.UNKNOWN_COLUMNS.format(columns=shown_cells, known=known)))
    missing = [name for name in spec.required if name not in columns]
    if missing:
        table.fatal.append(RowError(1, None, m.MISSING_COLUMNS.format(columns=", ".join(missing))))
    return columns
