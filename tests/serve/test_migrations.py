"""Alembic migrations 0001 and 0002 create exactly the tables the code queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa


def test_migrated_schema_matches_the_table_definitions(empty_db_url: str):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from synthmed.serve import db

    engine = db.make_engine(empty_db_url)
    db.migrate(engine)
    db.migrate(engine)  # idempotent: a restart runs it again
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diff == []
    assert version == "0002"
