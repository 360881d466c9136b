-- name: ancestors
-- Walk source links upwards across fields and assets in one recursive query. The walk
-- goes one level past max_depth so the caller can tell `truncated`; the CYCLE clause stops
-- at a repeated item and marks it. The full item document rides on the depth-0 row.
WITH RECURSIVE chain (depth, item_id, item_type, name, status, deleted_at,
                      source_item_id, next_id) AS (
    SELECT 0, id, item_type, name, status, deleted_at, source_item_id, source_uuid
      FROM lineage_items
     WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    UNION ALL
    SELECT c.depth + 1, i.id, i.item_type, i.name, i.status, i.deleted_at,
           i.source_item_id, i.source_uuid
      FROM chain c
      JOIN lineage_items i ON i.tenant_id = %(tenant_id)s AND i.id = c.next_id
     WHERE c.depth <= %(max_depth)s
) CYCLE item_id SET is_cycle USING path
SELECT depth, item_id, item_type, name, status, deleted_at, source_item_id, is_cycle,
       CASE WHEN depth > 0 THEN NULL
            WHEN item_type = 'profile_field' THEN
                (SELECT ccv_field_doc(f) FROM profile_fields f WHERE f.id = item_id)
            ELSE (SELECT ccv_asset_doc(s, ccv_analysis_field_ids(s.tenant_id, s.id))
                    FROM profile_assets s WHERE s.id = item_id) END AS doc
  FROM chain
 ORDER BY depth, item_id;

-- name: descendants
-- The same walk downwards: items whose source is an item already in the chain.
WITH RECURSIVE chain (depth, item_id, item_type, name, status, deleted_at,
                      source_item_id) AS (
    SELECT 0, id, item_type, name, status, deleted_at, source_item_id
      FROM lineage_items
     WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    UNION ALL
    SELECT c.depth + 1, i.id, i.item_type, i.name, i.status, i.deleted_at, i.source_item_id
      FROM chain c
      JOIN lineage_items i ON i.tenant_id = %(tenant_id)s AND i.source_uuid = c.item_id
     WHERE c.depth <= %(max_depth)s
) CYCLE item_id SET is_cycle USING path
SELECT depth, item_id, item_type, name, status, deleted_at, source_item_id, is_cycle,
       CASE WHEN depth > 0 THEN NULL
            WHEN item_type = 'profile_field' THEN
                (SELECT ccv_field_doc(f) FROM profile_fields f WHERE f.id = item_id)
            ELSE (SELECT ccv_asset_doc(s, ccv_analysis_field_ids(s.tenant_id, s.id))
                    FROM profile_assets s WHERE s.id = item_id) END AS doc
  FROM chain
 ORDER BY depth, item_id;
