-- name: field_versions
-- One page of every version of every field of a profile (aliases followed), by name,
-- newest first within a name: the export streams them page by page, keyset-paginated
-- on (name, collected_at DESC, id) along profile_fields_history_idx, so no page costs
-- more than its rows and no transaction stays open while the client reads.
SELECT f.name, f.collected_at, f.id, ccv_field_doc(f)::text
  FROM customer_profiles a
  JOIN profile_fields f ON f.profile_id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
   AND f.tenant_id = %(tenant_id)s
   AND (%(after_name)s::text IS NULL
        OR f.name > %(after_name)s::text
        OR (f.name = %(after_name)s::text
            AND (f.collected_at < %(after_at)s::timestamptz
                 OR (f.collected_at = %(after_at)s::timestamptz AND f.id > %(after_id)s::uuid))))
 ORDER BY f.name, f.collected_at DESC, f.id
 LIMIT %(batch)s;

-- name: definition_uses
-- Each field name of a profile (aliases followed) with each definition one of its
-- versions was written under: what a read for a purpose decides on, without the values.
SELECT DISTINCT f.name, f.field_definition_id
  FROM customer_profiles a
  JOIN profile_fields f ON f.profile_id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
   AND f.tenant_id = %(tenant_id)s AND f.field_definition_id IS NOT NULL;

-- name: asset_versions
-- The same for assets: every version, by name, newest first.
SELECT s.name, s.uploaded_at, s.id,
       ccv_asset_doc(s, ccv_analysis_field_ids(s.tenant_id, s.id))::text
  FROM customer_profiles a
  JOIN profile_assets s ON s.profile_id = coalesce(a.merged_into_id, a.id)
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
   AND s.tenant_id = %(tenant_id)s
   AND (%(after_name)s::text IS NULL
        OR s.name > %(after_name)s::text
        OR (s.name = %(after_name)s::text
            AND (s.uploaded_at < %(after_at)s::timestamptz
                 OR (s.uploaded_at = %(after_at)s::timestamptz AND s.id > %(after_id)s::uuid))))
 ORDER BY s.name, s.uploaded_at DESC, s.id
 LIMIT %(batch)s;

-- name: consent_history
-- Every consent answer kept for the profile (aliases followed) and for the profiles merged
-- into it (migration 0019's consent_history), oldest first, as one JSON array.
SELECT coalesce(json_agg(json_build_object(
           'consent_type', h.consent_type, 'granted', h.granted, 'granted_at', h.granted_at,
           'revoked_at', h.revoked_at, 'source_session_id', h.source_session_id,
           'updated_at', h.updated_at, 'recorded_at', h.recorded_at)
           ORDER BY h.recorded_at, h.seq), '[]')::text
  FROM customer_profiles a
  JOIN customer_profiles m
    ON m.tenant_id = a.tenant_id
   AND coalesce(a.merged_into_id, a.id) IN (m.id, m.merged_into_id)
  JOIN consent_history h ON h.profile_id = m.id AND h.tenant_id = m.tenant_id
 WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s;
