-- name: create
-- At most %(max)s endpoints per tenant: the count and the insert in one statement (two
-- racing creates may both pass; the bound is a guard against mistakes, not a quota).
INSERT INTO webhooks (tenant_id, id, url, types, secret)
SELECT %(tenant_id)s, %(id)s, %(url)s, %(types)s, %(secret)s
 WHERE (SELECT count(*) FROM webhooks WHERE tenant_id = %(tenant_id)s) < %(max)s
RETURNING id, url, types, created_at;

-- name: list
SELECT id, url, types, created_at FROM webhooks
 WHERE tenant_id = %(tenant_id)s ORDER BY created_at, id;

-- name: delete
-- Its delivery log goes with it (ON DELETE CASCADE); queued deliveries find it gone.
DELETE FROM webhooks WHERE tenant_id = %(tenant_id)s AND id = %(id)s RETURNING id;

-- name: deliveries
-- The newest attempts first; no row at all when the endpoint is not the tenant's.
SELECT w.id, d.event_id, d.attempt, d.at, d.status_code, d.error
  FROM webhooks w
  LEFT JOIN LATERAL (
      SELECT event_id, attempt, at, status_code, error FROM webhook_deliveries
       WHERE tenant_id = w.tenant_id AND webhook_id = w.id
       ORDER BY at DESC, event_id, attempt DESC
       LIMIT %(limit)s) d ON true
 WHERE w.tenant_id = %(tenant_id)s AND w.id = %(id)s;

-- name: load_delivery
-- What a delivery job needs: the endpoint and the event as the feed shows it (JSON text,
-- the body sent). No row: the endpoint was deleted or the event erased or pruned.
SELECT w.url, w.secret,
       json_build_object('id', e.id, 'type', e.type, 'at', e.at,
                         'customer_id', e.customer_id, 'data', e.data)::text
  FROM webhooks w
  JOIN events e ON e.tenant_id = w.tenant_id AND e.id = %(event_id)s
 WHERE w.tenant_id = %(tenant_id)s AND w.id = %(webhook_id)s;

-- name: record_attempt
INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_id, attempt, status_code, error)
SELECT %(tenant_id)s, %(webhook_id)s, %(event_id)s, %(attempt)s, %(status_code)s, %(error)s
 WHERE EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = %(tenant_id)s AND id = %(webhook_id)s)
ON CONFLICT DO NOTHING;
