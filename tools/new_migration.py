"""Autogenerate an Alembic revision from the ORM models: python tools/new_migration.py "message" 0002"""

import sys
import tempfile
from pathlib import Path

from alembic import command

from assay.store.database import Store

with tempfile.TemporaryDirectory() as d:
    store = Store(f"sqlite:///{Path(d) / 'gen.db'}")
    store.upgrade()  # start from the current head
    cfg = store._alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=sys.argv[1], autogenerate=True, rev_id=sys.argv[2])
