"""Operators' reads and who wrote what: the profile list, verification levels, key
management, `written_by` on every version, and `If-Match` checked under the profile lock.

- `verification_level` gets its vocabulary (DESIGN §8): the old default `none` becomes
  `unverified` (so does any value outside the vocabulary: no route could set one), and a
  CHECK keeps it. A downgrade keeps the values as they are (the older schema has no
  vocabulary to break).
- The profile list (`GET /v1/profiles`) pages newest `updated_at` first. `updated_at`
  itself stays out of every index: each write moves it, and an indexed column would make
  every write's profile-row update a non-HOT one (measured: 1.4x the WAL per field write,
  HOT updates from all to 5%). The index holds `list_minute`, `updated_at` floored to
  the minute (a stored generated column), which a write changes only when the profile was
  last updated in an earlier minute: a burst of writes to a profile stays HOT after the
  first. The list walks that index newest minute first and sorts within a minute
  (an incremental sort). An id prefix is a range scan over `customer_id COLLATE "C"`
  (byte order, where a prefix is one contiguous range). Both indexes leave out
  merged-away profiles (`deleted_at`), which the list never shows.
- API keys get an optional `label` and a `last_used_at` (refreshed at most once a minute,
  when a process re-validates the key: see storage/tenants.sql `caller_for_key`).
- Field and asset versions record who wrote them (`written_by_key_id`, `..._agent_id`);
  no foreign key to api_keys: keys are revoked, never deleted, and a check per write
  would cost the write path an index probe for nothing.
- `ccv_lock_profile` takes the versions an `If-Match` names and raises CV412 when the
  profile's version (before this write's bump) is not one of them, after the row lock is
  held, so two writers holding the same ETag cannot both pass. `ccv_save_field` and
  `ccv_save_asset` pass it through with `written_by`: still one round trip.
- The public documents (`ccv_field_doc`, `ccv_asset_doc`) carry `written_by`, so every
  read path agrees; the cache epoch is raised so that no process serves a profile cached
  in the old shape.

Revision ID: 0010_profiles_keys_written_by
Revises: 0009_tenant_secrets
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010_profiles_keys_written_by"
down_revision = "0009_tenant_secrets"
branch_labels = None
depends_on = None

LEVELS = ("unverified", "email_verified", "phone_verified", "document_verified", "kyc_complete")
_LEVEL_LIST = ", ".join(f"'{level}'" for level in LEVELS)

# -- the functions as this revision leaves them ------------------------------------------

_LOCK_PROFILE = """
-- Every write to a profile starts here (migration 0006 says why). p_if_versions carries an
-- If-Match: NULL = no condition; otherwise the profile must exist and its version before
-- this write's bump must be one of them (0 stands for `*`: any version). The check runs
-- after the row lock is held, so of two writers holding the same version exactly one
-- passes; the other sees the first one's bump and raises CV412 (DETAIL: the version it
-- found, for the answer's ETag). A write that would create the profile fails the same way.
CREATE FUNCTION ccv_lock_profile(
    p_tenant_id uuid, p_customer_id text, p_touch boolean, p_create boolean,
    p_if_versions bigint[] DEFAULT NULL,
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
            IF p_if_versions IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'CV412', MESSAGE = 'precondition failed',
                      DETAIL = '';
            END IF;
            INSERT INTO customer_profiles (id, tenant_id, customer_id)
            VALUES (gen_random_uuid(), p_tenant_id, p_customer_id)
            ON CONFLICT (tenant_id, customer_id) DO NOTHING
            RETURNING id, customer_id, merged_into_id, version
                 INTO profile_id, customer_id, merged, version;
        END IF;
        IF FOUND AND merged IS NULL THEN
            IF p_if_versions IS NOT NULL
               AND NOT (version - 1 = ANY (p_if_versions) OR 0 = ANY (p_if_versions)) THEN
                RAISE EXCEPTION USING ERRCODE = 'CV412', MESSAGE = 'precondition failed',
                      DETAIL = (version - 1)::text;
            END IF;
            RETURN;
        END IF;
    END LOOP;
    RAISE EXCEPTION USING ERRCODE = 'CV409', MESSAGE = 'profile kept changing';
END $$;
"""

_SAVE_FIELD = """
-- Lock (and check an If-Match), check the source, supersede whatever is current for the
-- name, insert the new active version with who wrote it: one call, one transaction.
CREATE FUNCTION ccv_save_field(
    p_tenant_id uuid, p_customer_id text, p_id uuid, p_name text, p_value jsonb,
    p_value_type text, p_source text, p_source_item_id text, p_source_item_type text,
    p_source_uuid uuid, p_source_metadata jsonb, p_source_session_id text,
    p_source_scenario_id text, p_source_step_id text, p_confidence double precision,
    p_verified boolean, p_verification_method text, p_verified_at timestamptz,
    p_requires_confirmation boolean, p_expires_at timestamptz, p_retention_days integer,
    p_field_definition_id uuid, p_written_by_key_id uuid, p_written_by_agent_id text,
    p_if_versions bigint[],
    OUT doc json, OUT customer_id text, OUT version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    profile uuid;
    ts timestamptz;
BEGIN
    SELECT l.profile_id, l.customer_id, l.version INTO profile, customer_id, version
      FROM ccv_lock_profile(p_tenant_id, p_customer_id, true, true, p_if_versions) l;
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
        field_definition_id, written_by_key_id, written_by_agent_id)
    VALUES (
        p_id, p_tenant_id, profile, p_name, p_value, p_value_type, 'active', p_source,
        p_source_item_id, p_source_item_type, p_source_metadata, p_source_session_id,
        p_source_scenario_id, p_source_step_id, p_confidence, p_verified,
        p_verification_method,
        CASE WHEN p_verified THEN coalesce(p_verified_at, ts) END,
        p_requires_confirmation, ts, ts,
        coalesce(p_expires_at, ts + make_interval(days => p_retention_days)),
        p_field_definition_id, p_written_by_key_id, p_written_by_agent_id)
    RETURNING ccv_field_doc(profile_fields) INTO doc;
END $$;
"""

_SAVE_ASSET = """
-- The same for assets: a same-name asset supersedes the current one.
CREATE FUNCTION ccv_save_asset(
    p_tenant_id uuid, p_customer_id text, p_id uuid, p_name text, p_asset_type text,
    p_storage_provider text, p_storage_path text, p_mime_type text, p_size_bytes bigint,
    p_checksum text, p_source_item_id text, p_source_item_type text, p_source_uuid uuid,
    p_derived_from_tool text, p_retention_policy text, p_expires_at timestamptz,
    p_written_by_key_id uuid, p_written_by_agent_id text, p_if_versions bigint[],
    OUT doc json, OUT customer_id text, OUT version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    profile uuid;
    ts timestamptz;
BEGIN
    SELECT l.profile_id, l.customer_id, l.version INTO profile, customer_id, version
      FROM ccv_lock_profile(p_tenant_id, p_customer_id, true, true, p_if_versions) l;
    PERFORM ccv_check_source(p_tenant_id, p_source_uuid, p_source_item_type);
    ts := clock_timestamp();
    UPDATE profile_assets
       SET status = 'superseded', superseded_by_id = p_id, superseded_at = ts
     WHERE tenant_id = p_tenant_id AND profile_id = profile AND name = p_name
       AND superseded_at IS NULL AND deleted_at IS NULL;
    INSERT INTO profile_assets (
        id, tenant_id, profile_id, name, asset_type, storage_provider, storage_path,
        mime_type, size_bytes, checksum, status, source_item_id, source_item_type,
        derived_from_tool, retention_policy, uploaded_at, expires_at, written_by_key_id,
        written_by_agent_id)
    VALUES (
        p_id, p_tenant_id, profile, p_name, p_asset_type, p_storage_provider,
        p_storage_path, p_mime_type, p_size_bytes, p_checksum, 'active', p_source_item_id,
        p_source_item_type, p_derived_from_tool, p_retention_policy, ts, p_expires_at,
        p_written_by_key_id, p_written_by_agent_id)
    RETURNING ccv_asset_doc(profile_assets, NULL) INTO doc;
END $$;
"""

_DOCS = """
CREATE OR REPLACE FUNCTION ccv_field_doc(f profile_fields) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN json_build_object(
        'id', f.id, 'name', f.name, 'value', f.value, 'value_type', f.value_type,
        'status', ccv_effective_status(f.status, f.expires_at), 'source', f.source,
        'source_item_id', f.source_item_id, 'source_item_type', f.source_item_type,
        'source_metadata', f.source_metadata, 'source_session_id', f.source_session_id,
        'source_scenario_id', f.source_scenario_id, 'source_step_id', f.source_step_id,
        'confidence', f.confidence, 'verified', f.verified,
        'verification_method', f.verification_method, 'verified_at', f.verified_at,
        'requires_confirmation', f.requires_confirmation, 'collected_at', f.collected_at,
        'updated_at', f.updated_at, 'expires_at', f.expires_at,
        'superseded_by_id', f.superseded_by_id, 'superseded_at', f.superseded_at,
        'deleted_at', f.deleted_at, 'is_orphaned', f.is_orphaned,
        'field_definition_id', f.field_definition_id,
        'written_by', json_build_object(
            'key_id', f.written_by_key_id, 'agent_id', f.written_by_agent_id));

CREATE OR REPLACE FUNCTION ccv_asset_doc(a profile_assets, analysis_field_ids json)
    RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN json_build_object(
        'id', a.id, 'name', a.name, 'asset_type', a.asset_type,
        'storage_provider', a.storage_provider, 'storage_path', a.storage_path,
        'mime_type', a.mime_type, 'size_bytes', a.size_bytes, 'checksum', a.checksum,
        'status', ccv_effective_status(a.status, a.expires_at),
        'source_item_id', a.source_item_id, 'source_item_type', a.source_item_type,
        'derived_from_tool', a.derived_from_tool, 'verified', a.verified,
        'verification_result', a.verification_result,
        'retention_policy', a.retention_policy, 'uploaded_at', a.uploaded_at,
        'expires_at', a.expires_at, 'superseded_by_id', a.superseded_by_id,
        'superseded_at', a.superseded_at, 'deleted_at', a.deleted_at,
        'is_orphaned', a.is_orphaned,
        'analysis_field_ids', coalesce(analysis_field_ids, '[]'::json),
        'written_by', json_build_object(
            'key_id', a.written_by_key_id, 'agent_id', a.written_by_agent_id));
"""

# -- the functions as revision 0009 had them (migrations 0001 and 0006), for downgrade ----

_OLD_LOCK_PROFILE = """
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
"""

_OLD_SAVE_FIELD = """
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
"""

_OLD_SAVE_ASSET = """
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
"""

_OLD_DOCS = """
CREATE OR REPLACE FUNCTION ccv_field_doc(f profile_fields) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN json_build_object(
        'id', f.id, 'name', f.name, 'value', f.value, 'value_type', f.value_type,
        'status', ccv_effective_status(f.status, f.expires_at), 'source', f.source,
        'source_item_id', f.source_item_id, 'source_item_type', f.source_item_type,
        'source_metadata', f.source_metadata, 'source_session_id', f.source_session_id,
        'source_scenario_id', f.source_scenario_id, 'source_step_id', f.source_step_id,
        'confidence', f.confidence, 'verified', f.verified,
        'verification_method', f.verification_method, 'verified_at', f.verified_at,
        'requires_confirmation', f.requires_confirmation, 'collected_at', f.collected_at,
        'updated_at', f.updated_at, 'expires_at', f.expires_at,
        'superseded_by_id', f.superseded_by_id, 'superseded_at', f.superseded_at,
        'deleted_at', f.deleted_at, 'is_orphaned', f.is_orphaned,
        'field_definition_id', f.field_definition_id);

CREATE OR REPLACE FUNCTION ccv_asset_doc(a profile_assets, analysis_field_ids json)
    RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN json_build_object(
        'id', a.id, 'name', a.name, 'asset_type', a.asset_type,
        'storage_provider', a.storage_provider, 'storage_path', a.storage_path,
        'mime_type', a.mime_type, 'size_bytes', a.size_bytes, 'checksum', a.checksum,
        'status', ccv_effective_status(a.status, a.expires_at),
        'source_item_id', a.source_item_id, 'source_item_type', a.source_item_type,
        'derived_from_tool', a.derived_from_tool, 'verified', a.verified,
        'verification_result', a.verification_result,
        'retention_policy', a.retention_policy, 'uploaded_at', a.uploaded_at,
        'expires_at', a.expires_at, 'superseded_by_id', a.superseded_by_id,
        'superseded_at', a.superseded_at, 'deleted_at', a.deleted_at,
        'is_orphaned', a.is_orphaned,
        'analysis_field_ids', coalesce(analysis_field_ids, '[]'::json));
"""

_DROP_WRITE_FUNCTIONS = """
DROP FUNCTION ccv_save_asset(uuid, text, uuid, text, text, text, text, text, bigint, text,
                             text, text, uuid, text, text, timestamptz{asset_extra});
DROP FUNCTION ccv_save_field(uuid, text, uuid, text, jsonb, text, text, text, text, uuid,
                             jsonb, text, text, text, double precision, boolean, text,
                             timestamptz, boolean, timestamptz, integer, uuid{field_extra});
DROP FUNCTION ccv_lock_profile(uuid, text, boolean, boolean{lock_extra});
"""


def upgrade() -> None:
    """Vocabulary, list indexes, key columns, written_by, and the functions that use them."""
    op.execute(f"""
    UPDATE customer_profiles SET verification_level = 'unverified'
     WHERE verification_level NOT IN ({_LEVEL_LIST});
    ALTER TABLE customer_profiles
        ALTER COLUMN verification_level SET DEFAULT 'unverified',
        ADD CONSTRAINT customer_profiles_verification_level_check
            CHECK (verification_level IN ({_LEVEL_LIST}));
    -- The list's order, newest minute first by a backward scan (see the docstring).
    ALTER TABLE customer_profiles ADD COLUMN list_minute timestamptz
        GENERATED ALWAYS AS (
            date_bin('1 minute', updated_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')) STORED;
    CREATE INDEX customer_profiles_list_idx
        ON customer_profiles (tenant_id, list_minute) WHERE deleted_at IS NULL;
    -- An id prefix is one range in byte order, whatever the database's collation.
    CREATE INDEX customer_profiles_prefix_idx
        ON customer_profiles (tenant_id, customer_id COLLATE "C") WHERE deleted_at IS NULL;

    ALTER TABLE api_keys
        ADD COLUMN label text CHECK (char_length(label) BETWEEN 1 AND 100),
        ADD COLUMN last_used_at timestamptz;

    ALTER TABLE profile_fields
        ADD COLUMN written_by_key_id uuid, ADD COLUMN written_by_agent_id text;
    ALTER TABLE profile_assets
        ADD COLUMN written_by_key_id uuid, ADD COLUMN written_by_agent_id text;
    """)  # noqa: S608 - constant fragments, no input
    op.execute(_DROP_WRITE_FUNCTIONS.format(asset_extra="", field_extra="", lock_extra=""))
    op.execute(_DOCS)
    op.execute(_LOCK_PROFILE)
    op.execute(_SAVE_FIELD)
    op.execute(_SAVE_ASSET)
    # Profiles cached before this revision lack written_by and show the old level: retire
    # them (every process lifts Redis's epoch to this one within a second).
    op.execute("UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1")


def downgrade() -> None:
    """Back to 0009's functions and columns; verification levels keep their values."""
    op.execute(
        _DROP_WRITE_FUNCTIONS.format(
            asset_extra=", uuid, text, bigint[]",
            field_extra=", uuid, text, bigint[]",
            lock_extra=", bigint[]",
        )
    )
    op.execute(_OLD_LOCK_PROFILE)
    op.execute(_OLD_SAVE_FIELD)
    op.execute(_OLD_SAVE_ASSET)
    op.execute(_OLD_DOCS)
    op.execute("""
    ALTER TABLE profile_assets DROP COLUMN written_by_key_id, DROP COLUMN written_by_agent_id;
    ALTER TABLE profile_fields DROP COLUMN written_by_key_id, DROP COLUMN written_by_agent_id;
    ALTER TABLE api_keys DROP COLUMN label, DROP COLUMN last_used_at;
    DROP INDEX customer_profiles_prefix_idx, customer_profiles_list_idx;
    ALTER TABLE customer_profiles
        DROP COLUMN list_minute,
        DROP CONSTRAINT customer_profiles_verification_level_check,
        ALTER COLUMN verification_level SET DEFAULT 'none';
    UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1;
    """)
