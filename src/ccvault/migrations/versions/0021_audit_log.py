"""The tamper-evident audit log (DESIGN §8 "Privacy" → "Audit log").

- `audit_pending`: entries not yet sealed. A write inserts its entry here in its own
  transaction (so the entry commits or rolls back with the write); read entries arrive in
  batches. No seq and no hash yet: assigning them at write time would serialize every
  writer of a tenant on one counter.
- `audit_log`: sealed entries, `seq` 1, 2, 3... per tenant, each hash-chained to the one
  before (`hash` = SHA-256 over the entry's canonical JSON and `prev_hash`, computed by
  the sealer in Python, domain/audit.py, so `ccv audit verify` recomputes it with the
  same code). Insert-only: triggers refuse UPDATE, DELETE and TRUNCATE, whoever asks
  (tests tamper as superuser by disabling the trigger).
- Neither holds a value or a customer id: the subject is `subject_hash`, the HMAC of the
  customer id under the tenant's secret (as erasure receipts name it), so an erasure
  leaves the log intact and verifiable.

Revision ID: 0021_audit_log
Revises: 0020_events
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0021_audit_log"
down_revision = "0020_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The two tables, the read index and the triggers that keep the log append-only."""
    op.execute("""
    CREATE TABLE audit_pending (
        tenant_id uuid NOT NULL,
        id bigint GENERATED ALWAYS AS IDENTITY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        actor text NOT NULL,
        action text NOT NULL,
        subject_hash text,
        target text,
        purpose text,
        request_id text,
        PRIMARY KEY (tenant_id, id)
    );

    CREATE TABLE audit_log (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        seq bigint NOT NULL CHECK (seq > 0),
        at timestamptz NOT NULL,
        actor text NOT NULL,
        action text NOT NULL,
        subject_hash text,
        target text,
        purpose text,
        request_id text,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (tenant_id, seq)
    );
    -- GET /v1/profiles/{customer_id}/audit: one customer's entries, newest first.
    CREATE INDEX audit_log_subject ON audit_log (tenant_id, subject_hash, seq DESC);

    CREATE FUNCTION ccv_audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION ccv_audit_log_refuse();
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION ccv_audit_log_refuse();
    """)


def downgrade() -> None:
    """Drop the log (DROP TABLE is not refused by the triggers: only an operator can)."""
    op.execute("""
    DROP TABLE audit_log;
    DROP TABLE audit_pending;
    DROP FUNCTION ccv_audit_log_refuse();
    """)
