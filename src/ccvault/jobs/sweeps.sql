-- name: expire_fields_batch
-- One batch of active fields whose expires_at has passed. Rows a writer holds are skipped
-- (the next sweep gets them); superseded rows are never touched (status precedence).
-- Returns each changed row's profile, for the version bump and the cache.
WITH due AS (
    SELECT id
      FROM profile_fields
     WHERE status = 'active' AND expires_at <= now()
       AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
     ORDER BY expires_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
)
UPDATE profile_fields f
   SET status = 'expired', updated_at = clock_timestamp()
  FROM due
 WHERE f.id = due.id
RETURNING f.profile_id;

-- name: expire_assets_batch
WITH due AS (
    SELECT id
      FROM profile_assets
     WHERE status = 'active' AND expires_at <= now()
       AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
     ORDER BY expires_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
)
UPDATE profile_assets s
   SET status = 'expired'
  FROM due
 WHERE s.id = due.id
RETURNING s.profile_id;

-- name: orphan_fields_window
-- Orphan detection walks the active derived fields in id order, one window at a time
-- (keyset pagination keeps every statement short however large the table), and orphans
-- those whose vault source is gone or soft-deleted. Returns the changed rows' profiles
-- and, on every row, where the window ended.
WITH window_rows AS (
    SELECT id, tenant_id, source_uuid
      FROM profile_fields
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
    UPDATE profile_fields f
       SET status = 'orphaned', is_orphaned = true, updated_at = clock_timestamp()
      FROM orphans o
     WHERE f.id = o.id AND f.status = 'active'
    RETURNING f.profile_id
)
SELECT (SELECT id FROM window_rows ORDER BY id DESC LIMIT 1) AS window_end,
       (SELECT count(*) FROM window_rows) AS scanned,
       coalesce((SELECT array_agg(profile_id) FROM changed), '{}') AS profiles;

-- name: orphan_assets_window
WITH window_rows AS (
    SELECT id, tenant_id, source_uuid
      FROM profile_assets
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
    UPDATE profile_assets s
       SET status = 'orphaned', is_orphaned = true
      FROM orphans o
     WHERE s.id = o.id AND s.status = 'active'
    RETURNING s.profile_id
)
SELECT (SELECT id FROM window_rows ORDER BY id DESC LIMIT 1) AS window_end,
       (SELECT count(*) FROM window_rows) AS scanned,
       coalesce((SELECT array_agg(profile_id) FROM changed), '{}') AS profiles;
