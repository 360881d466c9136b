-- name: has_pending
-- Whether any committed event waits for its position: the periodic tick asks first, so
-- an idle feed costs a probe of a small partial index, not a row lock every tick.
SELECT EXISTS (SELECT 1 FROM events WHERE position IS NULL);

-- name: sequence
-- Number the committed, unsequenced events after the feed's head (migration 0020).
SELECT ccv_sequence_events(%(wait)s, %(batch)s);

-- name: page
-- A page of a tenant's feed after a position, with the head of the feed in the same
-- snapshot: every position up to the head is committed and visible here, so a page that
-- is not full may move the reader's cursor up to the head (nothing it filtered out lies
-- before it). Items are JSON built here, passed through as is. `pending`: some committed
-- event still waits for its position (a row an unfinished sequencer numbered shows as
-- pending too): the caller then sequences, waiting for that sequencer, and reads again.
WITH page AS (
    SELECT id, type, at, customer_id, data, position
      FROM events
     WHERE tenant_id = %(tenant_id)s AND position IS NOT NULL AND position > %(after)s
       AND (%(types)s::text[] IS NULL OR type = ANY (%(types)s::text[]))
     ORDER BY position
     LIMIT %(limit)s
)
SELECT (SELECT head FROM events_feed),
       count(*),
       max(position),
       coalesce(json_agg(json_build_object(
           'id', id, 'type', type, 'at', at, 'customer_id', customer_id, 'data', data)
           ORDER BY position), '[]')::text,
       EXISTS (SELECT 1 FROM events WHERE position IS NULL)
  FROM page;

-- name: emit_merged
-- A merge, on the target (in the merge's transaction).
INSERT INTO events (tenant_id, type, customer_id, data)
VALUES (%(tenant_id)s, 'profile.merged', %(customer_id)s,
        jsonb_build_object('source_customer_id', %(source_customer_id)s::text));

-- name: emit_extracted
-- Requirements extracted from a scenario or rule (in the run's transaction).
INSERT INTO events (tenant_id, type, customer_id, data)
VALUES (%(tenant_id)s, 'requirements.extracted', NULL,
        jsonb_build_object('kind', %(kind)s::text, 'id', %(source_id)s::text,
                           'agent_id', %(agent_id)s::text));

-- name: prune
-- One batch of events older than the retention (the BRIN index on `at` finds them).
WITH old AS (
    SELECT tenant_id, id FROM events
     WHERE at < now() - make_interval(days => %(days)s) AND position IS NOT NULL
     LIMIT %(batch)s
)
DELETE FROM events e USING old
 WHERE e.tenant_id = old.tenant_id AND e.id = old.id;
