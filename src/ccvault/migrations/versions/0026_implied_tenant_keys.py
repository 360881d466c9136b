"""Field and asset versions lose their own foreign key to `tenants`: it is implied by the
one to their profile, `(profile_id, tenant_id)` -> `customer_profiles (id, tenant_id)`,
whose `tenant_id` references `tenants` in turn, so no row can name a tenant that does not
exist either way (issue 17, the field write's cost).

The check it saved was not free: every inserted version locked the tenant's one
`tenants` row FOR KEY SHARE (a query of its own, and a lock recorded on that row by each
writer of the tenant, shared between concurrent writers through a MultiXact). The
profile's key stays, and with it every invariant; the `events` table went without one
for the same reason (migration 0020).

Revision ID: 0026_implied_tenant_keys
Revises: 0025_audit_subjects_head
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0026_implied_tenant_keys"
down_revision = "0025_audit_subjects_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE profile_fields DROP CONSTRAINT profile_fields_tenant_id_fkey;
    ALTER TABLE profile_assets DROP CONSTRAINT profile_assets_tenant_id_fkey;
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE profile_fields ADD CONSTRAINT profile_fields_tenant_id_fkey
        FOREIGN KEY (tenant_id) REFERENCES tenants (id);
    ALTER TABLE profile_assets ADD CONSTRAINT profile_assets_tenant_id_fkey
        FOREIGN KEY (tenant_id) REFERENCES tenants (id);
    """)
