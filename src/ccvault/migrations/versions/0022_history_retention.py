"""History retention: a tenant's `history_retention_days`, and the retention sweep's window.

`tenants.history_retention_days` (1..36500; NULL, the default, keeps history forever).
The daily retention sweep (jobs/sweeps.py) deletes, for each tenant that has one, the
versions no read shows as current any more (superseded, deleted, or past their
`expires_at`) whose `collected_at` (`uploaded_at` for assets) is older than that many
days, except a version something non-deleted still derives from (DESIGN §1: nothing is
hard-deleted while something derives from it).

Its walk: superseded and deleted versions along `{table}_retention_idx (tenant_id, at,
id)` (partial: only history rows are in it, so a write of a current version adds no entry
until it is superseded or deleted, which already rewrites indexed columns), and current
versions past their `expires_at` along the expiry index of migration 0007.

`ccv_retention_window_{table}` does one window in one call: it locks the window's profiles
(in id order, as every writer does, so no deadlock), then the rows still due FOR UPDATE
SKIP LOCKED (a write deriving from one holds KEY SHARE on it, migration 0017: that row is
left to the next run), then, in a fresh snapshot that sees every derivation committed
before those locks, deletes the rows nothing non-deleted derives from (a write that
arrives after the lock fails its NOWAIT source check, as against an erasure) and bumps
the profiles that lost rows (their history and `field_status_summary` changed: new ETag,
cache entry dropped by the caller).

Revision ID: 0022_history_retention
Revises: 0021_audit_log
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0022_history_retention"
down_revision = "0021_audit_log"
branch_labels = None
depends_on = None

# table -> the column retention measures age by.
_TABLES = {"profile_fields": "collected_at", "profile_assets": "uploaded_at"}


def upgrade() -> None:
    op.execute("""
    ALTER TABLE tenants ADD COLUMN history_retention_days integer
        CHECK (history_retention_days BETWEEN 1 AND 36500);
    """)
    for table, at in _TABLES.items():
        op.execute(f"""
        CREATE INDEX {table}_retention_idx ON {table} (tenant_id, {at}, id)
            WHERE superseded_at IS NOT NULL OR deleted_at IS NOT NULL;

        -- One window of the retention sweep over {table} for one tenant: the history
        -- rows (p_expired false) or the current rows past expires_at (true) older than
        -- p_cutoff, after (p_after_at, p_after_id) in the walk's order, at most p_batch.
        -- Returns where the window ended (NULL: it was empty), how many rows it held and
        -- deleted, and each bumped profile with its new version, for the cache.
        CREATE FUNCTION ccv_retention_window_{table}(
            p_tenant_id uuid, p_cutoff timestamptz, p_expired boolean,
            p_after_at timestamptz, p_after_id uuid, p_batch integer,
            OUT end_at timestamptz, OUT end_id uuid, OUT scanned integer, OUT deleted integer,
            OUT tenant_ids uuid[], OUT customer_ids text[], OUT versions bigint[])
        LANGUAGE plpgsql SET jit = off AS $$
        DECLARE
            due uuid[];
            due_profiles uuid[];
        BEGIN
            IF p_expired THEN
                SELECT (array_agg(w.at ORDER BY w.at DESC, w.id DESC))[1],
                       (array_agg(w.id ORDER BY w.at DESC, w.id DESC))[1],
                       count(*), array_agg(w.id), array_agg(DISTINCT w.profile_id)
                  INTO end_at, end_id, scanned, due, due_profiles
                  FROM (SELECT i.expires_at AS at, i.id, i.profile_id FROM {table} i
                         WHERE i.superseded_at IS NULL AND i.deleted_at IS NULL
                           AND i.expires_at IS NOT NULL AND i.expires_at <= now()
                           AND (i.expires_at, i.id) > (p_after_at, p_after_id)
                           AND i.tenant_id = p_tenant_id AND i.{at} < p_cutoff
                         ORDER BY i.expires_at, i.id
                         LIMIT p_batch) AS w;
            ELSE
                SELECT (array_agg(w.at ORDER BY w.at DESC, w.id DESC))[1],
                       (array_agg(w.id ORDER BY w.at DESC, w.id DESC))[1],
                       count(*), array_agg(w.id), array_agg(DISTINCT w.profile_id)
                  INTO end_at, end_id, scanned, due, due_profiles
                  FROM (SELECT i.{at} AS at, i.id, i.profile_id FROM {table} i
                         WHERE i.tenant_id = p_tenant_id
                           AND (i.superseded_at IS NOT NULL OR i.deleted_at IS NOT NULL)
                           AND i.{at} < p_cutoff
                           AND (i.{at}, i.id) > (p_after_at, p_after_id)
                         ORDER BY i.{at}, i.id
                         LIMIT p_batch) AS w;
            END IF;
            deleted := 0;
            tenant_ids := '{{}}';
            customer_ids := '{{}}';
            versions := '{{}}';
            IF due IS NULL THEN
                RETURN;
            END IF;
            -- Profiles before items, in id order, as every writer does.
            PERFORM 1 FROM customer_profiles
              WHERE tenant_id = p_tenant_id AND id IN (SELECT unnest(due_profiles))
              ORDER BY id FOR NO KEY UPDATE;
            -- The rows still due and still in those profiles (a merge may have moved one
            -- meanwhile); a row a deriving write holds is skipped, left to the next run.
            SELECT array_agg(l.id) INTO due
              FROM (SELECT i.id FROM {table} i
                     WHERE i.tenant_id = p_tenant_id AND i.id IN (SELECT unnest(due))
                       AND i.profile_id IN (SELECT unnest(due_profiles))
                       AND (i.superseded_at IS NOT NULL OR i.deleted_at IS NOT NULL
                            OR i.expires_at <= now())
                       FOR UPDATE SKIP LOCKED) AS l;
            IF due IS NULL THEN
                RETURN;
            END IF;
            -- A new statement, a new snapshot: every derivation committed before the lock
            -- above is seen here.
            WITH gone AS (
                DELETE FROM {table} t
                 WHERE t.tenant_id = p_tenant_id AND t.id IN (SELECT unnest(due))
                   AND NOT EXISTS (SELECT 1 FROM profile_fields d
                                    WHERE d.source_uuid = t.id AND d.tenant_id = p_tenant_id
                                      AND d.deleted_at IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM profile_assets d
                                    WHERE d.source_uuid = t.id AND d.tenant_id = p_tenant_id
                                      AND d.deleted_at IS NULL)
                RETURNING t.profile_id
            ), bumped AS (
                UPDATE customer_profiles p
                   SET version = p.version + 1
                 WHERE p.tenant_id = p_tenant_id AND p.id IN (SELECT profile_id FROM gone)
                RETURNING p.tenant_id, p.customer_id, p.version
            )
            SELECT (SELECT count(*) FROM gone),
                   coalesce(array_agg(b.tenant_id), '{{}}'),
                   coalesce(array_agg(b.customer_id), '{{}}'),
                   coalesce(array_agg(b.version), '{{}}')
              INTO deleted, tenant_ids, customer_ids, versions
              FROM bumped b;
        END
        $$;
        """)  # noqa: S608 (built from the constants above only)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"""
        DROP FUNCTION ccv_retention_window_{table}(
            uuid, timestamptz, boolean, timestamptz, uuid, integer);
        DROP INDEX {table}_retention_idx;
        """)
    op.execute("ALTER TABLE tenants DROP COLUMN history_retention_days")
