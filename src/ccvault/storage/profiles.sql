-- name: get_profile
-- The whole profile in one round trip, rendered as JSON by PostgreSQL: live fields and
-- assets, identities, consents and the status summary. An alias (a merged-away
-- customer_id) resolves to its target in the same query. No optional branches here: the
-- statement stays on one generic prepared plan. Here and below, `superseded_at IS NULL
-- AND deleted_at IS NULL` is the current-version predicate of the one-current indexes
-- (spelled so the planner can use them; migration 0007), and `status = 'active'` picks
-- the live versions among the current ones.
WITH target AS (
    SELECT coalesce(a.merged_into_id, a.id) AS id
      FROM customer_profiles a
     WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
)
SELECT json_build_object(
    'customer_id', p.customer_id,
    'created_at', p.created_at,
    'updated_at', p.updated_at,
    'verification_level', p.verification_level,
    'channel_identities', (
        SELECT coalesce(json_agg(json_build_object(
                   'channel', i.channel, 'channel_user_id', i.channel_user_id,
                   'verified', i.verified, 'primary', i.is_primary, 'created_at', i.created_at)
                   ORDER BY i.created_at, i.channel, i.channel_user_id), '[]')
          FROM channel_identities i
         WHERE i.tenant_id = p.tenant_id AND i.profile_id = p.id),
    'consents', (
        SELECT coalesce(json_agg(json_build_object(
                   'consent_type', c.consent_type, 'granted', c.granted,
                   'granted_at', c.granted_at, 'revoked_at', c.revoked_at,
                   'source_session_id', c.source_session_id, 'updated_at', c.updated_at)
                   ORDER BY c.consent_type), '[]')
          FROM consents c
         WHERE c.tenant_id = p.tenant_id AND c.profile_id = p.id),
    'fields', (
        SELECT coalesce(json_object_agg(f.name, ccv_field_doc(f)), '{}')
          FROM profile_fields f
         WHERE f.tenant_id = p.tenant_id AND f.profile_id = p.id
           AND f.superseded_at IS NULL AND f.deleted_at IS NULL AND f.status = 'active'
           AND (f.expires_at IS NULL OR f.expires_at > now())),
    -- An asset's analysis_field_ids as a subquery of this statement, not through
    -- ccv_analysis_field_ids(): a SQL function whose body holds a sub-SELECT is never
    -- inlined, so it was planned again on every read (for every asset's call site).
    'assets', (
        SELECT coalesce(json_agg(
                   ccv_asset_doc(s, (
                       SELECT json_agg(d.id ORDER BY d.collected_at) FROM profile_fields d
                        WHERE d.tenant_id = s.tenant_id AND d.source_uuid = s.id
                          AND d.status = 'active' AND d.deleted_at IS NULL
                          AND (d.expires_at IS NULL OR d.expires_at > now())))
                   ORDER BY s.name), '[]')
          FROM profile_assets s
         WHERE s.tenant_id = p.tenant_id AND s.profile_id = p.id
           AND s.superseded_at IS NULL AND s.deleted_at IS NULL AND s.status = 'active'
           AND (s.expires_at IS NULL OR s.expires_at > now())),
    -- Every status counted in one pass (no sort and grouping of the versions), in the
    -- model's order; ccv_effective_status spelled out: active past expires_at is expired.
    'field_status_summary', (
        SELECT json_build_object(
                   'active', count(*) FILTER (WHERE f.status = 'active'
                                              AND (f.expires_at IS NULL OR f.expires_at > now())),
                   'superseded', count(*) FILTER (WHERE f.status = 'superseded'),
                   'expired', count(*) FILTER (WHERE f.status = 'expired'
                                               OR (f.status = 'active' AND f.expires_at <= now())),
                   'orphaned', count(*) FILTER (WHERE f.status = 'orphaned'))
          FROM profile_fields f
         WHERE f.tenant_id = p.tenant_id AND f.profile_id = p.id
           AND f.deleted_at IS NULL)
)::text AS doc,
       p.version,
       p.customer_id <> %(customer_id)s AS via_alias,
       -- A cached copy must not outlive the first live item to expire (Unix ms).
       floor(extract(epoch FROM least(
           (SELECT min(f.expires_at) FROM profile_fields f
             WHERE f.tenant_id = p.tenant_id AND f.profile_id = p.id
               AND f.superseded_at IS NULL AND f.deleted_at IS NULL AND f.status = 'active'
               AND f.expires_at > now()),
           (SELECT min(s.expires_at) FROM profile_assets s
             WHERE s.tenant_id = p.tenant_id AND s.profile_id = p.id
               AND s.superseded_at IS NULL AND s.deleted_at IS NULL AND s.status = 'active'
               AND s.expires_at > now())))
        * 1000)::bigint AS expires_at_ms
  FROM target
  JOIN customer_profiles p ON p.id = target.id AND p.tenant_id = %(tenant_id)s;

-- name: profile_history
-- Every version of every field of the profile, by name, newest first (audit reads only).
SELECT coalesce(json_object_agg(name, versions), '{}')::text
  FROM (SELECT f.name, json_agg(ccv_field_doc(f) ORDER BY f.collected_at DESC, f.id) AS versions
          FROM customer_profiles a
          JOIN profile_fields f ON f.profile_id = coalesce(a.merged_into_id, a.id)
         WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
           AND f.tenant_id = %(tenant_id)s
         GROUP BY f.name) h;

-- name: get_profile_by_channel
-- The customer_id an identity belongs to; the caller then reads the profile as usual.
SELECT p.customer_id
  FROM channel_identities i
  JOIN customer_profiles p ON p.id = i.profile_id
 WHERE i.tenant_id = %(tenant_id)s AND i.channel = %(channel)s
   AND i.channel_user_id = %(channel_user_id)s;

-- name: lock_profile
-- Inside a write's transaction: lock the profile row (creating the profile if asked),
-- following an alias, and check an If-Match under the lock; see ccv_lock_profile in
-- migrations 0006 and 0010.
SELECT profile_id, customer_id, version
  FROM ccv_lock_profile(%(tenant_id)s, %(customer_id)s, %(touch)s, %(create)s,
                        %(if_versions)s::bigint[]);

-- name: set_verification_level
-- With the profile locked (and its version bumped). updated_at moves only when the level
-- changes: a repeated PATCH does not bring the profile to the top of the list.
UPDATE customer_profiles
   SET verification_level = %(level)s,
       updated_at = CASE WHEN verification_level = %(level)s THEN updated_at
                         ELSE clock_timestamp() END
 WHERE tenant_id = %(tenant_id)s AND id = %(profile_id)s;

-- name: create_profile
-- POST /v1/profiles: the inserted row is locked until commit. Nothing returned means the
-- id is taken (by a profile or an alias): a 409.
INSERT INTO customer_profiles (id, tenant_id, customer_id)
VALUES (%(id)s, %(tenant_id)s, %(customer_id)s)
ON CONFLICT (tenant_id, customer_id) DO NOTHING
RETURNING id;

-- name: lock_profile_by_id
UPDATE customer_profiles
   SET version = version + 1,
       updated_at = CASE WHEN %(touch)s THEN clock_timestamp() ELSE updated_at END
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s
RETURNING id, customer_id, merged_into_id, version;

-- name: touch_profile
UPDATE customer_profiles SET updated_at = clock_timestamp()
 WHERE tenant_id = %(tenant_id)s AND id = %(profile_id)s;

-- name: save_field
-- One call, one transaction: lock (and If-Match), source check, supersede, insert with
-- written_by (migrations 0006, 0010).
-- The casts pick the function's signature whatever types the driver sends. The document
-- comes as text, parsed once by pydantic (not by the driver's json.loads, then again).
SELECT doc::text, customer_id, version FROM ccv_save_field(
    p_tenant_id => %(tenant_id)s::uuid, p_customer_id => %(customer_id)s::text,
    p_id => %(id)s::uuid, p_name => %(name)s::text, p_value => %(value)s::jsonb,
    p_value_type => %(value_type)s::text, p_source => %(source)s::text,
    p_source_item_id => %(source_item_id)s::text,
    p_source_item_type => %(source_item_type)s::text,
    p_source_uuid => %(source_uuid)s::uuid, p_source_metadata => %(source_metadata)s::jsonb,
    p_source_session_id => %(source_session_id)s::text,
    p_source_scenario_id => %(source_scenario_id)s::text,
    p_source_step_id => %(source_step_id)s::text,
    p_confidence => %(confidence)s::double precision, p_verified => %(verified)s::boolean,
    p_verification_method => %(verification_method)s::text,
    p_verified_at => %(verified_at)s::timestamptz,
    p_requires_confirmation => %(requires_confirmation)s::boolean,
    p_expires_at => %(expires_at)s::timestamptz,
    p_retention_days => %(retention_days)s::integer,
    p_field_definition_id => %(field_definition_id)s::uuid,
    p_written_by_key_id => %(written_by_key_id)s::uuid,
    p_written_by_agent_id => %(written_by_agent_id)s::text,
    p_if_versions => %(if_versions)s::bigint[]);

-- name: get_field
-- Also the customer the profile belongs to (the audit entry's subject): an alias's
-- target's, looked up only for an alias.
SELECT ccv_field_doc(f) AS doc,
       CASE WHEN a.merged_into_id IS NULL THEN a.customer_id
            ELSE (SELECT t.customer_id FROM customer_profiles t WHERE t.id = a.merged_into_id)
       END AS owner
  FROM customer_profiles a
  JOIN profile_fields f ON f.profile_id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
   AND f.tenant_id = %(tenant_id)s AND f.name = %(name)s
   AND f.superseded_at IS NULL AND f.deleted_at IS NULL AND f.status = 'active'
   AND (f.expires_at IS NULL OR f.expires_at > now());

-- name: field_history
-- Every version, newest first; an unknown profile gives no row at all (the caller's 404).
SELECT p.id IS NOT NULL AS profile_exists,
       (SELECT coalesce(json_agg(ccv_field_doc(f) ORDER BY f.collected_at DESC, f.id), '[]')
          FROM profile_fields f
         WHERE f.tenant_id = %(tenant_id)s AND f.profile_id = p.id AND f.name = %(name)s)
       AS docs,
       p.customer_id AS owner
  FROM customer_profiles a
  JOIN customer_profiles p ON p.id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s;

-- name: soft_delete_field
-- Soft delete of the current version; its status stays as it was (for audit).
UPDATE profile_fields
   SET deleted_at = clock_timestamp(), updated_at = clock_timestamp()
 WHERE tenant_id = %(tenant_id)s AND profile_id = %(profile_id)s AND name = %(name)s
   AND superseded_at IS NULL AND deleted_at IS NULL
RETURNING id;

-- name: orphan_dependents
-- Items derived from the deleted one lose their source: active ones become `orphaned`,
-- every non-deleted one is flagged. Not transitive: an orphan still exists as a source.
-- Returns the profiles touched (any customer of the tenant) for bump_profiles.
WITH fields AS (
    UPDATE profile_fields
       SET status = CASE WHEN status = 'active' THEN 'orphaned' ELSE status END,
           is_orphaned = true, updated_at = clock_timestamp()
     WHERE tenant_id = %(tenant_id)s AND source_uuid = %(id)s AND deleted_at IS NULL
    RETURNING profile_id
), assets AS (
    UPDATE profile_assets
       SET status = CASE WHEN status = 'active' THEN 'orphaned' ELSE status END,
           is_orphaned = true
     WHERE tenant_id = %(tenant_id)s AND source_uuid = %(id)s AND deleted_at IS NULL
    RETURNING profile_id
)
SELECT profile_id FROM fields UNION SELECT profile_id FROM assets;

-- name: bump_profiles
-- After a delete commits: new versions for the other profiles it orphaned items in. Its
-- own short transaction, locking in id order: bumping them inside the delete would lock
-- a second profile while holding the first, and two such deletes could deadlock. (Orphan
-- detection bumps its profiles inside its window function: migration 0008.)
WITH locked AS (
    SELECT id FROM customer_profiles
     WHERE id = ANY(%(ids)s) AND tenant_id = %(tenant_id)s
     ORDER BY id
       FOR NO KEY UPDATE
)
UPDATE customer_profiles p
   SET version = p.version + 1, updated_at = clock_timestamp()
  FROM locked
 WHERE p.id = locked.id
RETURNING p.tenant_id, p.customer_id, p.version;

-- name: save_asset
-- Same rule as save_field: a same-name asset supersedes the current one.
SELECT doc, customer_id, version FROM ccv_save_asset(
    p_tenant_id => %(tenant_id)s::uuid, p_customer_id => %(customer_id)s::text,
    p_id => %(id)s::uuid, p_name => %(name)s::text, p_asset_type => %(asset_type)s::text,
    p_storage_provider => %(storage_provider)s::text,
    p_storage_path => %(storage_path)s::text, p_mime_type => %(mime_type)s::text,
    p_size_bytes => %(size_bytes)s::bigint, p_checksum => %(checksum)s::text,
    p_source_item_id => %(source_item_id)s::text,
    p_source_item_type => %(source_item_type)s::text,
    p_source_uuid => %(source_uuid)s::uuid,
    p_derived_from_tool => %(derived_from_tool)s::text,
    p_retention_policy => %(retention_policy)s::text,
    p_expires_at => %(expires_at)s::timestamptz,
    p_written_by_key_id => %(written_by_key_id)s::uuid,
    p_written_by_agent_id => %(written_by_agent_id)s::text,
    p_if_versions => %(if_versions)s::bigint[]);

-- name: list_assets
-- Two statements, not one with a flag, so each keeps a generic plan.
SELECT p.id IS NOT NULL AS profile_exists,
       (SELECT coalesce(json_agg(ccv_asset_doc(s, ccv_analysis_field_ids(s.tenant_id, s.id))
                                 ORDER BY s.name), '[]')
          FROM profile_assets s
         WHERE s.tenant_id = %(tenant_id)s AND s.profile_id = p.id
           AND s.superseded_at IS NULL AND s.deleted_at IS NULL AND s.status = 'active'
           AND (s.expires_at IS NULL OR s.expires_at > now())) AS docs
  FROM customer_profiles a
  JOIN customer_profiles p ON p.id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s;

-- name: list_asset_history
SELECT p.id IS NOT NULL AS profile_exists,
       (SELECT coalesce(json_agg(ccv_asset_doc(s, ccv_analysis_field_ids(s.tenant_id, s.id))
                                 ORDER BY s.name, s.uploaded_at DESC), '[]')
          FROM profile_assets s
         WHERE s.tenant_id = %(tenant_id)s AND s.profile_id = p.id) AS docs
  FROM customer_profiles a
  JOIN customer_profiles p ON p.id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s;

-- name: get_asset
-- Deleted assets are still returned (audit); the caller sees deleted_at.
SELECT ccv_asset_doc(s, ccv_analysis_field_ids(s.tenant_id, s.id)) AS doc, s.profile_id
  FROM profile_assets s
 WHERE s.tenant_id = %(tenant_id)s AND s.id = %(id)s;

-- name: soft_delete_asset
UPDATE profile_assets
   SET deleted_at = clock_timestamp()
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL
RETURNING id, profile_id;

-- name: link_identity
-- Re-linking an identity to its own profile returns it unchanged (the no-op update makes
-- RETURNING give the row); one owned by another profile returns nothing: a conflict.
-- A new identity starts as non-primary; make_primary_identity promotes it.
INSERT INTO channel_identities AS i
       (id, tenant_id, profile_id, channel, channel_user_id, verified, is_primary)
VALUES (%(id)s, %(tenant_id)s, %(profile_id)s, %(channel)s, %(channel_user_id)s,
        %(verified)s, false)
ON CONFLICT (tenant_id, channel, channel_user_id) DO UPDATE SET channel = i.channel
 WHERE i.profile_id = excluded.profile_id
RETURNING i.channel, i.channel_user_id, i.verified, i.is_primary AS primary, i.created_at,
          i.id = %(id)s AS created;

-- name: make_primary_identity
-- One primary identity per profile (a unique index): a new primary demotes the old one
-- first (the count(*) makes the UPDATE of the old row finish before the new one).
WITH demoted AS (
    UPDATE channel_identities SET is_primary = false
     WHERE tenant_id = %(tenant_id)s AND profile_id = %(profile_id)s AND is_primary
    RETURNING id
)
UPDATE channel_identities i SET is_primary = true
  FROM (SELECT count(*) FROM demoted) AS wait_for_demotion
 WHERE i.tenant_id = %(tenant_id)s AND i.id = %(id)s
RETURNING i.is_primary;

-- name: put_consent
-- granted_at is when consent was (last) given, revoked_at when it was withdrawn; a
-- repeated answer keeps the original timestamp.
INSERT INTO consents AS c (tenant_id, profile_id, consent_type, granted, granted_at,
                           revoked_at, source_session_id, updated_at)
VALUES (%(tenant_id)s, %(profile_id)s, %(consent_type)s, %(granted)s,
        CASE WHEN %(granted)s THEN clock_timestamp() END,
        CASE WHEN NOT %(granted)s THEN clock_timestamp() END,
        %(source_session_id)s, clock_timestamp())
ON CONFLICT (profile_id, consent_type, tenant_id) DO UPDATE SET
    granted = excluded.granted,
    granted_at = CASE WHEN excluded.granted AND NOT c.granted THEN excluded.granted_at
                      ELSE c.granted_at END,
    revoked_at = CASE WHEN excluded.granted THEN NULL
                      WHEN c.granted THEN excluded.revoked_at
                      ELSE c.revoked_at END,
    source_session_id = excluded.source_session_id,
    updated_at = excluded.updated_at
RETURNING consent_type, granted, granted_at, revoked_at, source_session_id, updated_at;
