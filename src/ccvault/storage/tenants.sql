-- name: insert_tenant
INSERT INTO tenants (id, name, validation_mode)
VALUES (%(id)s, %(name)s, %(validation_mode)s)
RETURNING id, name, validation_mode, created_at;

-- name: insert_api_key
INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix)
VALUES (%(id)s, %(tenant_id)s, %(key_hash)s, %(key_prefix)s);

-- name: get_tenant
SELECT id, name, validation_mode, created_at FROM tenants WHERE id = %(id)s;

-- name: get_tenant_by_name
SELECT id, name, validation_mode, created_at FROM tenants WHERE name = %(name)s;

-- name: set_validation_mode
UPDATE tenants SET validation_mode = %(validation_mode)s WHERE id = %(id)s
RETURNING id, name, validation_mode, created_at;

-- name: caller_for_key
SELECT t.id, t.name, t.validation_mode, k.key_hash, k.id, t.secret
  FROM api_keys k
  JOIN tenants t ON t.id = k.tenant_id
 WHERE k.key_hash = %(key_hash)s AND k.revoked_at IS NULL;
