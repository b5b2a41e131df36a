"""Reader studies (visual Turing test): studies, their images, readers and answers.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
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
    op.create_table(
        "study_images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("truth", sa.String(20), nullable=False),
        sa.Column("class_truth", sa.String(100), nullable=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("png", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "study_readers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("study_id", "name", name="uq_study_readers_study_name"),
    )
    op.create_table(
        "study_answers",
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


def downgrade() -> None:
    for table in ("study_answers", "study_readers", "study_images", "studies"):
        op.drop_table(table)
