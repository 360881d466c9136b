-- Both sweeps run over profile_fields and profile_assets alike: {table} names the table
-- and {touch} adds `, updated_at = clock_timestamp()` for fields (assets have no
-- updated_at); on PostgreSQL 18, {regenerate} sets source_item_type to itself (see
-- sweeps.py for why). sweeps.py fills them in.

-- name: expire_window
-- Expiry walks the current items that have an expires_at, in (expires_at, id) order up
-- to now, one window of rows at a time (keyset pagination keeps every statement short
-- however many rows are due), and expires the active ones. The index also holds the rows
-- expired before (status is in no index, so that these updates write no index entries:
-- migration 0007); they are passed over here. Rows are updated by the ctid this same
-- statement read: one a writer changed meanwhile (superseded, deleted, moved by a merge)
-- no longer matches and is left to the next run; superseded rows are never touched.
-- Returns where the window ended, how many rows it held and changed, and the profiles of
-- the changed rows with their versions, for the cache (an expiry bumps no version).
WITH window_rows AS (
    SELECT ctid AS row_ctid, id, expires_at, status
      FROM {table}
     WHERE superseded_at IS NULL AND deleted_at IS NULL AND expires_at IS NOT NULL
       AND (expires_at, id) > (%(after_at)s::timestamptz, %(after_id)s::uuid)
       AND expires_at <= now()
       AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
     ORDER BY expires_at, id
     LIMIT %(batch)s
), changed AS (
    UPDATE {table} t
       SET status = 'expired'{regenerate}{touch}
      FROM window_rows w
     WHERE w.status = 'active' AND t.ctid = w.row_ctid
       AND t.status = 'active' AND t.superseded_at IS NULL AND t.deleted_at IS NULL
    RETURNING t.profile_id
)
SELECT last_row.expires_at, last_row.id,
       (SELECT count(*) FROM window_rows) AS scanned,
       (SELECT count(*) FROM changed) AS changed,
       -- Each touched profile once (a window often holds several items of one), as
       -- three aligned arrays.
       profiles.tenant_ids, profiles.customer_ids, profiles.versions
  FROM (SELECT coalesce(array_agg(p.tenant_id), '{}') AS tenant_ids,
               coalesce(array_agg(p.customer_id), '{}') AS customer_ids,
               coalesce(array_agg(p.version), '{}') AS versions
          FROM customer_profiles p
         WHERE p.id IN (SELECT profile_id FROM changed)) AS profiles
  LEFT JOIN LATERAL (SELECT expires_at, id FROM window_rows
                      ORDER BY expires_at DESC, id DESC LIMIT 1) AS last_row ON true;

-- name: orphan_window
-- Orphan detection walks the current derived items in id order, one window at a time
-- (keyset pagination keeps every statement short however large the table), orphans the
-- active ones whose vault source is gone or soft-deleted and bumps their profiles'
-- versions, all in one call (migration 0008 has the function and its lock order).
-- Returns where the window ended, how many rows it held and changed, and the bumped
-- profiles with their new versions.
SELECT window_end, scanned, changed, tenant_ids, customer_ids, versions
  FROM ccv_orphan_window_{table}(%(after)s, %(batch)s, %(tenant_id)s);

-- name: deleted_sources
-- Incremental orphan detection walks the sources deleted since a point in time, in
-- (deleted_at, id) order (the partial index of migration 0015), one window at a time.
SELECT coalesce(array_agg(id ORDER BY deleted_at, id), '{}') AS ids,
       max(deleted_at) AS end_at,
       (array_agg(id ORDER BY deleted_at DESC, id DESC))[1] AS end_id
  FROM (SELECT id, deleted_at FROM {table}
         WHERE deleted_at IS NOT NULL AND deleted_at >= %(since)s
           AND (deleted_at, id) > (%(after_at)s::timestamptz, %(after_id)s::uuid)
           AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
         ORDER BY deleted_at, id
         LIMIT %(batch)s) AS w;

-- name: orphan_derived
-- Orphans the current items of {table} derived from a window of deleted sources and bumps
-- their profiles' versions, in one call (migration 0015 has the function).
SELECT changed, tenant_ids, customer_ids, versions
  FROM ccv_orphan_derived_{table}(%(sources)s, %(tenant_id)s);

-- name: retention_window
-- The retention sweep's window over {table} for one tenant, in one call (migration 0022
-- has the function and its lock order): history rows (expired false) or current rows
-- past their expires_at (true) older than the cutoff. Returns where the window ended,
-- how many rows it held and deleted, and the bumped profiles with their new versions.
SELECT end_at, end_id, scanned, deleted, tenant_ids, customer_ids, versions
  FROM ccv_retention_window_{table}(%(tenant_id)s, %(cutoff)s, %(expired)s,
                                    %(after_at)s, %(after_id)s, %(batch)s);
