"""Audit log: subject hashes computed by the database, and each chain's head.

- `ccv_hmac_sha256`, `ccv_subject_key`, `ccv_subject_hash`: the subject hash of
  domain/privacy.py (HMAC-SHA256 of the customer id under a key derived from the tenant's
  secret), in SQL. An entry is filed under the customer its write landed on, and only
  the database knows that one when the id named an alias (the write function follows it):
  the single-statement writes and the jobs' set-based entries hash it there. PostgreSQL
  15 has sha256() but no HMAC (pgcrypto would add one); the pads are XORed byte by byte.
- `audit_head`: each tenant's last sealed entry (seq and hash), written by the sealer in
  the same transaction as the entries, so `ccv audit verify` can tell a chain whose
  newest entries were deleted (nothing after them refers to them). Its trigger refuses
  DELETE, TRUNCATE and any UPDATE that does not move the head forward, whoever asks:
  hiding a truncation takes disabling two triggers, as the owner or a superuser.

Revision ID: 0025_audit_subjects_head
Revises: 0024_webhooks
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0025_audit_subjects_head"
down_revision = "0024_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The HMAC functions, the head table (filled from the chains there are) and its
    guard."""
    op.execute(r"""
    -- RFC 2104 over sha256(): keys longer than a block are hashed first, shorter ones
    -- are padded with zeros (a zero byte XOR the pad is the pad).
    CREATE FUNCTION ccv_hmac_sha256(p_key bytea, p_message bytea) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        k bytea := CASE WHEN length(p_key) > 64 THEN sha256(p_key) ELSE p_key END;
        inner_pad bytea := decode(repeat('36', 64), 'hex');
        outer_pad bytea := decode(repeat('5c', 64), 'hex');
    BEGIN
        FOR i IN 0 .. length(k) - 1 LOOP
            inner_pad := set_byte(inner_pad, i, get_byte(k, i) # 54);
            outer_pad := set_byte(outer_pad, i, get_byte(k, i) # 92);
        END LOOP;
        RETURN sha256(outer_pad || sha256(inner_pad || p_message));
    END $$;

    -- The tenant's subject key (domain/privacy.py: HMAC of a fixed label under the
    -- tenant's secret); set-based callers take it once per statement.
    CREATE FUNCTION ccv_subject_key(p_tenant_id uuid) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
        SELECT ccv_hmac_sha256(secret, convert_to('ccvault subject hash v1', 'UTF8'))
          FROM tenants WHERE id = p_tenant_id
    $$;

    CREATE FUNCTION ccv_subject_hash(p_key bytea, p_customer_id text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT encode(ccv_hmac_sha256(p_key, convert_to(p_customer_id, 'UTF8')), 'hex')
    $$;

    CREATE FUNCTION ccv_subject_hash(p_tenant_id uuid, p_customer_id text) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
        SELECT ccv_subject_hash(ccv_subject_key(p_tenant_id), p_customer_id)
    $$;

    CREATE TABLE audit_head (
        tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
        seq bigint NOT NULL CHECK (seq > 0),
        hash text NOT NULL
    );
    INSERT INTO audit_head (tenant_id, seq, hash)
    SELECT DISTINCT ON (tenant_id) tenant_id, seq, hash
      FROM audit_log ORDER BY tenant_id, seq DESC;

    CREATE FUNCTION ccv_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id AND NEW.seq > OLD.seq THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_head only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
        FOR EACH ROW EXECUTE FUNCTION ccv_audit_head_guard();
    CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
        FOR EACH STATEMENT EXECUTE FUNCTION ccv_audit_head_guard();
    """)


def downgrade() -> None:
    """Drop the head and the functions."""
    op.execute("""
    DROP TABLE audit_head;
    DROP FUNCTION ccv_audit_head_guard();
    DROP FUNCTION ccv_subject_hash(uuid, text);
    DROP FUNCTION ccv_subject_hash(bytea, text);
    DROP FUNCTION ccv_subject_key(uuid);
    DROP FUNCTION ccv_hmac_sha256(bytea, bytea);
    """)
