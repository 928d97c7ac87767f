"""Storage: SQLAlchemy 2 over SQLite (default) or PostgreSQL, schema by Alembic.

:class:`Store` owns the engines and hands out sessions; :mod:`.repository` holds the
queries and returns domain objects.
"""

from assay.store.database import SchemaOutOfDate, Store

__all__ = ["Store", "SchemaOutOfDate"]
