-- name: create_staging
-- One batch's field versions, COPYed in, then moved into profile_fields with set-based
-- statements (skip unchanged, supersede, insert). A temporary table is not WAL-logged and
-- is dropped at commit: nothing of it outlives the batch's transaction.
CREATE TEMPORARY TABLE ccv_import_fields (
    line integer NOT NULL,
    profile_id uuid NOT NULL,
    -- Minted here rather than in Python: os.urandom per row was a tenth of the
    -- importer's own CPU, and that process is the import's bottleneck.
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    value jsonb NOT NULL,
    value_type text NOT NULL,
    source text NOT NULL,
    source_item_id text,
    source_item_type text,
    source_metadata jsonb NOT NULL,
    source_session_id text,
    source_scenario_id text,
    source_step_id text,
    confidence double precision NOT NULL,
    verified boolean NOT NULL,
    verification_method text,
    verified_at timestamptz,
    requires_confirmation boolean NOT NULL,
    collected_at timestamptz,
    expires_at timestamptz,
    retention_days integer,
    field_definition_id uuid,
    written_by_agent_id text
) ON COMMIT DROP;

-- name: copy_staging
COPY ccv_import_fields (
    line, profile_id, name, value, value_type, source, source_item_id, source_item_type,
    source_metadata, source_session_id, source_scenario_id, source_step_id, confidence,
    verified, verification_method, verified_at, requires_confirmation, collected_at,
    expires_at, retention_days, field_definition_id, written_by_agent_id
) FROM STDIN;

-- name: analyze_staging
ANALYZE ccv_import_fields;

-- name: create_profiles
-- Profiles the batch names that do not exist yet. A profile created here is locked by
-- this transaction until it commits (a concurrent creator waits on the unique index), has
-- no cache entry to invalidate, and needs no version bump.
INSERT INTO customer_profiles (id, tenant_id, customer_id)
SELECT gen_random_uuid(), %(tenant_id)s, c
  FROM unnest(%(customer_ids)s::text[]) AS c
 ORDER BY c
ON CONFLICT (tenant_id, customer_id) DO NOTHING
RETURNING customer_id, id;

-- name: lock_profiles
-- The existing profiles of the batch, aliases followed to their targets (as
-- ccv_lock_profile does), locked in id order so that two imports never deadlock each
-- other. merged_into_id is read after the lock: a merge that retired a target while we
-- waited makes the batch start over. The target's customer_id is the one its audit
-- entries are filed under (a line addressed to an alias writes to the target).
WITH wanted AS (
    SELECT a.customer_id AS requested, coalesce(a.merged_into_id, a.id) AS profile_id
      FROM customer_profiles a
     WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = ANY(%(customer_ids)s::text[])
), locked AS (
    SELECT p.id, p.merged_into_id, p.customer_id
      FROM customer_profiles p
     WHERE p.tenant_id = %(tenant_id)s AND p.id IN (SELECT profile_id FROM wanted)
     ORDER BY p.id
       FOR UPDATE
)
SELECT w.requested, l.id, l.merged_into_id, l.customer_id
  FROM wanted w JOIN locked l ON l.id = w.profile_id;

-- name: clock
SELECT clock_timestamp();

-- name: skip_unchanged
-- A field whose current version already says the same thing (value, type and
-- provenance; collected_at aside) gets no new version: importing a file twice writes
-- nothing the second time. An expires_at the line leaves to a definition's retention
-- compares equal while the current version has not expired (after that, the import
-- renews it).
DELETE FROM ccv_import_fields n
 USING profile_fields f
 WHERE f.tenant_id = %(tenant_id)s AND f.profile_id = n.profile_id AND f.name = n.name
   AND f.status = 'active' AND f.deleted_at IS NULL
   AND (f.value, f.value_type, f.source, f.source_metadata, f.confidence, f.verified,
        f.verification_method, f.requires_confirmation, f.source_item_id,
        f.source_item_type, f.source_session_id, f.source_scenario_id, f.source_step_id,
        f.field_definition_id)
       IS NOT DISTINCT FROM
       (n.value, n.value_type, n.source, n.source_metadata, n.confidence, n.verified,
        n.verification_method, n.requires_confirmation, n.source_item_id,
        n.source_item_type, n.source_session_id, n.source_scenario_id, n.source_step_id,
        n.field_definition_id)
   AND CASE WHEN n.expires_at IS NULL AND n.retention_days IS NOT NULL
            THEN f.expires_at IS NULL OR f.expires_at > %(ts)s
            ELSE f.expires_at IS NOT DISTINCT FROM n.expires_at END
   AND (NOT n.verified OR n.verified_at IS NULL OR f.verified_at = n.verified_at);

