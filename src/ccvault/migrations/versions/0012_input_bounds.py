"""Input bounds held by the database: readable timestamps, and a size limit per profile.

Timestamps. A caller's `expires_at` or `verified_at` of year 10000 or 1 BC (after
conversion to UTC) was stored, and every later read of it failed: no reader parses such a
year. The API now refuses them (domain/bounds.py); these CHECKs keep them out whatever
writes, with the same bounds: UTC 0001-01-02 to 9999-12-30, a day inside years 1..9999.
Rows written before are brought inside the bounds first: a far-future expiry stays "never
in practice", a long-past one stays expired, and their history becomes readable again.

Profile size. A profile's current field versions (not superseded, not deleted) are at most
200, their values and source_metadata at most 1 MiB as reads render them, and its current
assets at most 200. The check runs after every INSERT statement into the item tables, in
the inserting transaction. Every write path holds the profile's row lock from before its
insert until commit (ccv_lock_profile, migration 0006; a merge locks both profiles), so
the count it sees cannot be changed by a concurrent writer: the limit holds under any
concurrency. A merge calls the same checks itself after moving the items over. Failures
are raised as CV422 with MESSAGE profile_fields_limit | profile_bytes_limit |
profile_assets_limit (storage maps them to 422 answers).

Revision ID: 0012_input_bounds
Revises: 0011_review_queue
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0012_input_bounds"
down_revision = "0011_review_queue"
branch_labels = None
depends_on = None

LOW = "'0001-01-02 00:00:00+00'::timestamptz"
HIGH = "'9999-12-30 23:59:59.999999+00'::timestamptz"
# (table, column) a caller can set; the others are the server's clock.
_CALLER_TIMESTAMPS = (
    ("profile_fields", "expires_at"),
    ("profile_fields", "verified_at"),
    ("profile_assets", "expires_at"),
)
# Keep equal to domain/bounds.py.
MAX_PROFILE_FIELDS = 200
MAX_PROFILE_VALUE_BYTES = 1024 * 1024
MAX_PROFILE_ASSETS = 200


def upgrade() -> None:
    for table, column in _CALLER_TIMESTAMPS:
        # NOT VALID first: new rows are held to the bounds while the old ones are repaired.
        op.execute(f"""
        ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_bounds
            CHECK ({column} BETWEEN {LOW} AND {HIGH}) NOT VALID;
        UPDATE {table} SET {column} = least(greatest({column}, {LOW}), {HIGH})
         WHERE {column} NOT BETWEEN {LOW} AND {HIGH};
        ALTER TABLE {table} VALIDATE CONSTRAINT {table}_{column}_bounds;
        """)  # noqa: S608 (built from the constants above only)
    op.execute(f"""
    -- The current fields of one profile within their count and rendered size.
    CREATE FUNCTION ccv_check_field_limits(p_tenant_id uuid, p_profile_id uuid)
    RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        fields integer;
        bytes bigint;
    BEGIN
        SELECT count(*),
               coalesce(sum(octet_length(value::text) + octet_length(source_metadata::text)), 0)
          INTO fields, bytes
          FROM profile_fields
         WHERE tenant_id = p_tenant_id AND profile_id = p_profile_id
           AND superseded_at IS NULL AND deleted_at IS NULL;
        IF fields > {MAX_PROFILE_FIELDS} THEN
            RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'profile_fields_limit';
        END IF;
        IF bytes > {MAX_PROFILE_VALUE_BYTES} THEN
            RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'profile_bytes_limit';
        END IF;
    END $$;

    CREATE FUNCTION ccv_check_asset_limits(p_tenant_id uuid, p_profile_id uuid)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF (SELECT count(*) FROM profile_assets
             WHERE tenant_id = p_tenant_id AND profile_id = p_profile_id
               AND superseded_at IS NULL AND deleted_at IS NULL) > {MAX_PROFILE_ASSETS} THEN
            RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'profile_assets_limit';
        END IF;
    END $$;

    -- Once per INSERT statement, over the profiles it added to (a bulk load checks each
    -- profile once, not once per row).
    CREATE FUNCTION ccv_fields_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ccv_check_field_limits(n.tenant_id, n.profile_id)
           FROM (SELECT DISTINCT tenant_id, profile_id FROM inserted) n;
        RETURN NULL;
    END $$;

    CREATE FUNCTION ccv_assets_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ccv_check_asset_limits(n.tenant_id, n.profile_id)
           FROM (SELECT DISTINCT tenant_id, profile_id FROM inserted) n;
        RETURN NULL;
    END $$;

    CREATE TRIGGER profile_fields_limits AFTER INSERT ON profile_fields
        REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION ccv_fields_inserted();
    CREATE TRIGGER profile_assets_limits AFTER INSERT ON profile_assets
        REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION ccv_assets_inserted();
    """)  # noqa: S608 (built from the constants above only)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER profile_assets_limits ON profile_assets;
    DROP TRIGGER profile_fields_limits ON profile_fields;
    DROP FUNCTION ccv_assets_inserted();
    DROP FUNCTION ccv_fields_inserted();
    DROP FUNCTION ccv_check_asset_limits(uuid, uuid);
    DROP FUNCTION ccv_check_field_limits(uuid, uuid);
    """)
    for table, column in _CALLER_TIMESTAMPS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_bounds")
