"""states are checked, masses are exact

Every mass column (kg) becomes NUMERIC(14, 3): existing values are rounded to the gram (a float
such as 0.30000000000000004 becomes 0.300). States (manifest status, ledger stage, box colour and
status, fill kind, roles, token kind) get a CHECK constraint listing their values, and CHECK
constraints tie a manifest's state to its timestamps and keep every balance within its bounds.

Existing rows are normalised first, so that no constraint refuses them:
- the balances were rounded to grams on every write, but as floats: a residue such as
  -1e-13 or an available quantity a rounding above what is on site is clamped after rounding;
- a manifest in a state without the timestamp of the step that led there (not written by the
  services, which always set it together with the state) takes the nearest earlier timestamp;
- state values: none outside the lists can exist, the API and the services have validated them
  against the same lists since the first revision; a row that would hold one stops the upgrade
  (CHECK constraint failed) rather than being guessed at.

Revision ID: 5e7a3c1d9b20
Revises: 89b1a75f925c
Create Date: 2026-12-03 14:30:00

"""

from alembic import op
import sqlalchemy as sa


revision = "5e7a3c1d9b20"
down_revision = "89b1a75f925c"
branch_labels = None
depends_on = None

# table → [(column, nullable)]
MASSES = {
    "boxes": [("design_fill_kg", False)],
    "fills": [("mass_kg", False), ("removed_waste_kg", True)],
    "ledger_records": [("quantity_kg", False), ("on_site_kg", True), ("available_kg", True)],
    "waste_stock": [("on_hand_kg", False), ("reserved_kg", False)],
    "manifest_lines": [("quantity_kg", False), ("received_kg", True), ("accepted_kg", True), ("consumed_kg", False)],
    "manifest_line_sources": [("quantity_kg", False), ("returned_kg", False)],
    "regeneration_batches": [("input_kg", False), ("output_kg", False), ("used_kg", False)],
    "regeneration_inputs": [("quantity_kg", False)],
}

MANIFEST_STATUS = ("draft", "submitted", "in_transit", "received", "processed", "closed", "rejected", "cancelled")
COLOURS = ("grey", "green", "yellow", "red")
# table → [(column, values)]: the constraint is ck_<table>_<column>
STATES = {
    "organization_roles": [
        ("role", ("generator", "carrier", "receiver", "regenerator", "supplier", "regulator", "park_admin"))
    ],
    "users": [("role", ("admin", "staff"))],
    "api_tokens": [("kind", ("user", "device"))],
    "boxes": [("status", ("active", "stopped", "decommissioned")), ("colour", COLOURS)],
    "fills": [("kind", ("initial", "replacement"))],
    "colour_changes": [("colour", COLOURS), ("previous_colour", COLOURS)],
    "ledger_records": [("stage", ("generation", "storage", "out_of_storage", "sent_out", "returned"))],
    "manifests": [("status", MANIFEST_STATUS)],
    "manifest_events": [("from_status", MANIFEST_STATUS), ("to_status", MANIFEST_STATUS)],
}


def _in(states):
    return "status IN (" + ", ".join(f"'{s}'" for s in states) + ")"


# table → {name: sql}: the constraint is ck_<table>_<name> (as in the models).
CHECKS = {
    "fills": {
        "mass_positive": "mass_kg > 0",
        "removed_not_negative": "removed_waste_kg IS NULL OR removed_waste_kg >= 0",
    },
    "ledger_records": {
        "quantity_not_negative": "quantity_kg >= 0",
        "generation_balances": "stage <> 'generation' OR (on_site_kg IS NOT NULL AND available_kg IS NOT NULL "
        "AND available_kg >= 0 AND available_kg <= on_site_kg AND on_site_kg <= quantity_kg)",
        "balances_only_generation": "stage = 'generation' OR (on_site_kg IS NULL AND available_kg IS NULL)",
    },
    "waste_stock": {
        "on_hand_not_negative": "on_hand_kg >= 0",
        "reserved_not_negative": "reserved_kg >= 0",
        "reserved_within_on_hand": "reserved_kg <= on_hand_kg",
    },
    "manifests": {
        "picked_up_has_picked_up_at": f"NOT ({_in(('in_transit', 'received', 'processed', 'closed', 'rejected'))}) "
        "OR picked_up_at IS NOT NULL",
        "received_has_received_at": f"NOT ({_in(('received', 'processed', 'closed'))}) OR received_at IS NOT NULL",
        "processed_has_processed_at": f"NOT ({_in(('processed', 'closed'))}) OR processed_at IS NOT NULL",
        "rejected_has_rejected_at": "status <> 'rejected' OR rejected_at IS NOT NULL",
        "cancelled_has_cancelled_at": "status <> 'cancelled' OR cancelled_at IS NOT NULL",
    },
    "manifest_lines": {
        "quantity_positive": "quantity_kg > 0",
        "received_not_negative": "received_kg IS NULL OR received_kg >= 0",
        "accepted_within_received": "accepted_kg IS NULL OR (accepted_kg >= 0 AND (received_kg IS NULL OR "
        "accepted_kg <= received_kg))",
        "consumed_within_accepted": "consumed_kg >= 0 AND consumed_kg <= COALESCE(accepted_kg, 0)",
    },
    "manifest_line_sources": {
        "quantity_positive": "quantity_kg > 0",
        "returned_within_quantity": "returned_kg >= 0 AND returned_kg <= quantity_kg",
    },
    "regeneration_batches": {
        "masses": "input_kg > 0 AND output_kg > 0 AND output_kg <= input_kg",
        "used_within_output": "used_kg >= 0 AND used_kg <= output_kg",
    },
    "regeneration_inputs": {
        "quantity_positive": "quantity_kg > 0",
    },
}