-- name: supersede
-- As ccv_save_field (migrations 0006, 0010): whatever is current for the name (active,
-- expired or orphaned) becomes superseded by the new version.
UPDATE profile_fields f
   SET status = 'superseded', superseded_by_id = n.id, superseded_at = %(ts)s,
       updated_at = %(ts)s
  FROM ccv_import_fields n
 WHERE f.tenant_id = %(tenant_id)s AND f.profile_id = n.profile_id AND f.name = n.name
   AND f.superseded_at IS NULL AND f.deleted_at IS NULL;

-- name: insert_fields
-- One statement: the profile-limit trigger (migration 0012) checks each profile once;
-- the CHECKs hold the timestamp bounds; the one-active index holds the invariant.
INSERT INTO profile_fields (
    id, tenant_id, profile_id, name, value, value_type, status, source, source_item_id,
    source_item_type, source_metadata, source_session_id, source_scenario_id,
    source_step_id, confidence, verified, verification_method, verified_at,
    requires_confirmation, collected_at, updated_at, expires_at, field_definition_id,
    written_by_key_id, written_by_agent_id)
SELECT n.id, %(tenant_id)s, n.profile_id, n.name, n.value, n.value_type, 'active', n.source,
       n.source_item_id, n.source_item_type, n.source_metadata, n.source_session_id,
       n.source_scenario_id, n.source_step_id, n.confidence, n.verified,
       n.verification_method,
       CASE WHEN n.verified THEN coalesce(n.verified_at, %(ts)s) END,
       n.requires_confirmation, coalesce(n.collected_at, %(ts)s), %(ts)s,
       coalesce(n.expires_at,
                coalesce(n.collected_at, %(ts)s) + make_interval(days => n.retention_days)),
       n.field_definition_id, %(key_id)s, n.written_by_agent_id
  FROM ccv_import_fields n
 ORDER BY n.profile_id, n.name
RETURNING profile_id;

-- name: link_identities
-- As link_identity (profiles.sql), for a batch: new handles are linked, handles already on
-- the same profile are left as they are; a handle of another profile is reported by
-- identity_conflicts. Returns the profiles that gained one.
INSERT INTO channel_identities AS i
       (id, tenant_id, profile_id, channel, channel_user_id, verified, is_primary)
SELECT gen_random_uuid(), %(tenant_id)s, n.profile_id, n.channel, n.channel_user_id,
       n.verified, false
  FROM unnest(%(profile_ids)s::uuid[], %(channels)s::text[], %(user_ids)s::text[],
              %(verified)s::boolean[]) AS n (profile_id, channel, channel_user_id, verified)
ON CONFLICT (tenant_id, channel, channel_user_id) DO NOTHING
RETURNING i.profile_id, i.id, i.channel, i.channel_user_id;

-- name: identity_conflicts
SELECT n.line, n.channel, n.channel_user_id
  FROM unnest(%(lines)s::integer[], %(profile_ids)s::uuid[], %(channels)s::text[],
              %(user_ids)s::text[]) AS n (line, profile_id, channel, channel_user_id)
  JOIN channel_identities c
    ON c.tenant_id = %(tenant_id)s AND c.channel = n.channel
   AND c.channel_user_id = n.channel_user_id
 WHERE c.profile_id <> n.profile_id;

-- name: make_primary_identities
-- As make_primary_identity (profiles.sql): a new primary demotes the profile's old one.
WITH demoted AS (
    UPDATE channel_identities SET is_primary = false
     WHERE tenant_id = %(tenant_id)s AND profile_id = ANY(%(profile_ids)s::uuid[])
       AND is_primary
    RETURNING id
)
UPDATE channel_identities i SET is_primary = true
  FROM (SELECT count(*) FROM demoted) AS wait_for_demotion
 WHERE i.tenant_id = %(tenant_id)s AND i.id = ANY(%(ids)s::uuid[]);

-- name: put_consents
-- As put_consent (profiles.sql), for a batch; an answer equal to the stored one changes
-- nothing (so a second import of a file leaves consents as they were). Returns the
-- profiles whose consents changed.
INSERT INTO consents AS c (tenant_id, profile_id, consent_type, granted, granted_at,
                           revoked_at, source_session_id, updated_at)
SELECT %(tenant_id)s, n.profile_id, n.consent_type, n.granted,
       CASE WHEN n.granted THEN %(ts)s END, CASE WHEN NOT n.granted THEN %(ts)s END,
       n.source_session_id, %(ts)s
  FROM unnest(%(profile_ids)s::uuid[], %(types)s::text[], %(granted)s::boolean[],
              %(sessions)s::text[]) AS n (profile_id, consent_type, granted, source_session_id)
