"""import_rows / import_csv: parse every row, plan against batch-loaded data, write in chunks.

Guarantees:
- a bad row never costs the others: rows are validated before anything is written, and each chunk
  of writes runs in a SAVEPOINT; if a chunk fails in the database it is retried row by row, each in
  its own SAVEPOINT, so a row is written entirely or not at all;
- importing the same data twice changes nothing (no new rows, no changed values, same updated_at);
- one AuditLog row (action "import") per run, in the same transaction as the data.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config_defaults import DEFAULT_STAGES
from store.db import Database
from store.importing import messages as m
from store.importing.accounts import CustomersImporter, LeadsImporter
from store.importing.base import KindImporter, Plan, Row, RowProblem, chunked
from store.importing.csvfile import read_csv
from store.importing.deals import ContractsImporter, OpportunitiesImporter, PaymentsImporter
from store.importing.people import UsersImporter
from store.importing.report import ImportReport, RowError
from store.importing.spec import KINDS, SPECS, ColumnType, KindSpec
from store.importing.tables import table_of
from store.importing.values import CellError, field_name, parse_value, shown
from store.models import AuditLog

IMPORTERS: Mapping[str, type[KindImporter]] = {
    "users": UsersImporter,
    "customers": CustomersImporter,
    "leads": LeadsImporter,
    "opportunities": OpportunitiesImporter,
    "contracts": ContractsImporter,
    "payments": PaymentsImporter,
}
WRITE_CHUNK = 500
# Fields the API returns (GET) that are not import columns; ignored when a client sends them back.
READ_ONLY = ("id", "created_at", "updated_at")
_LOCK_KEY = zlib.crc32(b"salesbot:import") & 0x7FFFFFFF


class UnknownKindError(ValueError):
    """The kind is not one of KINDS."""


class _DryRun(Exception):
    """Raised to roll back a dry run after everything was checked and written."""


def get_spec(kind: str) -> KindSpec:
    """The spec of `kind`, or UnknownKindError naming the known kinds."""
    spec = SPECS.get(kind)
    if spec is None:
        raise UnknownKindError(m.UNKNOWN_KIND.format(kind=shown(kind), known=", ".join(KINDS)))
    return spec


async def import_rows(
    db: Database,
    kind: str,
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    now: datetime,
    *,
    stages: Sequence[str] = DEFAULT_STAGES,
    dry_run: bool = False,
    source: str = "api",
    actor_label: str | None = None,
) -> ImportReport:
    """Upsert rows of `kind` by external_id. Each row is (line or item index, {column: value}).

    Values are CSV text or JSON values (numbers, booleans, arrays for list columns, null = empty).
    `stages` are the configured funnel stages (settings.funnel.stages). With dry_run everything is
    checked, written and then rolled back (no audit row). Raises UnknownKindError.
    """
    spec = get_spec(kind)
    report = ImportReport(kind=kind, dry_run=dry_run)
    return await _run(db, spec, rows, now, stages, report, source, actor_label or source)


async def import_csv(
    db: Database,
    kind: str,
    path: str | Path,
    now: datetime,
    *,
    stages: Sequence[str] = DEFAULT_STAGES,
    dry_run: bool = False,
    actor_label: str | None = None,
) -> ImportReport:
    """Import a CSV file of `kind` (see docs/import.md). File and header problems abort the run
    (report.aborted, nothing written); row problems are reported by physical line, the rest kept."""
    spec = get_spec(kind)
    report = ImportReport(kind=kind, dry_run=dry_run)
    table = await asyncio.to_thread(read_csv, path, spec)  # file I/O and CSV parsing off the event loop
    label = actor_label or f"csv:{Path(path).name}"
    if table.fatal:
        report.aborted = True
        report.errors.extend(table.fatal)
        if not dry_run:
            async with db.transaction() as session:
                await _audit(session, report, now, "csv", label)
        return report
    report.errors.extend(table.errors)
    report.total += len({e.line for e in table.errors})
    return await _run(db, spec, table.rows, now, stages, report, "csv", label)


async def _run(
    db: Database,
    spec: KindSpec,
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    now: datetime,
    stages: Sequence[str],
    report: ImportReport,
    source: str,
    actor_label: str,
) -> ImportReport:
    # Parsing is pure CPU work (10,000 rows ≈ 0.3 s): keep it off the event loop the server shares.
    parsed = await asyncio.to_thread(parse_rows, spec, rows, stages, report)
    try:
        async with db.transaction() as session:
            await _lock(session)
            importer = IMPORTERS[spec.kind](session, now, stages)
            await importer.load(parsed)
            plans = _plan_all(importer, parsed, report)
            report.unchanged += sum(1 for p in plans if p.action == "unchanged")
            await _write_all(session, importer, [p for p in plans if p.action != "unchanged"], report)
            report.org_units_created = len(importer.orgs.created_ids)
            if report.dry_run:
                raise _DryRun
            await _audit(session, report, now, source, actor_label)
    except _DryRun:
        pass
    return report


def parse_rows(
    spec: KindSpec,
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    stages: Sequence[str],
    report: ImportReport,
) -> list[Row]:
    """Typed rows; every problem of a bad row goes to the report (all its bad cells, not just one)."""
    columns = spec.by_name
    read_only = {k for k in READ_ONLY if k not in columns}
    first_line: dict[str, int] = {}
    parsed: list[Row] = []
    for line, raw in rows:
        report.total += 1
        if not isinstance(raw, Mapping):
            report.add(line, None, m.NOT_AN_OBJECT)
            continue
        problems: list[RowError] = []
        given: dict[str, Any] = {}
        for key, value in raw.items():
            col = columns.get(key) if isinstance(key, str) else None
            if col is None:
                if key not in read_only:
                    known = ", ".join(columns)
                    problems.append(RowError(line, field_name(key), m.UNKNOWN_FIELD.format(known=known)))
                continue
            try:
                typed = parse_value(col, value, stages)
            except CellError as exc:
                problems.append(RowError(line, col.name, str(exc)))
                continue
            if typed is None or typed == []:
                if col.required:
                    problems.append(RowError(line, col.name, m.REQUIRED))
                elif col.clears:
                    given[col.name] = [] if col.type is ColumnType.LIST else None
                continue
            given[col.name] = typed
        for name in spec.required:
            if name not in raw:
                problems.append(RowError(line, name, m.REQUIRED))
        if problems:
            report.errors.extend(problems)
            continue
        ext = given["external_id"]
        if ext in first_line:
            report.add(line, "external_id", m.DUPLICATE_ROW.format(value=shown(ext), first=first_line[ext]))
            continue
        first_line[ext] = line
        parsed.append(Row(line, ext, given))
    return parsed


def _plan_all(importer: KindImporter, rows: list[Row], report: ImportReport) -> list[Plan]:
    plans: list[Plan] = []
    for row in rows:
        try:
            plans.append(importer.plan(row))
        except RowProblem as problem:
            report.add(row.line, problem.column, problem.message)
    unchanged = [p for p in plans if p.action == "unchanged"]
    failed: list[tuple[Plan, RowProblem]] = []
    writes = importer.order([p for p in plans if p.action != "unchanged"], failed)
    for plan, why in failed:
        report.add(plan.line, why.column, why.message)
    return unchanged + writes


async def _write_all(session: AsyncSession, importer: KindImporter, plans: list[Plan], report: ImportReport) -> None:
    """Chunks in SAVEPOINTs; a failed chunk is retried one row per SAVEPOINT to isolate the bad row."""
    for chunk in chunked(plans, WRITE_CHUNK):
        mark = importer.orgs.mark()
        try:
            async with session.begin_nested():
                new_ids = await importer.write(chunk)
        except (StatementError, RowProblem):
            importer.orgs.undo(mark)
            for plan in chunk:
                await _write_one(session, importer, plan, report)
        else:
            importer.ids.update(new_ids)
            for plan in chunk:
                _count(report, plan)


async def _write_one(session: AsyncSession, importer: KindImporter, plan: Plan, report: ImportReport) -> None:
    mark = importer.orgs.mark()
    try:
        async with session.begin_nested():
            new_ids = await importer.write([plan])
    except RowProblem as problem:
        importer.orgs.undo(mark)
        report.add(plan.line, problem.column, problem.message)
    except StatementError as exc:
        importer.orgs.undo(mark)
        report.add(plan.line, None, m.DB_ERROR.format(reason=_db_reason(exc)))
    else:
        importer.ids.update(new_ids)
        _count(report, plan)


def _count(report: ImportReport, plan: Plan) -> None:
    if plan.action == "create":
        report.created += 1
    else:
        report.updated += 1


def _db_reason(exc: StatementError) -> str:
    """The driver's first line (constraint names, not SQL or parameters)."""
    orig = exc.orig or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return first[:200]


async def _lock(session: AsyncSession) -> None:
    """One import at a time (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


async def _audit(session: AsyncSession, report: ImportReport, now: datetime, source: str, actor: str) -> None:
    detail = {**report.counts(), "source": source, "errors": len(report.errors)}
    await session.execute(
        insert(table_of(AuditLog)).values(
            at=now, actor_label=actor[:128], action="import", subject_type=report.kind, detail=detail
        )
    )
