"""Data in: CSV files and JSON API items upserted by external_id (users, customers, leads,
opportunities, contracts, payments). The columns of each kind are documented in spec.SPECS and
rendered to docs/import.md."""

from store.importing.engine import READ_ONLY, UnknownKindError, get_spec, import_csv, import_rows
from store.importing.report import ImportReport, RowError, format_report
from store.importing.spec import KINDS, SPECS, Column, ColumnType, KindSpec

__all__ = [
    "KINDS",
    "READ_ONLY",
    "SPECS",
    "Column",
    "ColumnType",
    "ImportReport",
    "KindSpec",
    "RowError",
    "UnknownKindError",
    "format_report",
    "get_spec",
    "import_csv",
    "import_rows",
]
