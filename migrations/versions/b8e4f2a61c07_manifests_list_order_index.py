"""manifests: an index on the lists' order (created_at, id)

``list_manifests`` orders newest first (``created_at DESC, id DESC``) for /manifests, the to-do
list and the API; without an index a page of the city's 10⁶ manifests sorted every one of them.
Existing rows need nothing else: the index is built from them.

Revision ID: b8e4f2a61c07
Revises: f4b8d2a6c913
Create Date: 2026-12-04 19:40:00.000000

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "b8e4f2a61c07"
down_revision = "f4b8d2a6c913"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_manifests_created_at_id", "manifests", ["created_at", "id"])


def downgrade():
    op.drop_index("ix_manifests_created_at_id", table_name="manifests")
