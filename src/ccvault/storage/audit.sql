-- name: note
-- A write's entry, in the write's own transaction (unsealed: no seq, no hash yet).
INSERT INTO audit_pending (tenant_id, actor, action, subject_hash, target, purpose, request_id)
VALUES (%(audit_tenant_id)s, %(audit_actor)s, %(audit_action)s, %(audit_subject_hash)s,
        %(audit_target)s, %(audit_purpose)s, %(audit_request_id)s);

-- name: note_many
-- Entries of one actor in one statement (a job's window, an extraction run), in the
-- caller's transaction: one per (action, subject hash, target) of the arrays.
INSERT INTO audit_pending (tenant_id, actor, action, subject_hash, target)
SELECT %(tenant_id)s, %(actor)s, e.action, e.subject_hash, e.target
  FROM unnest(%(actions)s::text[], %(subjects)s::text[], %(targets)s::text[])
       AS e (action, subject_hash, target);

-- name: subject_secret
-- What a tenant's subject hashes are keyed with (migration 0009; domain/privacy.py).
SELECT secret FROM tenants WHERE id = %(tenant_id)s;

-- name: note_landed
-- As `note`, for a write addressed to an alias: filed under the customer the write landed
-- on (`landed`, the lock function's answer), whose subject hash only SQL can make here.
INSERT INTO audit_pending (tenant_id, actor, action, subject_hash, target, purpose, request_id)
VALUES (%(audit_tenant_id)s, %(audit_actor)s, %(audit_action)s,
        ccv_subject_hash(%(audit_tenant_id)s::uuid, %(landed)s::text),
        %(audit_target)s, %(audit_purpose)s, %(audit_request_id)s);

-- name: with_subject_note
-- As `with_note`, for a write function answering the customer_id it landed on (the
-- target's, when customer_id named an alias): the entry is filed under that customer.
-- Addressed by its own id (the rule), the subject hash the service made is used as is;
-- only an alias costs the HMAC in SQL (migration 0025).
WITH w AS MATERIALIZED ({write}),
     a AS (INSERT INTO audit_pending (tenant_id, actor, action, subject_hash, target,
                                      purpose, request_id)
           SELECT %(audit_tenant_id)s, %(audit_actor)s, %(audit_action)s,
                  CASE WHEN w.customer_id = %(customer_id)s::text
                       THEN %(audit_subject_hash)s::text
                       ELSE ccv_subject_hash(%(audit_tenant_id)s::uuid, w.customer_id) END,
                  %(audit_target)s, %(audit_purpose)s, %(audit_request_id)s
             FROM w)
SELECT * FROM w;

-- name: with_note
-- A single-statement write (a SELECT, or INSERT/UPDATE/DELETE ... RETURNING, with no
-- WITH of its own) and its entry as a CTE: one entry when the write answers a row (none
-- when it found nothing to change), committed (or failed) with that statement, for no
-- extra round trip. audit.py puts the write's text in place of the braced name below.
WITH w AS MATERIALIZED ({write}),
     a AS (INSERT INTO audit_pending (tenant_id, actor, action, subject_hash, target,
                                      purpose, request_id)
           SELECT %(audit_tenant_id)s, %(audit_actor)s, %(audit_action)s,
                  %(audit_subject_hash)s, %(audit_target)s, %(audit_purpose)s,
                  %(audit_request_id)s
            WHERE EXISTS (SELECT FROM w))
SELECT * FROM w;

-- name: insert_batch
-- Buffered read entries: one statement per batch, however many entries and tenants.
INSERT INTO audit_pending (tenant_id, at, actor, action, subject_hash, target, purpose,
                           request_id)
SELECT * FROM unnest(%(tenant_ids)s::uuid[], %(ats)s::timestamptz[], %(actors)s::text[],
                     %(actions)s::text[], %(subjects)s::text[], %(targets)s::text[],
                     %(purposes)s::text[], %(request_ids)s::text[]);

-- name: pending_tenants
-- Tenants with entries waiting to be sealed.
SELECT DISTINCT tenant_id FROM audit_pending;

-- name: seal_lock
-- One sealer per tenant at a time, across processes: it holds the chain's head.
SELECT pg_advisory_xact_lock(hashtext('ccvault audit seal'), hashtext(%(tenant_id)s::text));

-- name: seal_try_lock
-- The background sealer skips a tenant another process is sealing right now.
SELECT pg_try_advisory_xact_lock(hashtext('ccvault audit seal'), hashtext(%(tenant_id)s::text));

-- name: chain_head
-- The last sealed entry's seq and hash (none yet: no row).
SELECT seq, hash FROM audit_log WHERE tenant_id = %(tenant_id)s ORDER BY seq DESC LIMIT 1;

-- name: take_pending
-- The oldest pending entries, removed in the sealer's transaction (put back if it fails).
DELETE FROM audit_pending
 WHERE tenant_id = %(tenant_id)s
   AND id IN (SELECT id FROM audit_pending WHERE tenant_id = %(tenant_id)s
               ORDER BY id LIMIT %(limit)s)
RETURNING id, at, actor, action, subject_hash, target, purpose, request_id;

-- name: append
-- Sealed entries, in one statement per batch, as one JSON array of rows
-- [seq, at, actor, action, subject_hash, target, purpose, request_id, prev_hash, hash]:
-- the driver sends one text instead of adapting ten arrays element by element (half
-- the sealer's CPU). `at` is the canonical text (microseconds, UTC), read back exactly.
-- The chain's head (the batch's last seq and hash) moves in the same statement, so it
-- commits with the entries (migration 0025: `verify` tells a truncated chain by it).
WITH appended AS (
    INSERT INTO audit_log (tenant_id, seq, at, actor, action, subject_hash, target, purpose,
                           request_id, prev_hash, hash)
    SELECT %(tenant_id)s, (e->>0)::bigint, (e->>1)::timestamptz, e->>2, e->>3, e->>4, e->>5,
           e->>6, e->>7, e->>8, e->>9
      FROM json_array_elements(%(rows)s::json) e
)
INSERT INTO audit_head AS h (tenant_id, seq, hash)
VALUES (%(tenant_id)s, %(head_seq)s, %(head_hash)s)
ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash;

-- name: list_for_subject
-- One customer's entries, newest first, after the cursor's seq.
SELECT seq, at, actor, action, subject_hash, target, purpose, request_id, prev_hash, hash
  FROM audit_log
 WHERE tenant_id = %(tenant_id)s AND subject_hash = %(subject_hash)s
   AND (%(before)s::bigint IS NULL OR seq < %(before)s::bigint)
 ORDER BY seq DESC
 LIMIT %(limit)s;

-- name: walk
-- A tenant's chain in seq order, one keyset page at a time.
SELECT seq, at, actor, action, subject_hash, target, purpose, request_id, prev_hash, hash
  FROM audit_log
 WHERE tenant_id = %(tenant_id)s AND seq > %(after)s
 ORDER BY seq
 LIMIT %(limit)s;

-- name: chain_tenants
-- Every tenant (or the one named), with how many entries its chain holds at most, and
-- its head as the sealer last recorded it (none before its first entry).
SELECT t.id, t.name, coalesce((SELECT max(seq) FROM audit_log l WHERE l.tenant_id = t.id), 0),
       h.seq, h.hash
  FROM tenants t
  LEFT JOIN audit_head h ON h.tenant_id = t.id
 WHERE %(name)s::text IS NULL OR t.name = %(name)s::text
 ORDER BY t.name;
