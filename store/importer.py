"""Compatibility seam: the importer lives in the store.importing package (split past ~400 lines)."""

from store.importing import (
    KINDS,
    SPECS,
    ImportReport,
    RowError,
    UnknownKindError,
    format_report,
    import_csv,
    import_rows,
)

__all__ = [
    "KINDS",
    "SPECS",
    "ImportReport",
    "RowError",
    "UnknownKindError",
    "format_report",
    "import_csv",
    "import_rows",
]
