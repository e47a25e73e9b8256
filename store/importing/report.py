"""What an import run did: counts, and every rejected row with its line (or API item index) and reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store.importing import messages as m


@dataclass(frozen=True)
class RowError:
    """One problem. `line` is the physical CSV line (header = 1) or the API item index (from 0); None
    means the whole file or request. `column` names the column (or field) concerned, if any."""

    line: int | None
    column: str | None
    message: str

    def to_dict(self, position: str = "line") -> dict[str, Any]:
        return {position: self.line, "column": self.column, "error": self.message}


@dataclass
class ImportReport:
    """The outcome of one import_rows/import_csv call.

    total = rows read; created + updated + unchanged + failed == total unless `aborted` (a file or
    header problem: nothing was written). `failed` counts rows; `errors` may hold several per row.
    """

    kind: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    org_units_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    aborted: bool = False
    dry_run: bool = False

    @property
    def failed(self) -> int:
        """Rows rejected (a file or header problem rejects the file, not rows: 0 when aborted)."""
        if self.aborted:
            return 0
        return len({e.line for e in self.errors if e.line is not None})

    @property
    def ok(self) -> bool:
        return not self.errors and not self.aborted

    @property
    def applied(self) -> int:
        """Rows that are now in the database as asked (created, updated or already so)."""
        return self.created + self.updated + self.unchanged

    def add(self, line: int | None, column: str | None, message: str) -> None:
        self.errors.append(RowError(line, column, message))

    def counts(self) -> dict[str, Any]:
        """The numbers (no messages): what the audit log keeps."""
        return {
            "kind": self.kind,
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "org_units_created": self.org_units_created,
            "aborted": self.aborted,
            "dry_run": self.dry_run,
        }

    def to_dict(self, position: str = "line") -> dict[str, Any]:
        """JSON-ready; the API passes position="index"."""
        return {**self.counts(), "errors": [e.to_dict(position) for e in self.errors]}


def format_report(report: ImportReport, *, max_errors: int = 200) -> str:
    """The report as the CLI prints it: one summary line, then one line per problem, in line order."""
    head = m.REPORT_HEAD.format(
        kind=report.kind,
        total=report.total,
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        failed=report.failed,
    )
    lines = [head + (m.REPORT_DRY_RUN if report.dry_run else "")]
    if report.org_units_created:
        lines.append(m.REPORT_ORG_CREATED.format(count=report.org_units_created))
    if report.aborted:
        lines.append(m.REPORT_ABORTED)
    errors = sorted(report.errors, key=lambda e: -1 if e.line is None else e.line)
    for error in errors[:max_errors]:
        where = m.REPORT_LINE.format(line=error.line) if error.line is not None else m.REPORT_FILE
        column = f" [{error.column}]" if error.column else ""
        lines.append(f"  {where}{column}: {error.message}")
    if len(errors) > max_errors:
        lines.append("  " + m.REPORT_MORE.format(count=len(errors) - max_errors))
    return "\n".join(lines)
