-- name: resolve_profiles
-- Both sides of a merge, aliases followed, locked in id order so two opposite merges
-- cannot deadlock. After waiting for a lock, p.merged_into_id shows the latest value:
-- non-null means a concurrent merge retired p, and the caller resolves again. p.version
-- is read under the lock, for the target's If-Match.
SELECT p.id, p.customer_id, a.customer_id AS requested, p.version, p.merged_into_id
  FROM customer_profiles a
  JOIN customer_profiles p ON p.id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = ANY(%(customer_ids)s)
 ORDER BY p.id
   FOR UPDATE OF p;

-- name: merge_fields
-- For a name current in both profiles the newer live version (collected_at) stays (a live
-- one beats an expired or orphaned one); the other is superseded by it. Then every version
-- of the source moves over with its id.
WITH current AS (
    SELECT id, name, collected_at,
           ccv_effective_status(status, expires_at) = 'active' AS live
      FROM profile_fields
     WHERE tenant_id = %(tenant_id)s AND profile_id IN (%(source_id)s, %(target_id)s)
       AND superseded_at IS NULL AND deleted_at IS NULL
), ranked AS (
    SELECT id, first_value(id) OVER w AS winner, row_number() OVER w AS rank
      FROM current
    WINDOW w AS (PARTITION BY name ORDER BY live DESC, collected_at DESC, id)
), losers AS (
    UPDATE profile_fields f
       SET status = 'superseded', superseded_by_id = r.winner,
           superseded_at = clock_timestamp(), updated_at = clock_timestamp()
      FROM ranked r
     WHERE f.id = r.id AND r.rank > 1
    RETURNING f.id
)
SELECT count(*) FROM losers;

-- name: move_fields
UPDATE profile_fields SET profile_id = %(target_id)s
 WHERE tenant_id = %(tenant_id)s AND profile_id = %(source_id)s;

-- name: merge_assets
WITH current AS (
    SELECT id, name, uploaded_at,
           ccv_effective_status(status, expires_at) = 'active' AS live
      FROM profile_assets
     WHERE tenant_id = %(tenant_id)s AND profile_id IN (%(source_id)s, %(target_id)s)
       AND superseded_at IS NULL AND deleted_at IS NULL
), ranked AS (
    SELECT id, first_value(id) OVER w AS winner, row_number() OVER w AS rank
      FROM current
    WINDOW w AS (PARTITION BY name ORDER BY live DESC, uploaded_at DESC, id)
), losers AS (
    UPDATE profile_assets s
       SET status = 'superseded', superseded_by_id = r.winner,
           superseded_at = clock_timestamp()
      FROM ranked r
     WHERE s.id = r.id AND r.rank > 1
    RETURNING s.id
)
SELECT count(*) FROM losers;

-- name: move_assets
UPDATE profile_assets SET profile_id = %(target_id)s
 WHERE tenant_id = %(tenant_id)s AND profile_id = %(source_id)s;

-- name: check_target_limits
-- The merged profile within the limits of any profile (migration 0012): the moves are
-- UPDATEs, which the insert triggers do not see.
SELECT ccv_check_field_limits(%(tenant_id)s, %(target_id)s),
       ccv_check_asset_limits(%(tenant_id)s, %(target_id)s);

-- name: move_identities
-- The target keeps its primary identity if it has one.
UPDATE channel_identities
   SET profile_id = %(target_id)s,
       is_primary = is_primary AND NOT EXISTS (
           SELECT 1 FROM channel_identities t
            WHERE t.profile_id = %(target_id)s AND t.is_primary)
 WHERE tenant_id = %(tenant_id)s AND profile_id = %(source_id)s;

-- name: merge_consents
-- For a consent type in both profiles the more recently updated answer wins.
WITH moved AS (
    DELETE FROM consents
     WHERE tenant_id = %(tenant_id)s AND profile_id = %(source_id)s
    RETURNING consent_type, granted, granted_at, revoked_at, source_session_id, updated_at
)
INSERT INTO consents AS c (tenant_id, profile_id, consent_type, granted, granted_at,
                           revoked_at, source_session_id, updated_at)
SELECT %(tenant_id)s, %(target_id)s, consent_type, granted, granted_at, revoked_at,
       source_session_id, updated_at
  FROM moved
ON CONFLICT (profile_id, consent_type, tenant_id) DO UPDATE SET
    granted = excluded.granted, granted_at = excluded.granted_at,
    revoked_at = excluded.revoked_at, source_session_id = excluded.source_session_id,
    updated_at = excluded.updated_at
 WHERE excluded.updated_at > c.updated_at;

-- name: retire_source_profile
-- The source becomes an alias of the target, and so do the source's own earlier aliases.
UPDATE customer_profiles
   SET merged_into_id = %(target_id)s, deleted_at = coalesce(deleted_at, clock_timestamp()),
       updated_at = clock_timestamp(), version = version + 1
 WHERE tenant_id = %(tenant_id)s AND (id = %(source_id)s OR merged_into_id = %(source_id)s)
RETURNING customer_id, version;

-- name: bump_target_profile
UPDATE customer_profiles SET updated_at = clock_timestamp(), version = version + 1
 WHERE tenant_id = %(tenant_id)s AND id = %(target_id)s
RETURNING customer_id, version;