ON CONFLICT (profile_id, consent_type, tenant_id) DO UPDATE SET
    granted = excluded.granted,
    granted_at = CASE WHEN excluded.granted AND NOT c.granted THEN excluded.granted_at
                      ELSE c.granted_at END,
    revoked_at = CASE WHEN excluded.granted THEN NULL
                      WHEN c.granted THEN excluded.revoked_at
                      ELSE c.revoked_at END,
    source_session_id = excluded.source_session_id,
    updated_at = excluded.updated_at
 WHERE c.granted IS DISTINCT FROM excluded.granted
    OR c.source_session_id IS DISTINCT FROM excluded.source_session_id
RETURNING c.profile_id;

-- name: bump_profiles
-- The existing profiles this batch changed: a new version (the cache's rule 1) and
-- updated_at, in one update per profile.
UPDATE customer_profiles
   SET version = version + 1, updated_at = %(ts)s
 WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s::uuid[])
RETURNING tenant_id, customer_id, version;

-- name: export_profiles
-- Every live profile of a tenant (not merged away) as an import line: current field
-- versions in their object form, identities, consents. Links to vault items are left out
-- (ids are minted per vault); null attributes are left out to keep lines short (never
-- inside a value: jsonb_strip_nulls is applied to the attributes only).
SELECT (jsonb_build_object('customer_id', p.customer_id, 'fields', coalesce(f.doc, '{}'))
        || CASE WHEN i.doc IS NOT NULL THEN jsonb_build_object('channel_identities', i.doc)
                ELSE '{}' END
        || CASE WHEN c.doc IS NOT NULL THEN jsonb_build_object('consents', c.doc)
                ELSE '{}' END)::text
  FROM customer_profiles p
  LEFT JOIN LATERAL (
      SELECT jsonb_object_agg(f.name, jsonb_build_object('value', f.value) || jsonb_strip_nulls(
                 jsonb_build_object(
                     'value_type', f.value_type, 'source', f.source,
                     'confidence', f.confidence, 'verified', f.verified,
                     'verification_method', f.verification_method,
                     'verified_at', f.verified_at,
                     'requires_confirmation', nullif(f.requires_confirmation, false),
                     'collected_at', f.collected_at, 'expires_at', f.expires_at,
                     'source_metadata', nullif(f.source_metadata, '{}'::jsonb),
                     'source_session_id', f.source_session_id,
                     'source_scenario_id', f.source_scenario_id,
                     'source_step_id', f.source_step_id,
                     'source_item_id', CASE WHEN f.source_uuid IS NULL THEN f.source_item_id END,
                     'source_item_type',
                         CASE WHEN f.source_uuid IS NULL THEN f.source_item_type END)))
        FROM profile_fields f
       WHERE f.tenant_id = p.tenant_id AND f.profile_id = p.id
         AND f.status = 'active' AND f.deleted_at IS NULL
  ) f (doc) ON true
  LEFT JOIN LATERAL (
      SELECT jsonb_agg(jsonb_build_object(
                 'channel', i.channel, 'channel_user_id', i.channel_user_id,
                 'verified', i.verified, 'primary', i.is_primary)
                 ORDER BY i.channel, i.channel_user_id)
        FROM channel_identities i
       WHERE i.tenant_id = p.tenant_id AND i.profile_id = p.id
  ) i (doc) ON true
  LEFT JOIN LATERAL (
      SELECT jsonb_object_agg(c.consent_type, jsonb_strip_nulls(jsonb_build_object(
                 'granted', c.granted, 'source_session_id', c.source_session_id)))
        FROM consents c
       WHERE c.tenant_id = p.tenant_id AND c.profile_id = p.id
  ) c (doc) ON true
 WHERE p.tenant_id = %(tenant_id)s AND p.deleted_at IS NULL
 ORDER BY p.customer_id COLLATE "C";

-- name: count_profiles
SELECT count(*) FROM customer_profiles WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL;

-- name: audit_fields
-- One field.write audit entry per version the batch inserted (the staging table holds
-- exactly those after skip_unchanged), in the batch's transaction: set-based, as the
-- write itself. The subject hashes come from the service (HMAC under the tenant's secret).
INSERT INTO audit_pending (tenant_id, actor, action, subject_hash, target)
SELECT %(tenant_id)s, %(actor)s, 'field.write', s.subject, n.name
  FROM ccv_import_fields n
  JOIN unnest(%(profile_ids)s::uuid[], %(subjects)s::text[]) s(profile_id, subject)
    ON s.profile_id = n.profile_id;
