"""Typed access to the models' Core tables (the importer writes with Core statements)."""

from __future__ import annotations

from sqlalchemy import Table

from store.models import Base


def table_of(model: type[Base]) -> Table:
    """A model's Core table, typed as Table (for insert/update/delete)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
