"""signed hand-overs: manifest_signatures and handover_codes

- ``manifest_signatures``: one row per party's signature of a manifest step (signer, organisation,
  time, method ``password`` | ``one_time_code``, SHA-256 of the manifest's content at that step).
- ``handover_codes``: the consignor's one-time codes for the carrier (hashed, expiring, single use).

Manifests stepped before this revision keep no signature (nobody signed them then): their pages
show "no signature", and ``audit verify`` has nothing to compare for them. No data is rewritten.

Revision ID: c4f19b7e2d05
Revises: a51058811097
Create Date: 2026-12-03 16:40:00

"""

from alembic import op
import sqlalchemy as sa

import app.common.types

revision = "c4f19b7e2d05"
down_revision = "a51058811097"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "manifest_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("party", sa.String(length=12), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("signer_name", sa.String(length=120), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("organization_name", sa.String(length=200), nullable=False),
        sa.Column("signed_at", app.common.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("entered_by_user_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("method IN ('password', 'one_time_code')", name=op.f("ck_manifest_signatures_method")),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            name=op.f("fk_manifest_signatures_manifest_id_manifests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_manifest_signatures_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_manifest_signatures_organization_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entered_by_user_id"],
            ["users.id"],
            name=op.f("fk_manifest_signatures_entered_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest_signatures")),
    )
    op.create_index("ix_manifest_signatures_manifest", "manifest_signatures", ["manifest_id", "id"])
    op.create_table(
        "handover_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=255), nullable=False),
        sa.Column("issued_by_user_id", sa.Integer(), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.common.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.common.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.common.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["manifest_id"], ["manifests.id"], name=op.f("fk_handover_codes_manifest_id_manifests"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_user_id"],
            ["users.id"],
            name=op.f("fk_handover_codes_issued_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_handover_codes_organization_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["used_by_user_id"], ["users.id"], name=op.f("fk_handover_codes_used_by_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_codes")),
    )
    op.create_index("ix_handover_codes_manifest", "handover_codes", ["manifest_id", "expires_at"])


def downgrade():
    op.drop_index("ix_handover_codes_manifest", table_name="handover_codes")
    op.drop_table("handover_codes")
    op.drop_index("ix_manifest_signatures_manifest", table_name="manifest_signatures")
    op.drop_table("manifest_signatures")
