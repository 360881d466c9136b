-- name: walk
-- Walk source links across fields and assets in one recursive query, up (ancestors:
-- the item a chain member derives from) or down (descendants: items deriving from a
-- chain member). {field_step} and {asset_step} say how a chain member `c` finds the next
-- field `f` and asset `s`; lineage.py fills them in per direction. Going up, the
-- member's source_item_type names the one table to look in, so the other branch is
-- skipped outright. The walk goes one level past max_depth to tell `truncated`; the CYCLE
-- clause stops at a repeated item and marks it. The answer (item document, chain, flags)
-- comes back as one JSON document, with the id of the customer owning the item.
WITH RECURSIVE chain (depth, item_id, item_type, name, status, deleted_at,
                      source_item_id, source_item_type, source_uuid) AS (
    SELECT 0, id, item_type, name, status, deleted_at, source_item_id, source_item_type,
           source_uuid
      FROM lineage_items
     WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    UNION ALL
    SELECT c.depth + 1, n.*
      FROM chain c
     CROSS JOIN LATERAL (
        SELECT f.id, 'profile_field'::text, f.name, ccv_effective_status(f.status, f.expires_at),
               f.deleted_at, f.source_item_id, f.source_item_type, f.source_uuid
          FROM profile_fields f
         WHERE f.tenant_id = %(tenant_id)s AND {field_step}
        UNION ALL
        SELECT s.id, 'profile_asset'::text, s.name, ccv_effective_status(s.status, s.expires_at),
               s.deleted_at, s.source_item_id, s.source_item_type, s.source_uuid
          FROM profile_assets s
         WHERE s.tenant_id = %(tenant_id)s AND {asset_step}) n
     WHERE c.depth <= %(max_depth)s
) CYCLE item_id SET is_cycle USING path
SELECT count(*) > 0 AS found, json_build_object(
    -- The item by its id, not out of the chain: no detour through text.
    'item', coalesce(
        (SELECT ccv_field_doc(f) FROM profile_fields f
          WHERE f.tenant_id = %(tenant_id)s AND f.id = %(id)s),
        -- analysis_field_ids inline, as in get_profile (profiles.sql says why).
        (SELECT ccv_asset_doc(s, (
                    SELECT json_agg(d.id ORDER BY d.collected_at) FROM profile_fields d
                     WHERE d.tenant_id = s.tenant_id AND d.source_uuid = s.id
                       AND d.status = 'active' AND d.deleted_at IS NULL
                       AND (d.expires_at IS NULL OR d.expires_at > now())))
           FROM profile_assets s WHERE s.tenant_id = %(tenant_id)s AND s.id = %(id)s)),
    -- row_to_json of a row with exactly the entry's columns: cheaper than naming each key.
    'chain', coalesce(json_agg(e ORDER BY e.depth, e.item_id)
                      FILTER (WHERE NOT is_cycle AND e.depth <= %(max_depth)s), '[]'),
    'truncated', coalesce(bool_or(NOT is_cycle AND e.depth > %(max_depth)s), false),
    'cycle_detected', coalesce(bool_or(is_cycle), false))::text,
    -- The customer owning the item (the read's audit subject): two primary-key probes,
    -- evaluated once for the statement.
    (SELECT p.customer_id FROM customer_profiles p
      WHERE p.id = coalesce(
          (SELECT f.profile_id FROM profile_fields f
            WHERE f.tenant_id = %(tenant_id)s AND f.id = %(id)s),
          (SELECT s.profile_id FROM profile_assets s
            WHERE s.tenant_id = %(tenant_id)s AND s.id = %(id)s))) AS owner
  FROM chain c,
       LATERAL (SELECT c.depth, c.item_id, c.item_type, c.name, c.status, c.deleted_at,
                       c.source_item_id) e;
