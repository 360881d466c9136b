-- Both sweeps run over profile_fields and profile_assets alike: {table} names the table
-- and {touch} adds `, updated_at = clock_timestamp()` for fields (assets have no
-- updated_at); sweeps.py fills them in.

-- name: expire_batch
-- One batch of active items whose expires_at has passed. Rows a writer holds are skipped
-- (the next sweep gets them); superseded rows are never touched (status precedence).
-- Returns each changed row's tenant, customer and profile version, for the cache (the
-- profile rows are only read: an expiry changes no version, see sweeps.py).
WITH due AS (
    SELECT id
      FROM {table}
     WHERE status = 'active' AND expires_at <= now()
       AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
     ORDER BY expires_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
)
UPDATE {table} t
   SET status = 'expired'{touch}
  FROM due, customer_profiles p
 WHERE t.id = due.id AND p.id = t.profile_id
RETURNING p.tenant_id, p.customer_id, p.version;

-- name: orphan_window
-- Orphan detection walks the active derived items in id order, one window at a time
-- (keyset pagination keeps every statement short however large the table), and orphans
-- those whose vault source is gone or soft-deleted. Returns where the window ended, how
-- many rows it held, and the changed rows' profiles.
WITH window_rows AS (
    SELECT id, tenant_id, source_uuid
      FROM {table}
     WHERE status = 'active' AND deleted_at IS NULL AND source_uuid IS NOT NULL
       AND id > %(after)s
       AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
     ORDER BY id
     LIMIT %(batch)s
), orphans AS (
    SELECT w.id
      FROM window_rows w
     WHERE NOT EXISTS (SELECT 1 FROM lineage_items s
                        WHERE s.id = w.source_uuid AND s.tenant_id = w.tenant_id
                          AND s.deleted_at IS NULL)
), changed AS (
    UPDATE {table} t
       SET status = 'orphaned', is_orphaned = true{touch}
      FROM orphans o
     WHERE t.id = o.id AND t.status = 'active'
    RETURNING t.profile_id
)
SELECT (SELECT id FROM window_rows ORDER BY id DESC LIMIT 1) AS window_end,
       (SELECT count(*) FROM window_rows) AS scanned,
       coalesce((SELECT array_agg(profile_id) FROM changed), '{}') AS profiles;
