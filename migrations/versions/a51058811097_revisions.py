"""revisions of manifests and ledger records; version of manifests and ledger records

- ``revisions``: a requested correction (target, who, why, the proposed changes, state, the
  before/after images of an applied one); ``revision_approvals``: one row per party that must
  approve.
- ``manifests.version`` and ``ledger_records.version``: raised by each approved revision. Rows
  stored before this revision keep NULL, read as version 1: writing 1 into them would make every
  existing row differ from its image in the audit trail (``audit verify``).

Revision ID: a51058811097
Revises: a7d3e9c1f404
Create Date: 2026-12-03 16:40:00

"""

from alembic import op
import sqlalchemy as sa

from app.common.types import UTCDateTime

revision = "a51058811097"
down_revision = "a7d3e9c1f404"
branch_labels = None
depends_on = None

# Frozen copies of app.ledger.revision_models' CHECK constraints.
REVISION_CHECKS = {
    "target": "target IN ('manifest', 'ledger_record')",
    "state": "state IN ('pending', 'approved', 'refused', 'cancelled')",
    "target_has_its_row": "(target = 'manifest' AND manifest_id IS NOT NULL AND record_id IS NULL) OR "
    "(target = 'ledger_record' AND record_id IS NOT NULL AND manifest_id IS NULL)",
    "reason_given": "length(reason) > 0",
    "decided_has_decided_at": "state = 'pending' OR decided_at IS NOT NULL",
    "approved_has_version": "state <> 'approved' OR version IS NOT NULL",
}
APPROVAL_CHECKS = {
    "state": "state IN ('pending', 'approved', 'refused')",
    "decided_has_decided_at": "state = 'pending' OR decided_at IS NOT NULL",
}


def upgrade():
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("requested_by_user_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_org_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("requested_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=120), nullable=False),
        *(sa.CheckConstraint(sql, name=op.f(f"ck_revisions_{name}")) for name, sql in REVISION_CHECKS.items()),
        sa.ForeignKeyConstraint(["manifest_id"], ["manifests.id"], name=op.f("fk_revisions_manifest_id_manifests")),
        sa.ForeignKeyConstraint(
            ["record_id"], ["ledger_records.id"], name=op.f("fk_revisions_record_id_ledger_records")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"], ["users.id"], name=op.f("fk_revisions_requested_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_org_id"], ["organizations.id"], name=op.f("fk_revisions_requested_by_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["organizations.id"], name=op.f("fk_revisions_enterprise_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisions")),
    )
    for column in ("manifest_id", "record_id", "state", "requested_by_org_id", "enterprise_id"):
        op.create_index(op.f(f"ix_revisions_{column}"), "revisions", [column])
    op.create_table(
        "revision_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=True),
        sa.Column("party", sa.String(length=12), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("organization_name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=120), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        *(sa.CheckConstraint(sql, name=op.f(f"ck_revision_approvals_{name}")) for name, sql in APPROVAL_CHECKS.items()),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_revision_approvals_revision_id_revisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["manifest_id"], ["manifests.id"], name=op.f("fk_revision_approvals_manifest_id_manifests")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_revision_approvals_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"], ["users.id"], name=op.f("fk_revision_approvals_decided_by_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revision_approvals")),
        sa.UniqueConstraint(
            "revision_id", "organization_id", name=op.f("uq_revision_approvals_revision_id_organization_id")
        ),
    )
    for column in ("revision_id", "manifest_id", "organization_id"):
        op.create_index(op.f(f"ix_revision_approvals_{column}"), "revision_approvals", [column])
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
    with op.batch_alter_table("ledger_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("ledger_records", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_column("version")
    op.drop_table("revision_approvals")
    op.drop_table("revisions")
