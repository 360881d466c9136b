"""Events: an outbox written by every change in its own transaction, and a feed position
assigned in commit order (DESIGN §8 "Events", README "Change feed").

- `events` holds one row per change: `type`, `at`, `customer_id` (NULL for tenant-wide
  events and for `profile.erased`), `data` (the item's id and name, never a value). Rows
  are inserted with `position` NULL; `ord` only records insertion order.
- Statement-level triggers with transition tables write the events of profile, field,
  asset and consent changes, so a sweep that expires or orphans 2,000 items in one
  statement writes their 2,000 events in one INSERT ... SELECT. Merges and requirement
  extraction write theirs explicitly (a trigger cannot tell a merge's moves from edits).
- An erasure's DELETE of the profile rows (ccv_erase_profile) removes that customer's
  events (aliases included) and leaves one `profile.erased` naming no one.
- `ccv_sequence_events` is the sequencer: one at a time (the `event_feed` row lock), it
  gives the rows it can see unsequenced, which are all committed, the next positions in
  insertion order. A reader pages by position: a transaction that inserted its event
  earlier but commits later is sequenced later, after every position a reader has seen.
  Positions are global (one counter); cursors are signed per tenant.

Object names start with `events`/`ccv_events_` (other triggers on these tables are not
ours). No foreign key to tenants: the check would cost every write a lookup, and tenants
are never deleted.

Revision ID: 0020_events
Revises: 0019_asof_reads
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0020_events"
down_revision = "0019_asof_reads"
branch_labels = None
depends_on = None

# (trigger, table, event, transition tables, function)
_TRIGGERS = [
    ("ccv_events_fields_ins", "profile_fields", "INSERT", "NEW TABLE AS new_rows", "fields_ins"),
    (
        "ccv_events_fields_upd",
        "profile_fields",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "fields_upd",
    ),
    ("ccv_events_assets_ins", "profile_assets", "INSERT", "NEW TABLE AS new_rows", "assets_ins"),
    (
        "ccv_events_assets_upd",
        "profile_assets",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "assets_upd",
    ),
    (
        "ccv_events_profiles_ins",
        "customer_profiles",
        "INSERT",
        "NEW TABLE AS new_rows",
        "profiles_ins",
    ),
    (
        "ccv_events_profiles_del",
        "customer_profiles",
        "DELETE",
        "OLD TABLE AS old_rows",
        "profiles_del",
    ),
    ("ccv_events_consents_ins", "consents", "INSERT", "NEW TABLE AS new_rows", "consents_chg"),
    ("ccv_events_consents_upd", "consents", "UPDATE", "NEW TABLE AS new_rows", "consents_chg"),
]

_FUNCTIONS = {
    "fields_ins": """
        INSERT INTO events (tenant_id, type, customer_id, data)
        SELECT n.tenant_id, 'field.written', p.customer_id,
               jsonb_build_object('id', n.id, 'name', n.name)
          FROM new_rows n
          JOIN customer_profiles p ON p.id = n.profile_id AND p.tenant_id = n.tenant_id
         ORDER BY n.collected_at, n.id;
    """,
    # A soft delete, an expiry (sweep or not) or an orphaning; supersedes, merges' moves
    # and other edits write nothing here.
    "fields_upd": """
        INSERT INTO events (tenant_id, type, customer_id, data)
        SELECT n.tenant_id,
               CASE WHEN n.deleted_at IS NOT NULL THEN 'field.deleted'
                    ELSE 'field.' || n.status END,
               p.customer_id, jsonb_build_object('id', n.id, 'name', n.name)
          FROM new_rows n
          JOIN old_rows o ON o.id = n.id
          JOIN customer_profiles p ON p.id = n.profile_id AND p.tenant_id = n.tenant_id
         WHERE (o.deleted_at IS NULL AND n.deleted_at IS NOT NULL)
            OR (n.deleted_at IS NULL AND n.status IS DISTINCT FROM o.status
                AND n.status IN ('expired', 'orphaned'))
         ORDER BY n.id;
    """,
    "assets_ins": """
        INSERT INTO events (tenant_id, type, customer_id, data)
        SELECT n.tenant_id, 'asset.added', p.customer_id,
               jsonb_build_object('id', n.id, 'name', n.name)
          FROM new_rows n
          JOIN customer_profiles p ON p.id = n.profile_id AND p.tenant_id = n.tenant_id
         ORDER BY n.uploaded_at, n.id;
    """,
    "assets_upd": """
        INSERT INTO events (tenant_id, type, customer_id, data)
        SELECT n.tenant_id, 'asset.deleted', p.customer_id,
               jsonb_build_object('id', n.id, 'name', n.name)
          FROM new_rows n
          JOIN old_rows o ON o.id = n.id
          JOIN customer_profiles p ON p.id = n.profile_id AND p.tenant_id = n.tenant_id
         WHERE o.deleted_at IS NULL AND n.deleted_at IS NOT NULL
         ORDER BY n.id;
    """,
    "profiles_ins": """
        INSERT INTO events (tenant_id, type, customer_id, data)
        SELECT n.tenant_id, 'profile.created', n.customer_id, '{}'::jsonb
          FROM new_rows n
         ORDER BY n.customer_id;
    """,
    # Only an erasure deletes profile rows (the profile and its aliases at once): the
    # customers' events go, and one profile.erased per erased profile stays, naming no one.
    "profiles_del": """
        DELETE FROM events e
         USING old_rows o
         WHERE e.tenant_id = o.tenant_id AND e.customer_id = o.customer_id;
        INSERT INTO events (tenant_id, type, customer_id, data)
        SELECT o.tenant_id, 'profile.erased', NULL, '{}'::jsonb
          FROM old_rows o
         WHERE o.merged_into_id IS NULL;
    """,
    # An answer given (a row inserted or updated); a merge moving the source's answers to
    # the target is a change of the target's consents too.
    "consents_chg": """
        INSERT INTO events (tenant_id, type, customer_id, data)
        SELECT n.tenant_id, 'consent.changed', p.customer_id,
               jsonb_build_object('name', n.consent_type)
          FROM new_rows n
          JOIN customer_profiles p ON p.id = n.profile_id AND p.tenant_id = n.tenant_id
         ORDER BY n.consent_type;
    """,
}


# The sequencer (migration 0024 adds the webhook deliveries to it).
SEQUENCER = """
-- Number the committed, unsequenced events (at most p_batch, oldest first) after the
-- head. p_wait: wait for a running sequencer (a reader about to page) or give up at
-- once (the periodic tick). Returns how many rows got a position (-1: gave up).
CREATE FUNCTION ccv_sequence_events(p_wait boolean, p_batch integer)
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
        RETURNING pending.rn
    )
    -- A row an erasure deleted meanwhile leaves a gap: positions need not be dense.
    SELECT count(*), coalesce(max(rn), 0) INTO numbered, advance FROM numbered_rows;
    IF numbered > 0 THEN
        UPDATE events_feed SET head = start_head + advance;
    END IF;
    RETURN numbered;
