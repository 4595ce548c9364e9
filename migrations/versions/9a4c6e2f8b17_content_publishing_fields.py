"""Content publishing fields (excerpt, slug, schedule, author, format, sticky, comments,
featured image, SEO, the last push's media)

Revision ID: 9a4c6e2f8b17
Revises: 7d3f1a2b9c10
Create Date: 2026-12-04 21:20:00

Every column is nullable without a default: adding them rewrites nothing on PostgreSQL, and a
NULL field is one the push leaves to WordPress (so existing rows push exactly as before).
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "9a4c6e2f8b17"
down_revision = "7d3f1a2b9c10"
branch_labels = None
depends_on = None

COLUMNS = (
    ("excerpt", sa.Text()),
    ("slug", sa.String(length=200)),
    ("publish_at", sa.DateTime(timezone=True)),
    ("author", sa.String(length=100)),
    ("format", sa.String(length=20)),
    ("sticky", sa.Boolean()),
    ("comment_status", sa.String(length=10)),
    ("featured_image", sa.JSON(none_as_null=True)),
    ("seo", sa.JSON(none_as_null=True)),
    ("media", sa.JSON(none_as_null=True)),
    ("featured_media", sa.JSON(none_as_null=True)),
)


def upgrade():
    with op.batch_alter_table("contents", schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade():
    with op.batch_alter_table("contents", schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
