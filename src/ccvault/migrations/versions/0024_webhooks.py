"""Webhooks: endpoints per tenant, their delivery log, and deliveries queued by the
sequencer (README "Webhooks").

- `webhooks` keeps the URL, the event types (empty: every type) and the signing secret.
  The secret is kept as given: the vault needs it to sign, so it cannot be a hash.
- `webhook_deliveries` logs every attempt: event, attempt number, when, the status code
  answered (NULL when none came) and an error text (never the body sent).
- `ccv_sequence_events` (migration 0020) now also queues one delivery job per numbered
  event and matching endpoint, in the same transaction as the numbering: each event is
  handed to each endpoint once, in feed order. The job's procrastinate `lock` is the
  endpoint: one endpoint's deliveries run one at a time and in order, so an endpoint that
  fails or hangs holds at most one worker slot and delays no other endpoint.

Revision ID: 0024_webhooks
Revises: 0023_asof_status
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0024_webhooks"
down_revision = "0023_asof_status"
branch_labels = None
depends_on = None

_SEQUENCER = """
CREATE OR REPLACE FUNCTION ccv_sequence_events(p_wait boolean, p_batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    start_head bigint;
    numbered integer;
    advance bigint;
BEGIN
    IF p_wait THEN
        SELECT head INTO start_head FROM events_feed FOR UPDATE;
    ELSE
        SELECT head INTO start_head FROM events_feed FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN -1;
        END IF;
    END IF;
    -- This statement takes a fresh snapshot, after the lock: it sees every row the
    -- previous sequencer numbered, and only committed rows of the writers.
    WITH pending AS (
        SELECT p.tenant_id, p.id, row_number() OVER (ORDER BY p.ord) AS rn
          FROM (SELECT tenant_id, id, ord FROM events
                 WHERE position IS NULL ORDER BY ord LIMIT p_batch) p
    ), numbered_rows AS (
        UPDATE events e SET position = start_head + pending.rn
          FROM pending
         WHERE e.tenant_id = pending.tenant_id AND e.id = pending.id
           AND e.position IS NULL
        RETURNING pending.rn, e.tenant_id, e.id, e.type
    ), deliveries AS (
        -- One job per event and matching endpoint, in feed order (job ids follow the
        -- array's order); the endpoint is the job's lock.
        SELECT procrastinate_defer_jobs_v1(ARRAY(
            SELECT ROW('ccv', 'ccv.deliver_webhook', 0, 'webhook:' || w.id::text, NULL,
                       jsonb_build_object('tenant_id', n.tenant_id, 'webhook_id', w.id,
                                          'event_id', n.id),
                       NULL)::procrastinate_job_to_defer_v1
              FROM numbered_rows n
              JOIN webhooks w ON w.tenant_id = n.tenant_id
                             AND (cardinality(w.types) = 0 OR n.type = ANY (w.types))
             ORDER BY n.rn, w.id)) AS job_ids
    )
    -- A row an erasure deleted meanwhile leaves a gap: positions need not be dense.
    SELECT count(*), coalesce(max(rn), 0) INTO numbered, advance
      FROM numbered_rows, (SELECT count(*) FROM deliveries) AS queued;
    IF numbered > 0 THEN
        UPDATE events_feed SET head = start_head + advance;
    END IF;
    RETURN numbered;
END $$;
"""


def upgrade() -> None:
    op.execute("""
    CREATE TABLE webhooks (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
        types text[] NOT NULL DEFAULT '{}',
        secret text NOT NULL CHECK (length(secret) BETWEEN 1 AND 256),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (tenant_id, id)
    );
    CREATE TABLE webhook_deliveries (
        tenant_id uuid NOT NULL,
        webhook_id uuid NOT NULL,
        event_id uuid NOT NULL,
        attempt integer NOT NULL CHECK (attempt >= 1),
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        status_code integer,
        error text CHECK (length(error) <= 500),
        PRIMARY KEY (tenant_id, webhook_id, event_id, attempt),
        FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id)
            ON DELETE CASCADE
    );
    CREATE INDEX webhook_deliveries_at_idx ON webhook_deliveries (tenant_id, webhook_id, at);
    """)
    op.execute(_SEQUENCER)


def downgrade() -> None:
    from importlib import import_module

    # The sequencer as migration 0020 made it.
    events = import_module("ccvault.migrations.versions.0020_events")
    op.execute("DROP TABLE webhook_deliveries; DROP TABLE webhooks;")
    op.execute("DROP FUNCTION ccv_sequence_events(boolean, integer)")
    op.execute(events.SEQUENCER)