# Run after rounding, before the constraints: float residues clamped, missing step timestamps filled.
NORMALISE = [
    # A negative zero or a residue below a gram is nothing.
    *[
        f"UPDATE {t} SET {c} = 0 WHERE {c} < 0"
        for t, c in (
            ("waste_stock", "on_hand_kg"),
            ("waste_stock", "reserved_kg"),
            ("ledger_records", "on_site_kg"),
            ("ledger_records", "available_kg"),
            ("manifest_lines", "consumed_kg"),
            ("manifest_line_sources", "returned_kg"),
            ("regeneration_batches", "used_kg"),
        )
    ],
    "UPDATE waste_stock SET reserved_kg = on_hand_kg WHERE reserved_kg > on_hand_kg",
    "UPDATE ledger_records SET on_site_kg = NULL, available_kg = NULL WHERE stage <> 'generation'",
    "UPDATE ledger_records SET on_site_kg = COALESCE(on_site_kg, quantity_kg), "
    "available_kg = COALESCE(available_kg, on_site_kg, quantity_kg) WHERE stage = 'generation'",
    "UPDATE ledger_records SET on_site_kg = quantity_kg WHERE stage = 'generation' AND on_site_kg > quantity_kg",
    "UPDATE ledger_records SET available_kg = on_site_kg WHERE stage = 'generation' AND available_kg > on_site_kg",
    "UPDATE manifest_lines SET accepted_kg = received_kg WHERE accepted_kg > received_kg",
    "UPDATE manifest_lines SET consumed_kg = COALESCE(accepted_kg, 0) WHERE consumed_kg > COALESCE(accepted_kg, 0)",
    "UPDATE manifest_line_sources SET returned_kg = quantity_kg WHERE returned_kg > quantity_kg",
    "UPDATE regeneration_batches SET used_kg = output_kg WHERE used_kg > output_kg",
    "UPDATE manifests SET picked_up_at = COALESCE(submitted_at, created_at) WHERE picked_up_at IS NULL AND "
    + _in(("in_transit", "received", "processed", "closed", "rejected")),
    "UPDATE manifests SET received_at = picked_up_at WHERE received_at IS NULL AND "
    + _in(("received", "processed", "closed")),
    "UPDATE manifests SET processed_at = COALESCE(closed_at, received_at) WHERE processed_at IS NULL AND "
    + _in(("processed", "closed")),
    "UPDATE manifests SET rejected_at = picked_up_at WHERE rejected_at IS NULL AND status = 'rejected'",
    "UPDATE manifests SET cancelled_at = COALESCE(submitted_at, created_at) WHERE cancelled_at IS NULL "
    "AND status = 'cancelled'",
]


def _tables():
    return list(dict.fromkeys([*MASSES, *STATES, *CHECKS]))


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:  # PostgreSQL rounds in the ALTER … USING below
        for table, columns in MASSES.items():
            for column, _nullable in columns:
                op.execute(f"UPDATE {table} SET {column} = round({column}, 3) WHERE {column} IS NOT NULL")
    else:
        for table, columns in MASSES.items():
            for column, _nullable in columns:
                op.execute(
                    f"UPDATE {table} SET {column} = round({column}::numeric, 3)::double precision "
                    f"WHERE {column} IS NOT NULL"
                )
    for sql in NORMALISE:
        op.execute(sql)
    for table in _tables():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, nullable in MASSES.get(table, []):
                batch_op.alter_column(
                    column,
                    existing_type=sa.Float(),
                    type_=sa.Numeric(precision=14, scale=3),
                    existing_nullable=nullable,
                    postgresql_using=f"round({column}::numeric, 3)",
                )
            for column, values in STATES.get(table, []):
                batch_op.create_check_constraint(
                    op.f(f"ck_{table}_{column}"), f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"
                )
            for name, sql in CHECKS.get(table, {}).items():
                batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), sql)


def downgrade():
    for table in reversed(_tables()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in reversed(list(CHECKS.get(table, {}))):
                batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
            for column, _values in reversed(STATES.get(table, [])):
                batch_op.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
            for column, nullable in MASSES.get(table, []):
                batch_op.alter_column(
                    column,
                    existing_type=sa.Numeric(precision=14, scale=3),
                    type_=sa.Float(),
                    existing_nullable=nullable,
                )
