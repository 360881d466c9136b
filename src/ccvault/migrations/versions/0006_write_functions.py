"""Write functions: a field or asset write in one round trip.

A write used to be BEGIN, lock the profile row, check the source, supersede + insert,
COMMIT: four round trips from the service. As plpgsql functions called in autocommit
mode the same statements run in one call and one transaction. Each statement in a
VOLATILE function takes a fresh snapshot (READ COMMITTED), so the supersede still sees
the versions a writer that held the profile lock before us committed: the row lock keeps
serializing writers exactly as before.

Failures are raised with SQLSTATEs of our own, which the store maps to its errors (and
which roll the whole call back, the version bump included):
CV404 no such profile, CV409 the profile kept changing (merges racing the lock),
CV422 the source item (MESSAGE: source_not_found | source_deleted).

Revision ID: 0006_write_functions
Revises: 0005_job_queue
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0006_write_functions"
down_revision = "0005_job_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Every write to a profile starts here. The row lock the UPDATE takes (held to commit)
    -- serializes writers of one profile, so the caller's next statement sees the previous
    -- writer's versions. An alias is followed to its target and never locked itself (a
    -- merge locks aliases; locking one here too could deadlock with it). After a lock
    -- wait, merged_into_id shows whether a merge retired the profile meanwhile: then,
    -- and when another writer created the profile first, start over. The version bump
    -- is for the cache; updated_at moves only when the caller changes something visible.
    CREATE FUNCTION ccv_lock_profile(
        p_tenant_id uuid, p_customer_id text, p_touch boolean, p_create boolean,
        OUT profile_id uuid, OUT customer_id text, OUT version bigint)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    DECLARE
        merged uuid;
    BEGIN
        FOR attempt IN 1..5 LOOP
            UPDATE customer_profiles p
               SET version = p.version + 1,
                   updated_at = CASE WHEN p_touch THEN clock_timestamp() ELSE p.updated_at END
              FROM customer_profiles a
             WHERE a.tenant_id = p_tenant_id AND a.customer_id = p_customer_id
               AND p.tenant_id = p_tenant_id AND p.id = coalesce(a.merged_into_id, a.id)
            RETURNING p.id, p.customer_id, p.merged_into_id, p.version
                 INTO profile_id, customer_id, merged, version;
            IF NOT FOUND THEN
                IF NOT p_create THEN
                    RAISE EXCEPTION USING ERRCODE = 'CV404', MESSAGE = 'no profile';
                END IF;
                INSERT INTO customer_profiles (id, tenant_id, customer_id)
                VALUES (gen_random_uuid(), p_tenant_id, p_customer_id)
                ON CONFLICT (tenant_id, customer_id) DO NOTHING
                RETURNING id, customer_id, merged_into_id, version
                     INTO profile_id, customer_id, merged, version;
            END IF;
            IF FOUND AND merged IS NULL THEN
                RETURN;
            END IF;
        END LOOP;
        RAISE EXCEPTION USING ERRCODE = 'CV409', MESSAGE = 'profile kept changing';
    END $$;

    -- A vault source must exist in this tenant, be of the named kind and not be deleted.
    CREATE FUNCTION ccv_check_source(p_tenant_id uuid, p_source_uuid uuid, p_kind text)
    RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        found_kind text;
        found_deleted timestamptz;
    BEGIN
        IF p_source_uuid IS NULL THEN
            RETURN;
        END IF;
        SELECT item_type, deleted_at INTO found_kind, found_deleted
          FROM lineage_items WHERE tenant_id = p_tenant_id AND id = p_source_uuid;
        IF found_kind IS DISTINCT FROM p_kind THEN
            RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'source_not_found';
        END IF;
        IF found_deleted IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'source_deleted';
        END IF;
    END $$;

    -- Lock, check the source, supersede whatever is current for the name (active,
    -- expired or orphaned: superseded wins), insert the new active version. The clock is
    -- read once, so retention_days dates expires_at from this very collected_at.
    CREATE FUNCTION ccv_save_field(
        p_tenant_id uuid, p_customer_id text, p_id uuid, p_name text, p_value jsonb,
        p_value_type text, p_source text, p_source_item_id text, p_source_item_type text,
        p_source_uuid uuid, p_source_metadata jsonb, p_source_session_id text,
        p_source_scenario_id text, p_source_step_id text, p_confidence double precision,
        p_verified boolean, p_verification_method text, p_verified_at timestamptz,
        p_requires_confirmation boolean, p_expires_at timestamptz, p_retention_days integer,
        p_field_definition_id uuid,
        OUT doc json, OUT customer_id text, OUT version bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
        profile uuid;
        ts timestamptz;
    BEGIN
        SELECT l.profile_id, l.customer_id, l.version INTO profile, customer_id, version
          FROM ccv_lock_profile(p_tenant_id, p_customer_id, true, true) l;
        PERFORM ccv_check_source(p_tenant_id, p_source_uuid, p_source_item_type);
        ts := clock_timestamp();
        UPDATE profile_fields
           SET status = 'superseded', superseded_by_id = p_id, superseded_at = ts,
               updated_at = ts
         WHERE tenant_id = p_tenant_id AND profile_id = profile AND name = p_name
           AND superseded_at IS NULL AND deleted_at IS NULL;
        INSERT INTO profile_fields (
            id, tenant_id, profile_id, name, value, value_type, status, source,
            source_item_id, source_item_type, source_metadata, source_session_id,
            source_scenario_id, source_step_id, confidence, verified, verification_method,
            verified_at, requires_confirmation, collected_at, updated_at, expires_at,
            field_definition_id)
        VALUES (
            p_id, p_tenant_id, profile, p_name, p_value, p_value_type, 'active', p_source,
            p_source_item_id, p_source_item_type, p_source_metadata, p_source_session_id,
            p_source_scenario_id, p_source_step_id, p_confidence, p_verified,
            p_verification_method,
            CASE WHEN p_verified THEN coalesce(p_verified_at, ts) END,
            p_requires_confirmation, ts, ts,
            coalesce(p_expires_at, ts + make_interval(days => p_retention_days)),
            p_field_definition_id)
        RETURNING ccv_field_doc(profile_fields) INTO doc;
    END $$;

    -- The same for assets: a same-name asset supersedes the current one.
    CREATE FUNCTION ccv_save_asset(
        p_tenant_id uuid, p_customer_id text, p_id uuid, p_name text, p_asset_type text,
        p_storage_provider text, p_storage_path text, p_mime_type text, p_size_bytes bigint,
        p_checksum text, p_source_item_id text, p_source_item_type text, p_source_uuid uuid,
        p_derived_from_tool text, p_retention_policy text, p_expires_at timestamptz,
        OUT doc json, OUT customer_id text, OUT version bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
        profile uuid;
        ts timestamptz;
    BEGIN
        SELECT l.profile_id, l.customer_id, l.version INTO profile, customer_id, version
          FROM ccv_lock_profile(p_tenant_id, p_customer_id, true, true) l;
        PERFORM ccv_check_source(p_tenant_id, p_source_uuid, p_source_item_type);
        ts := clock_timestamp();
        UPDATE profile_assets
           SET status = 'superseded', superseded_by_id = p_id, superseded_at = ts
         WHERE tenant_id = p_tenant_id AND profile_id = profile AND name = p_name
           AND superseded_at IS NULL AND deleted_at IS NULL;
        INSERT INTO profile_assets (
            id, tenant_id, profile_id, name, asset_type, storage_provider, storage_path,
            mime_type, size_bytes, checksum, status, source_item_id, source_item_type,
            derived_from_tool, retention_policy, uploaded_at, expires_at)
        VALUES (
            p_id, p_tenant_id, profile, p_name, p_asset_type, p_storage_provider,
            p_storage_path, p_mime_type, p_size_bytes, p_checksum, 'active', p_source_item_id,
            p_source_item_type, p_derived_from_tool, p_retention_policy, ts, p_expires_at)
        RETURNING ccv_asset_doc(profile_assets, NULL) INTO doc;
    END $$;
    """)


def downgrade() -> None:
    op.execute("""
    DROP FUNCTION ccv_save_asset(uuid, text, uuid, text, text, text, text, text, bigint, text,
                                 text, text, uuid, text, text, timestamptz);
    DROP FUNCTION ccv_save_field(uuid, text, uuid, text, jsonb, text, text, text, text, uuid,
                                 jsonb, text, text, text, double precision, boolean, text,
                                 timestamptz, boolean, timestamptz, integer, uuid);
    DROP FUNCTION ccv_check_source(uuid, uuid, text);
    DROP FUNCTION ccv_lock_profile(uuid, text, boolean, boolean);
    """)
