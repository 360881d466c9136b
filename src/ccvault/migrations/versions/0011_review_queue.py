"""Indexes for the review queue and for dismissed suggestions.

The review queue pages an agent's pending requirements oldest first by (created_at, id);
extraction looks up whether a name was dismissed (a suggestion deleted while suggested)
before suggesting it again. Both are partial indexes: pending and dismissed rows are few.

Revision ID: 0011_review_queue
Revises: 0010_profiles_keys_written_by
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011_review_queue"
down_revision = "0010_profiles_keys_written_by"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Two partial indexes."""
    op.execute(
        """
        CREATE INDEX scenario_field_requirements_pending
            ON scenario_field_requirements (tenant_id, agent_id, created_at, id)
            WHERE review_status = 'pending';
        CREATE INDEX profile_field_definitions_dismissed
            ON profile_field_definitions (tenant_id, agent_id, name)
            WHERE status = 'suggested' AND deleted_at IS NOT NULL;
        """
    )


def downgrade() -> None:
    """Drop them."""
    op.execute(
        """
        DROP INDEX scenario_field_requirements_pending;
        DROP INDEX profile_field_definitions_dismissed;
        """
    )
