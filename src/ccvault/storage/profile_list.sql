-- name: list_profiles
-- One page of a tenant's live profiles, newest updated_at first, customer_id breaking
-- ties (unique per tenant, so the order is total and a keyset page never skips or repeats
-- a profile that did not change meanwhile). list_minute is updated_at floored to the
-- minute (migration 0010: the index holds it instead of updated_at, so most writes stay
-- HOT); ordering by it first is the same order, and lets a backward scan of
-- customer_profiles_list_idx feed an incremental sort that stops after the page. The
-- first page passes ('infinity', 'infinity', ''), so this stays one statement on one
-- generic plan. Merged-away profiles (aliases) carry deleted_at and are left out; erased
-- ones are gone. active_fields counts what the profile read shows under `fields`, only
-- for the page's rows (the LIMIT is applied first).
WITH page AS (
    SELECT p.id, p.tenant_id, p.customer_id, p.created_at, p.updated_at, p.list_minute,
           p.verification_level
      FROM customer_profiles p
     WHERE p.tenant_id = %(tenant_id)s AND p.deleted_at IS NULL
       AND (p.list_minute, p.updated_at, p.customer_id)
           < (%(after_minute)s::timestamptz, %(after_updated_at)s::timestamptz,
              %(after_customer_id)s::text)
     ORDER BY p.list_minute DESC, p.updated_at DESC, p.customer_id DESC
     LIMIT %(limit)s
)
SELECT page.customer_id, page.created_at, page.updated_at, page.verification_level,
       (SELECT count(*) FROM profile_fields f
         WHERE f.tenant_id = page.tenant_id AND f.profile_id = page.id
           AND f.superseded_at IS NULL AND f.deleted_at IS NULL AND f.status = 'active'
           AND (f.expires_at IS NULL OR f.expires_at > now())) AS active_fields,
       page.list_minute
  FROM page
 ORDER BY page.list_minute DESC, page.updated_at DESC, page.customer_id DESC;

-- name: list_profiles_by_prefix
-- The same page among the ids starting with a prefix: the range [prefix, prefix_end) in
-- byte order ("C" collation, where the ids with a prefix are one contiguous range), so
-- customer_profiles_prefix_idx finds them without a LIKE pattern to escape. The planner
-- sorts the matches, or walks the list index and filters when most ids match.
WITH page AS (
    SELECT p.id, p.tenant_id, p.customer_id, p.created_at, p.updated_at, p.list_minute,
           p.verification_level
      FROM customer_profiles p
     WHERE p.tenant_id = %(tenant_id)s AND p.deleted_at IS NULL
       AND p.customer_id COLLATE "C" >= %(prefix)s::text
       AND p.customer_id COLLATE "C" < %(prefix_end)s::text
       AND (p.list_minute, p.updated_at, p.customer_id)
           < (%(after_minute)s::timestamptz, %(after_updated_at)s::timestamptz,
              %(after_customer_id)s::text)
     ORDER BY p.list_minute DESC, p.updated_at DESC, p.customer_id DESC
     LIMIT %(limit)s
)
SELECT page.customer_id, page.created_at, page.updated_at, page.verification_level,
       (SELECT count(*) FROM profile_fields f
         WHERE f.tenant_id = page.tenant_id AND f.profile_id = page.id
           AND f.superseded_at IS NULL AND f.deleted_at IS NULL AND f.status = 'active'
           AND (f.expires_at IS NULL OR f.expires_at > now())) AS active_fields,
       page.list_minute
  FROM page
 ORDER BY page.list_minute DESC, page.updated_at DESC, page.customer_id DESC;