END $$;
"""


def upgrade() -> None:
    op.execute("""
    CREATE TABLE events (
        tenant_id uuid NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        -- Insertion order: the sequencer numbers what it finds in this order, which keeps
        -- a profile's events in commit order (its writers hold the profile lock in turn).
        ord bigint GENERATED ALWAYS AS IDENTITY,
        -- The feed position: NULL until the sequencer saw the row committed.
        position bigint,
        type text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        customer_id text,
        data jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (tenant_id, id)
    );
    -- What the sequencer has yet to number (small: it runs every fraction of a second).
    CREATE INDEX events_pending_idx ON events (ord) WHERE position IS NULL;
    -- The feed: a tenant's events by position.
    CREATE INDEX events_feed_idx ON events (tenant_id, position) WHERE position IS NOT NULL;
    -- An erasure's delete of a customer's events.
    CREATE INDEX events_customer_idx ON events (tenant_id, customer_id)
        WHERE customer_id IS NOT NULL;
    -- The retention prune: rows are appended in time order, so a BRIN index is enough
    -- and costs a write next to nothing.
    CREATE INDEX events_at_brin ON events USING brin (at);

    -- The head of the feed: the last position handed out. Its row lock makes sequencers
    -- take turns.
    CREATE TABLE events_feed (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        head bigint NOT NULL DEFAULT 0
    );
    INSERT INTO events_feed DEFAULT VALUES;
    """)
    op.execute(SEQUENCER)
    for name, body in _FUNCTIONS.items():
        op.execute(f"""
        CREATE FUNCTION ccv_events_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body}
            RETURN NULL;
        END $$;
        """)
    for trigger, table, event, transition, function in _TRIGGERS:
        op.execute(f"""
        CREATE TRIGGER {trigger} AFTER {event} ON {table}
            REFERENCING {transition}
            FOR EACH STATEMENT EXECUTE FUNCTION ccv_events_{function}();
        """)


def downgrade() -> None:
    for trigger, table, *_ in _TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for name in _FUNCTIONS:
        op.execute(f"DROP FUNCTION ccv_events_{name}()")
    op.execute("""
    DROP FUNCTION ccv_sequence_events(boolean, integer);
    DROP TABLE events_feed;
    DROP TABLE events;
    """)
