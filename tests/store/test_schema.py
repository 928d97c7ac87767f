"""Alembic schema: created on first start, refused (with the fix) when out of date."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from assay.store import SchemaOutOfDate, Store


def test_fresh_database_gets_the_head_schema(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.ensure_schema()
    assert store.current_revision() == store.head_revision()
    with store.read() as s:
        mode = s.execute(text("PRAGMA journal_mode")).scalar()
    assert mode == "wal"


def test_old_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.ensure_schema()
    with store.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '0000_old'"))
    with pytest.raises(SchemaOutOfDate, match="assay db upgrade"):
        store.ensure_schema()


def test_unversioned_tables_are_not_touched(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    with store.write() as s:
        s.execute(text("CREATE TABLE someone_elses (id INTEGER)"))
    with pytest.raises(SchemaOutOfDate):
        store.ensure_schema(auto_create=False)
