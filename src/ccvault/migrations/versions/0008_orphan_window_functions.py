"""Orphan detection's window in one round trip.

Orphan detection walks the current derived items window by window. A window used to be
one statement (orphan the active items whose source is gone or soft-deleted) and then,
for the cache, a version bump of the changed items' profiles: BEGIN, UPDATE, COMMIT per
1,000 profiles, on a second connection. Each round trip wakes a server process, and on a
small machine every wake-up is a chance to land on the CPU an API request is about to use.
These functions do the whole window in one call and one short transaction, and bump each
profile once per window.

Lock order: the window's profiles are locked first, in id order, and only then are their
items updated. Every writer locks its profile before touching items (ccv_lock_profile),
so a writer holding a profile and waiting for one of the window's items cannot meet a
sweep holding that item and waiting for the profile: no deadlock, only a short wait.

Revision ID: 0008_orphan_window_functions
Revises: 0007_hot_status_changes
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0008_orphan_window_functions"
down_revision = "0007_hot_status_changes"
branch_labels = None
depends_on = None

# table -> the extra SET that records when a field changed (assets have no updated_at).
_TABLES = {
    "profile_fields": ", updated_at = clock_timestamp()",
    "profile_assets": "",
}


def upgrade() -> None:
    for table, touch in _TABLES.items():
        op.execute(f"""
        -- One window of orphan detection over {table}: the current derived items after
        -- p_after in id order (at most p_batch), of one tenant or all (NULL). Orphans the
        -- active ones whose vault source is gone or soft-deleted and bumps their
        -- profiles' versions. Returns where the window ended (NULL: it was empty), how
        -- many rows it held and changed, and each bumped profile with its new version as
        -- aligned arrays, for the cache.
        CREATE FUNCTION ccv_orphan_window_{table}(
            p_after uuid, p_batch integer, p_tenant_id uuid,
            OUT window_end uuid, OUT scanned integer, OUT changed integer,
            OUT tenant_ids uuid[], OUT customer_ids text[], OUT versions bigint[])
        LANGUAGE plpgsql AS $$
        DECLARE
            orphan_rows tid[];
            orphan_profiles uuid[];
        BEGIN
            SELECT (array_agg(w.id ORDER BY w.id DESC))[1], count(*),
                   array_agg(w.row_ctid) FILTER (WHERE w.orphan),
                   array_agg(DISTINCT w.profile_id) FILTER (WHERE w.orphan)
              INTO window_end, scanned, orphan_rows, orphan_profiles
              FROM (SELECT i.ctid AS row_ctid, i.id, i.profile_id,
                           -- The source is looked up only for active items, and only in
                           -- the table its type names (CASE keeps both lazy).
                           CASE WHEN i.status <> 'active' THEN false
                                WHEN i.source_item_type = 'profile_field' THEN NOT EXISTS (
                                    SELECT 1 FROM profile_fields s
                                     WHERE s.id = i.source_uuid AND s.tenant_id = i.tenant_id
                                       AND s.deleted_at IS NULL)
                                ELSE NOT EXISTS (
                                    SELECT 1 FROM profile_assets s
                                     WHERE s.id = i.source_uuid AND s.tenant_id = i.tenant_id
                                       AND s.deleted_at IS NULL)
                           END AS orphan
                      FROM {table} i
                     WHERE i.superseded_at IS NULL AND i.deleted_at IS NULL
                       AND i.source_uuid IS NOT NULL AND i.id > p_after
                       AND (p_tenant_id IS NULL OR i.tenant_id = p_tenant_id)
                     ORDER BY i.id
                     LIMIT p_batch) AS w;
            changed := 0;
            tenant_ids := '{{}}';
            customer_ids := '{{}}';
            versions := '{{}}';
            IF orphan_rows IS NULL THEN
                RETURN;
            END IF;
            -- Profiles before items, in id order, as every writer does (see above).
            -- (IN over unnest: probes the primary key; `= ANY(array)` of a thousand ids
            -- was planned as a scan of the whole table.)
            PERFORM 1 FROM customer_profiles
              WHERE id IN (SELECT unnest(orphan_profiles)) ORDER BY id FOR NO KEY UPDATE;
            -- By the ctid the window read: a row a writer changed meanwhile (superseded,
            -- deleted, moved by a merge) no longer matches and is left to the next run.
            WITH orphaned AS (
                UPDATE {table} t
                   -- source_item_type is set to itself for PostgreSQL 18, which otherwise
                   -- parses source_uuid's generation expression again for every row
                   -- (jobs/sweeps.py has the details); older servers only recompute it.
                   -- Orphan detection has no deadline, so one statement serves both.
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
        op.execute(f"DROP FUNCTION ccv_orphan_window_{table}(uuid, integer, uuid)")
