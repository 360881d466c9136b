-- name: insert_tenant
INSERT INTO tenants (id, name, validation_mode, require_purpose, history_retention_days)
VALUES (%(id)s, %(name)s, %(validation_mode)s, %(require_purpose)s,
        %(history_retention_days)s)
RETURNING id, name, validation_mode, created_at, require_purpose, history_retention_days;

-- name: insert_api_key
INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, label)
VALUES (%(id)s, %(tenant_id)s, %(key_hash)s, %(key_prefix)s, %(label)s)
RETURNING id, label, created_at;

-- name: list_tenants
SELECT id, name, validation_mode, created_at, require_purpose, history_retention_days
  FROM tenants
 ORDER BY created_at, name;

-- name: list_api_keys
-- Revoked keys stay listed (with revoked_at): an operator sees what was cut off and when.
SELECT id, label, created_at, last_used_at, revoked_at
  FROM api_keys
 WHERE tenant_id = %(tenant_id)s
 ORDER BY created_at, id;

-- name: revoke_api_key
-- Nothing returned: no such key of this tenant, or already revoked (both a 404).
UPDATE api_keys SET revoked_at = now()
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND revoked_at IS NULL
RETURNING id;

-- name: get_tenant
SELECT id, name, validation_mode, created_at, require_purpose, history_retention_days
  FROM tenants WHERE id = %(id)s;

-- name: get_tenant_by_name
SELECT id, name, validation_mode, created_at, require_purpose, history_retention_days
  FROM tenants
 WHERE name = %(name)s;

-- name: patch_tenant
-- A null leaves that setting as it is; the retention is set when set_retention is true
-- (its null means "forever").
UPDATE tenants
   SET validation_mode = coalesce(%(validation_mode)s, validation_mode),
       require_purpose = coalesce(%(require_purpose)s, require_purpose),
       history_retention_days = CASE WHEN %(set_retention)s THEN %(history_retention_days)s
                                     ELSE history_retention_days END
 WHERE id = %(id)s
RETURNING id, name, validation_mode, created_at, require_purpose, history_retention_days;

-- name: caller_for_key
-- Runs when a process resolves a key it does not remember (at most once per key per
-- CCV_API_KEY_CACHE_SECONDS per process), so last_used_at rides along in the same round
-- trip, written at most once a minute per key: a request never pays a write of its own,
-- and the column is as fresh as a minute plus the key cache's time.
WITH found AS (
    SELECT t.id, t.name, t.validation_mode, k.key_hash, k.id AS key_id, t.secret,
           t.require_purpose
      FROM api_keys k
      JOIN tenants t ON t.id = k.tenant_id
     WHERE k.key_hash = %(key_hash)s AND k.revoked_at IS NULL
), used AS (
    UPDATE api_keys SET last_used_at = now()
     WHERE id = (SELECT key_id FROM found) AND revoked_at IS NULL
       AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
)
SELECT id, name, validation_mode, key_hash, key_id, secret, require_purpose FROM found;
