"""Value constraints on field definitions: `min`/`max` for numbers and integers,
`min_age`/`max_age` for dates, `default_region` for phones.

Plain columns, not one JSONB document: each constraint has one SQL type (numeric keeps an
integer bound exact at any size, smallint holds an age), and the CHECKs below can then
say in the table itself which constraint belongs to which `value_type` and that a lower
bound is not above its upper bound, the same rules DefinitionBody applies (a 422
config_error there; these CHECKs hold whatever writes).

Revision ID: 0013_value_constraints
Revises: 0012_input_bounds
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0013_value_constraints"
down_revision = "0012_input_bounds"
branch_labels = None
depends_on = None

# Keep equal to domain/schema.py (MAX_AGE).
MAX_AGE = 200


def upgrade() -> None:
    op.execute(f"""
    ALTER TABLE profile_field_definitions
        ADD COLUMN "min" numeric,
        ADD COLUMN "max" numeric,
        ADD COLUMN min_age smallint,
        ADD COLUMN max_age smallint,
        ADD COLUMN default_region text,
        ADD CONSTRAINT profile_field_definitions_range_type CHECK (
            ("min" IS NULL AND "max" IS NULL) OR value_type IN ('number', 'integer')),
        ADD CONSTRAINT profile_field_definitions_range_order CHECK ("min" <= "max"),
        ADD CONSTRAINT profile_field_definitions_range_whole CHECK (
            value_type <> 'integer' OR ("min" = trunc("min") AND "max" = trunc("max"))),
        ADD CONSTRAINT profile_field_definitions_age_type CHECK (
            (min_age IS NULL AND max_age IS NULL) OR value_type = 'date'),
        ADD CONSTRAINT profile_field_definitions_age_bounds CHECK (
            min_age BETWEEN 0 AND {MAX_AGE} AND max_age BETWEEN 0 AND {MAX_AGE}
            AND min_age <= max_age),
        ADD CONSTRAINT profile_field_definitions_region CHECK (
            default_region IS NULL
            OR (value_type = 'phone' AND default_region ~ '^[A-Z]{{2}}$'));
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE profile_field_definitions
        DROP COLUMN "min", DROP COLUMN "max", DROP COLUMN min_age, DROP COLUMN max_age,
        DROP COLUMN default_region;
    """)
