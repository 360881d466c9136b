"""Purpose-aware reads (DESIGN §8 "Privacy"): definitions name the purposes their field
may be read for and the consent a read needs; a tenant may require every read to name
its purpose.

Revision ID: 0016_purposes
Revises: 0015_incremental_orphans
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0016_purposes"
down_revision = "0015_incremental_orphans"
branch_labels = None
depends_on = None

# Keep equal to domain/schema.py (PURPOSE_PATTERN, MAX_PURPOSES) and FIELD_NAME_PATTERN.
PURPOSE = "^[a-z][a-z0-9_.:-]{0,63}$"
CONSENT = "^[a-z_][a-z0-9_]{0,49}$"
MAX_PURPOSES = 50


def upgrade() -> None:
    # Only the module's constants are formatted in.
    op.execute(f"""
    CREATE FUNCTION ccv_purposes_valid(purposes text[]) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN cardinality(purposes) <= {MAX_PURPOSES}
           AND NOT EXISTS (SELECT 1 FROM unnest(purposes) p WHERE p IS NULL OR p !~ '{PURPOSE}');

    ALTER TABLE profile_field_definitions
        ADD COLUMN purposes text[] NOT NULL DEFAULT '{{}}',
        ADD COLUMN consent_type text,
        ADD CONSTRAINT profile_field_definitions_purposes CHECK (ccv_purposes_valid(purposes)),
        ADD CONSTRAINT profile_field_definitions_consent_type CHECK (consent_type ~ '{CONSENT}');

    ALTER TABLE tenants ADD COLUMN require_purpose boolean NOT NULL DEFAULT false;
    """)  # noqa: S608


def downgrade() -> None:
    op.execute("""
    ALTER TABLE tenants DROP COLUMN require_purpose;
    ALTER TABLE profile_field_definitions DROP COLUMN purposes, DROP COLUMN consent_type;
    DROP FUNCTION ccv_purposes_valid(text[]);
    """)
