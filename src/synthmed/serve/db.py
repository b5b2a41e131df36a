"""Database tables, engine and migrations (SQLAlchemy 2 Core, Alembic).

SQLite (a file, zero set-up) and PostgreSQL run the same statements. The schema is created
and upgraded only by the Alembic migrations shipped in ``synthmed/serve/migrations``; the
table objects below are what the code queries, and a test checks the two agree.

An item row is written in the same transaction as its files, labels and audit entry, and only
after its files are in place in storage: a server killed mid-upload leaves no row, so nothing
half-stored is ever listed.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("visibility", sa.String(20), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("storage_key", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("licence", sa.String(100), nullable=False),
    sa.Column("modality", sa.String(100), nullable=False),
    sa.Column("anatomy", sa.String(100), nullable=False),
    sa.Column("task", sa.String(100), nullable=False),
    sa.Column("model_family", sa.String(100), nullable=False),
    sa.Column("export_format", sa.String(50), nullable=False),
    sa.Column("n_samples", sa.Integer, nullable=True),
    sa.Column("synthetic_only_dice", sa.Float, nullable=True),
    sa.Column("near_copy_rate", sa.Float, nullable=False),
    sa.Column("membership_auc", sa.Float, nullable=False),
    sa.Column("bundle_sha256", sa.String(64), nullable=False),
    sa.Column("bundle_bytes", sa.BigInteger, nullable=False),
    sa.Column("has_grid", sa.Boolean, nullable=False),
    sa.Column("card_md", sa.Text, nullable=False),
    sa.Column("metrics_json", sa.Text, nullable=False),
)

item_labels = sa.Table(
    "item_labels",
    metadata,
    sa.Column(
        "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("label", sa.String(200), primary_key=True),
)

item_files = sa.Table(
    "item_files",
    metadata,
    sa.Column(
        "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(100), nullable=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("item_name", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


# -- reader studies (migration 0002) -------------------------------------------------------
# A study's images are re-encoded 8-bit PNGs kept in the database with the study: created in
# one transaction, nothing half-stored, and no file name, format or metadata that could tell
# a reader which side an image came from. ``public_id`` is the random id readers see.

studies = sa.Table(
    "studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("synthetic_item", sa.String(200), nullable=False),
    sa.Column("real_source", sa.String(300), nullable=False),
    sa.Column("n_per_side", sa.Integer, nullable=False),
    sa.Column("ask_class", sa.Boolean, nullable=False),
    sa.Column("classes_json", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

study_images = sa.Table(
    "study_images",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("truth", sa.String(20), nullable=False),
    sa.Column("class_truth", sa.String(100), nullable=True),
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("png", sa.LargeBinary, nullable=False),
)

study_readers = sa.Table(
    "study_readers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("study_id", "name", name="uq_study_readers_study_name"),
)

study_answers = sa.Table(
    "study_answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "reader_id",
        sa.Integer,
        sa.ForeignKey("study_readers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "image_id",
        sa.Integer,
        sa.ForeignKey("study_images.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("answer", sa.String(20), nullable=False),
    sa.Column("confidence", sa.Integer, nullable=False),
    sa.Column("class_answer", sa.String(100), nullable=True),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("reader_id", "position", name="uq_study_answers_reader_position"),
    sa.UniqueConstraint("reader_id", "image_id", name="uq_study_answers_reader_image"),
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets the uvicorn workers read while one writes; foreign keys make deletes cascade."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; the folder of a SQLite file is created."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":  # psycopg 3 is the declared driver, not psycopg2
        url = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(url, pool_pre_ping=True)


def migrate(engine: sa.Engine) -> None:
    """Upgrade the database to the newest migration (idempotent; run once at server start)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
