-- name: profile_as_of
-- A profile as a read at %(as_of)s (T) would have answered it, from what is stored now
-- (migrations 0019 and 0023 have what an as-of read needs), in one round trip. No row: the id named
-- no profile at T (never, not yet, or erased since: erased rows are gone).
--
-- `named` follows the id along the merges made at or before T: at T an alias named the
-- profile it had been merged into then, and a profile merged away later was still its own.
-- `members` is that profile and every profile merged into it at or before T: their items
-- are the ones it held at T. Every merge moved them on to today's live target (`holder`),
-- with their first profile in origin_profile_id. A version counts from its collected_at
-- (uploaded_at) on; deleted_at, superseded_at, orphaned_at and expires_at at or before T
-- give its state at T (ccv_asof_status). With %(history)s the answer also carries each
-- field's versions at T, newest first (deleted ones included, as in the current history).
WITH RECURSIVE requested AS (
    SELECT a.id
      FROM customer_profiles a
     WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
       AND a.created_at <= %(as_of)s
), named (id, hops) AS (
    SELECT id, 0 FROM requested
    UNION ALL
    SELECT m.target_profile_id, n.hops + 1
      FROM named n
      JOIN profile_merges m ON m.source_profile_id = n.id AND m.tenant_id = %(tenant_id)s
     WHERE m.merged_at <= %(as_of)s
), owner AS (
    SELECT p.*
      FROM (SELECT id FROM named ORDER BY hops DESC LIMIT 1) n
      JOIN customer_profiles p ON p.id = n.id AND p.tenant_id = %(tenant_id)s
), members (id, merged_at) AS (
    SELECT id, NULL::timestamptz FROM owner
    UNION ALL
    SELECT m.source_profile_id, m.merged_at
      FROM members s
      JOIN profile_merges m ON m.target_profile_id = s.id AND m.tenant_id = %(tenant_id)s
     WHERE m.merged_at <= %(as_of)s
), holder AS (
    SELECT coalesce(o.merged_into_id, o.id) AS id FROM owner o
), field_versions AS (
    SELECT f AS row, f.name, f.collected_at, f.deleted_at <= %(as_of)s AS deleted,
           ccv_asof_status(f.status, f.superseded_at, f.orphaned_at, f.expires_at,
                           %(as_of)s) AS status,
           greatest(f.collected_at,
                    CASE WHEN f.superseded_at <= %(as_of)s THEN f.superseded_at END,
                    CASE WHEN f.deleted_at <= %(as_of)s THEN f.deleted_at END,
                    CASE WHEN f.orphaned_at <= %(as_of)s THEN f.orphaned_at END) AS changed_at
      FROM holder h
      JOIN profile_fields f ON f.profile_id = h.id AND f.tenant_id = %(tenant_id)s
     WHERE f.collected_at <= %(as_of)s
       AND coalesce(f.origin_profile_id, f.profile_id) IN (SELECT id FROM members)
), asset_versions AS (
    SELECT s AS row, s.name, s.deleted_at <= %(as_of)s AS deleted,
           ccv_asof_status(s.status, s.superseded_at, s.orphaned_at, s.expires_at,
                           %(as_of)s) AS status,
           greatest(s.uploaded_at,
                    CASE WHEN s.superseded_at <= %(as_of)s THEN s.superseded_at END,
                    CASE WHEN s.deleted_at <= %(as_of)s THEN s.deleted_at END,
                    CASE WHEN s.orphaned_at <= %(as_of)s THEN s.orphaned_at END) AS changed_at
      FROM holder h
      JOIN profile_assets s ON s.profile_id = h.id AND s.tenant_id = %(tenant_id)s
     WHERE s.uploaded_at <= %(as_of)s
       AND coalesce(s.origin_profile_id, s.profile_id) IN (SELECT id FROM members)
), identities AS (
    SELECT i.*
      FROM holder h
      JOIN channel_identities i ON i.profile_id = h.id AND i.tenant_id = %(tenant_id)s
     WHERE i.created_at <= %(as_of)s
       AND coalesce(i.origin_profile_id, i.profile_id) IN (SELECT id FROM members)
), consents_then AS (
    -- The owner's last answer of each kind at or before T (a merge's carried-over
    -- answers are recorded on the target when it made them).
    SELECT DISTINCT ON (c.consent_type) c.*
      FROM owner o
      JOIN consent_history c ON c.profile_id = o.id AND c.tenant_id = %(tenant_id)s
     WHERE c.recorded_at <= %(as_of)s
     ORDER BY c.consent_type, c.seq DESC
)
SELECT json_build_object(
    'customer_id', o.customer_id,
    'created_at', o.created_at,
    -- When anything in it last changed, as far as T goes.
    'updated_at', CASE WHEN o.updated_at <= %(as_of)s THEN o.updated_at ELSE greatest(
        o.created_at,
        (SELECT max(changed_at) FROM field_versions),
        (SELECT max(changed_at) FROM asset_versions),
        (SELECT max(created_at) FROM identities),
        (SELECT max(recorded_at) FROM consents_then),
        (SELECT max(merged_at) FROM members)) END,
    'verification_level', o.verification_level,
    'channel_identities', (
        SELECT coalesce(json_agg(json_build_object(
                   'channel', i.channel, 'channel_user_id', i.channel_user_id,
                   'verified', i.verified, 'primary', i.is_primary, 'created_at', i.created_at)
                   ORDER BY i.created_at, i.channel, i.channel_user_id), '[]')
          FROM identities i),
    'consents', (
        SELECT coalesce(json_agg(json_build_object(
                   'consent_type', c.consent_type, 'granted', c.granted,
                   'granted_at', c.granted_at, 'revoked_at', c.revoked_at,
                   'source_session_id', c.source_session_id, 'updated_at', c.updated_at)
                   ORDER BY c.consent_type), '[]')
          FROM consents_then c),
    -- Ordered so that, should two versions of a name both be live at T (an import can
    -- date a version before the one it superseded), the later collected one is the value.
    'fields', (
        SELECT coalesce(json_object_agg(v.name, ccv_asof_field_doc(v.row, %(as_of)s)
                                        ORDER BY v.collected_at), '{}')
          FROM field_versions v
         WHERE v.status = 'active' AND v.deleted IS NOT TRUE),
    'assets', (
        SELECT coalesce(json_agg(
                   ccv_asof_asset_doc(v.row, %(as_of)s, (
                       -- The fields derived from it that were live at T.
                       SELECT json_agg(f.id ORDER BY f.collected_at)
                         FROM profile_fields f
                        WHERE f.tenant_id = %(tenant_id)s AND f.source_uuid = (v.row).id
                          AND f.collected_at <= %(as_of)s
                          AND (f.deleted_at IS NULL OR f.deleted_at > %(as_of)s)
                          AND ccv_asof_status(f.status, f.superseded_at, f.orphaned_at,
                                              f.expires_at, %(as_of)s) = 'active'))
                   ORDER BY v.name), '[]')
          FROM asset_versions v
         WHERE v.status = 'active' AND v.deleted IS NOT TRUE),
    'field_status_summary', (
        SELECT coalesce(json_object_agg(st, n), '{}') FROM (
            SELECT v.status AS st, count(*) AS n
              FROM field_versions v
             WHERE v.deleted IS NOT TRUE
             GROUP BY 1) counts),
    'field_history', CASE WHEN %(history)s THEN (
        SELECT coalesce(json_object_agg(name, versions), '{}') FROM (
            SELECT v.name,
                   json_agg(ccv_asof_field_doc(v.row, %(as_of)s)
                            ORDER BY v.collected_at DESC, (v.row).id) AS versions
              FROM field_versions v
             GROUP BY v.name) h) END
)::text AS doc
  FROM owner o;
