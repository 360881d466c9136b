"""Incremental orphan detection: from the sources deleted since the last run.

An item becomes an orphan when its vault source (a field or asset) is deleted. The full
pass walks every derived item, which grows with the vault, every 15 minutes; most runs
find nothing new. Items are only ever soft-deleted, so the sources deleted since the last
run are found by their `deleted_at` (a small partial index: deleted rows only), and the
items derived from them by `source_uuid` (its index, migration 0001). A full pass still
runs once a day (jobs/sweeps.py), for whatever the incremental runs cannot see (a row
removed by hand).

`sweep_runs` remembers, per sweep, when its last run started and its last full pass.
It is the job queue's kind of table: no tenant_id (on Citus it stays on the coordinator).

`ccv_orphan_derived_{table}(sources, tenant)` is `ccv_orphan_window_{table}` (migration
0008, same lock order: profiles first, in id order) over the current items derived from
the given sources instead of a window of ids.

Revision ID: 0015_incremental_orphans
Revises: 0014_shard_ready_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0015_incremental_orphans"
down_revision = "0014_shard_ready_keys"
branch_labels = None
depends_on = None

# table -> the extra SET that records when a field changed (assets have no updated_at).
_TABLES = {
    "profile_fields": ", updated_at = clock_timestamp()",
    "profile_assets": "",
}


def upgrade() -> None:
    op.execute("""
    CREATE TABLE sweep_runs (
        sweep text PRIMARY KEY,
        last_started_at timestamptz NOT NULL,
        last_full_at timestamptz
    );
    CREATE INDEX profile_fields_deleted_idx ON profile_fields (deleted_at, id)
        WHERE deleted_at IS NOT NULL;
    CREATE INDEX profile_assets_deleted_idx ON profile_assets (deleted_at, id)
        WHERE deleted_at IS NOT NULL;
    """)
    for table, touch in _TABLES.items():
        op.execute(f"""
        -- Orphan the current active items of {table} derived from p_sources (ids of
        -- fields or assets) whose source is gone or soft-deleted, of one tenant or all
        -- (NULL), and bump their profiles' versions. Returns how many changed and each
        -- bumped profile with its new version as aligned arrays, for the cache.
        CREATE FUNCTION ccv_orphan_derived_{table}(
            p_sources uuid[], p_tenant_id uuid,
            OUT changed integer, OUT tenant_ids uuid[], OUT customer_ids text[],
            OUT versions bigint[])
        LANGUAGE plpgsql AS $$
        DECLARE
            orphan_rows tid[];
            orphan_profiles uuid[];
        BEGIN
            SELECT array_agg(i.ctid), array_agg(DISTINCT i.profile_id)
              INTO orphan_rows, orphan_profiles
              FROM {table} i
             WHERE i.source_uuid IN (SELECT unnest(p_sources))
               AND i.status = 'active' AND i.superseded_at IS NULL AND i.deleted_at IS NULL
               AND (p_tenant_id IS NULL OR i.tenant_id = p_tenant_id)
               AND CASE WHEN i.source_item_type = 'profile_field' THEN NOT EXISTS (
                            SELECT 1 FROM profile_fields s
                             WHERE s.id = i.source_uuid AND s.tenant_id = i.tenant_id
                               AND s.deleted_at IS NULL)
                        ELSE NOT EXISTS (
                            SELECT 1 FROM profile_assets s
                             WHERE s.id = i.source_uuid AND s.tenant_id = i.tenant_id
                               AND s.deleted_at IS NULL)
                   END;
            changed := 0;
            tenant_ids := '{{}}';
            customer_ids := '{{}}';
            versions := '{{}}';
            IF orphan_rows IS NULL THEN
                RETURN;
            END IF;
            PERFORM 1 FROM customer_profiles
              WHERE id IN (SELECT unnest(orphan_profiles)) ORDER BY id FOR NO KEY UPDATE;
            WITH orphaned AS (
                UPDATE {table} t
                   SET status = 'orphaned', is_orphaned = true,
                       source_item_type = t.source_item_type{touch}
                 WHERE t.ctid = ANY(orphan_rows) AND t.status = 'active'
                   AND t.superseded_at IS NULL AND t.deleted_at IS NULL
                RETURNING t.profile_id
            ), bumped AS (
                UPDATE customer_profiles p
                   SET version = p.version + 1, updated_at = clock_timestamp()
                 WHERE p.id IN (SELECT profile_id FROM orphaned)
                RETURNING p.tenant_id, p.customer_id, p.version
            )
            SELECT (SELECT count(*) FROM orphaned),
                   coalesce(array_agg(b.tenant_id), '{{}}'),
                   coalesce(array_agg(b.customer_id), '{{}}'),
                   coalesce(array_agg(b.version), '{{}}')
              INTO changed, tenant_ids, customer_ids, versions
              FROM bumped b;
        END
        $$;
        """)  # noqa: S608 (built from the constants above only)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP FUNCTION ccv_orphan_derived_{table}(uuid[], uuid)")
    op.execute("""
    DROP INDEX profile_assets_deleted_idx;
    DROP INDEX profile_fields_deleted_idx;
    DROP TABLE sweep_runs;
    """)
