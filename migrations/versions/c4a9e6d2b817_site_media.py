"""Site media: images uploaded to each site's media library, once per URL and per bytes

Revision ID: c4a9e6d2b817
Revises: 9a4c6e2f8b17
Create Date: 2026-12-04 21:30:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "c4a9e6d2b817"
down_revision = "9a4c6e2f8b17"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "site_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("mime", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("attachment_id", sa.Integer(), nullable=True),
        sa.Column("attachment_url", sa.Text(), nullable=True),
        sa.Column("attachment_fields", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state in ('pending','done')", name=op.f("ck_site_media_state")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_site_media_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_media")),
        sa.UniqueConstraint("site_id", "url_hash", name=op.f("uq_site_media_site_id_url_hash")),
    )
    op.create_index("ix_site_media_site_sha256", "site_media", ["site_id", "sha256"])


def downgrade():
    op.drop_index("ix_site_media_site_sha256", table_name="site_media")
    op.drop_table("site_media")
