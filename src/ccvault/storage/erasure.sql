-- name: erase_profile
-- The whole erasure in one call (migration 0015 has the function and its lock order):
-- the erased customer id and version, the counts, and the profiles that lost derived
-- items with their new versions, for the cache.
SELECT customer_id, erased_version, fields, assets, identities, consents, derived_items,
       touched_customer_ids, touched_versions
  FROM ccv_erase_profile(%(tenant_id)s, %(customer_id)s);

-- name: insert_receipt
-- In the erasure's own transaction: no erasure without its receipt, and no receipt for
-- an erasure that rolled back. erased_at is the clock after the deletes, not the
-- transaction's start (which was before any lock wait).
INSERT INTO erasure_receipts (id, tenant_id, subject_hash, erased_at, fields, assets,
                              identities, consents, derived_items, reason)
VALUES (%(id)s, %(tenant_id)s, %(subject_hash)s, clock_timestamp(), %(fields)s, %(assets)s,
        %(identities)s, %(consents)s, %(derived_items)s, %(reason)s)
RETURNING erased_at;

-- name: list_receipts
-- A tenant's receipts, newest first; no row at all when the tenant does not exist.
SELECT coalesce((
    SELECT json_agg(json_build_object(
               'receipt_id', r.id, 'subject_hash', r.subject_hash, 'erased_at', r.erased_at,
               'counts', json_build_object('fields', r.fields, 'assets', r.assets,
                                           'identities', r.identities, 'consents', r.consents,
                                           'derived_items', r.derived_items),
               'reason', r.reason) ORDER BY r.erased_at DESC, r.id)
      FROM (SELECT * FROM erasure_receipts
             WHERE tenant_id = t.id
             ORDER BY erased_at DESC, id
             LIMIT %(limit)s) r), '[]')::text
  FROM tenants t
 WHERE t.id = %(tenant_id)s;
