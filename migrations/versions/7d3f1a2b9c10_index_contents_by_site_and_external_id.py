"""Index contents by (site_id, external_id) for webhook lookups by WordPress post id

Revision ID: 7d3f1a2b9c10
Revises: 5b1c2d3e4f60
Create Date: 2026-12-03 09:30:00

A webhook delivery finds its content by the site and the WordPress post id, with the post type
optional. The only index holding external_id leads with content_type after site_id, so without
this one PostgreSQL read every content row of the site (or the whole table) per delivery.

On PostgreSQL the index is built CONCURRENTLY (outside the migration's transaction), so a large
contents table keeps taking writes while it is built.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "7d3f1a2b9c10"
down_revision = "5b1c2d3e4f60"
branch_labels = None
depends_on = None

INDEX = "ix_contents_site_external_id"


def upgrade():
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(INDEX, "contents", ["site_id", "external_id"], postgresql_concurrently=True)
    else:
        op.create_index(INDEX, "contents", ["site_id", "external_id"])


def downgrade():
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name="contents", postgresql_concurrently=True)
    else:
        op.drop_index(INDEX, table_name="contents")
