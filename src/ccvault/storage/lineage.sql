-- name: walk
-- Walk source links across fields and assets in one recursive query, up (ancestors:
-- the item a chain member derives from) or down (descendants: items deriving from a
-- chain member); {next} is that join condition, filled in by lineage.py. The walk goes one
-- level past max_depth to tell `truncated`; the CYCLE clause stops at a repeated item and
-- marks it. The answer (item document, chain, flags) comes back as one JSON document.
WITH RECURSIVE chain (depth, item_id, item_type, name, status, deleted_at,
                      source_item_id, source_uuid) AS (
    SELECT 0, id, item_type, name, status, deleted_at, source_item_id, source_uuid
      FROM lineage_items
     WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    UNION ALL
    SELECT c.depth + 1, i.id, i.item_type, i.name, i.status, i.deleted_at,
           i.source_item_id, i.source_uuid
      FROM chain c
      JOIN lineage_items i ON i.tenant_id = %(tenant_id)s AND {next}
     WHERE c.depth <= %(max_depth)s
) CYCLE item_id SET is_cycle USING path
SELECT count(*) > 0 AS found, json_build_object(
    'item', max(CASE WHEN depth > 0 THEN NULL
                     WHEN item_type = 'profile_field' THEN
                         (SELECT ccv_field_doc(f)::text FROM profile_fields f
                           WHERE f.id = item_id)
                     ELSE (SELECT ccv_asset_doc(s, ccv_analysis_field_ids(s.tenant_id, s.id))::text
                             FROM profile_assets s WHERE s.id = item_id) END)::json,
    'chain', coalesce(json_agg(json_build_object(
                 'depth', depth, 'item_id', item_id, 'item_type', item_type, 'name', name,
                 'status', status, 'deleted_at', deleted_at, 'source_item_id', source_item_id)
                 ORDER BY depth, item_id)
                 FILTER (WHERE NOT is_cycle AND depth <= %(max_depth)s), '[]'),
    'truncated', coalesce(bool_or(NOT is_cycle AND depth > %(max_depth)s), false),
    'cycle_detected', coalesce(bool_or(is_cycle), false))::text
  FROM chain;
