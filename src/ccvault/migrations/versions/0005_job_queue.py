"""Job queue: procrastinate's schema (pinned version) and the orphan sweep's index.

The schema text comes from the installed procrastinate package, whose version
pyproject.toml pins exactly, so this revision always creates the same objects.

Revision ID: 0005_job_queue
Revises: 0004_cache_epoch
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op
from procrastinate.schema import SchemaManager

revision = "0005_job_queue"
down_revision = "0004_cache_epoch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(SchemaManager.get_schema())
    op.execute("""
    -- Orphan detection walks active derived items in id order, a window at a time.
    CREATE INDEX profile_fields_derived_active_idx ON profile_fields (id)
        WHERE status = 'active' AND deleted_at IS NULL AND source_uuid IS NOT NULL;
    CREATE INDEX profile_assets_derived_active_idx ON profile_assets (id)
        WHERE status = 'active' AND deleted_at IS NULL AND source_uuid IS NOT NULL;
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX profile_assets_derived_active_idx;
    DROP INDEX profile_fields_derived_active_idx;
    DROP TABLE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
               procrastinate_workers CASCADE;
    DO $$
    DECLARE fn regprocedure;
    BEGIN
        FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
                   JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
        LOOP
            EXECUTE 'DROP FUNCTION ' || fn || ' CASCADE';
        END LOOP;
    END $$;
    DROP TYPE procrastinate_job_to_defer_v1, procrastinate_job_event_type,
              procrastinate_job_status;
    """)
