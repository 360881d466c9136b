"""Core vault: tenants and API keys, profiles, identities, consents, fields, assets, lineage view.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

ITEM_STATUS = "CHECK (status IN ('active', 'superseded', 'expired', 'orphaned'))"
SOURCE_TYPE = (
    "CHECK (source_item_type IS NULL OR source_item_type IN "
    "('profile_field', 'profile_asset', 'session', 'tool', 'external'))"
)
# Only references to our own items are UUIDs we can follow; outside references stay text.
SOURCE_UUID = (
    "source_uuid uuid GENERATED ALWAYS AS (CASE WHEN source_item_type IN "
    "('profile_field', 'profile_asset') THEN source_item_id::uuid END) STORED"
)


def upgrade() -> None:
    op.execute("""
    CREATE TABLE tenants (
        id uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        validation_mode text NOT NULL CHECK (validation_mode IN ('strict', 'warn', 'disabled')),
        created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        key_hash bytea NOT NULL UNIQUE,
        key_prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    );
    CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

    CREATE TABLE customer_profiles (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        customer_id text NOT NULL,
        verification_level text NOT NULL DEFAULT 'none',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        merged_into_id uuid REFERENCES customer_profiles (id),
        UNIQUE (tenant_id, customer_id),
        CHECK (merged_into_id IS NULL OR deleted_at IS NOT NULL),
        CHECK (merged_into_id <> id)
    );
    CREATE INDEX customer_profiles_merged_into_idx ON customer_profiles (merged_into_id)
        WHERE merged_into_id IS NOT NULL;

    CREATE TABLE channel_identities (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        profile_id uuid NOT NULL REFERENCES customer_profiles (id),
        channel text NOT NULL,
        channel_user_id text NOT NULL,
        verified boolean NOT NULL DEFAULT false,
        is_primary boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, channel, channel_user_id)
    );
    CREATE INDEX channel_identities_profile_idx ON channel_identities (profile_id);
    CREATE UNIQUE INDEX channel_identities_one_primary ON channel_identities (profile_id)
        WHERE is_primary;

    CREATE TABLE consents (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        profile_id uuid NOT NULL REFERENCES customer_profiles (id),
        consent_type text NOT NULL,
        granted boolean NOT NULL,
        granted_at timestamptz,
        revoked_at timestamptz,
        source_session_id text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (profile_id, consent_type)
    );
    """)
    op.execute(f"""
    CREATE TABLE profile_fields (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        profile_id uuid NOT NULL REFERENCES customer_profiles (id),
        name text NOT NULL,
        value jsonb NOT NULL,
        value_type text NOT NULL,
        status text NOT NULL DEFAULT 'active' {ITEM_STATUS},
        source text NOT NULL,
        source_item_id text,
        source_item_type text {SOURCE_TYPE},
        {SOURCE_UUID},
        source_metadata jsonb NOT NULL DEFAULT '{{}}',
        source_session_id text,
        source_scenario_id text,
        source_step_id text,
        confidence double precision NOT NULL DEFAULT 1.0 CHECK (confidence BETWEEN 0 AND 1),
        verified boolean NOT NULL DEFAULT false,
        verification_method text,
        verified_at timestamptz,
        requires_confirmation boolean NOT NULL DEFAULT false,
        collected_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        superseded_by_id uuid,
        superseded_at timestamptz,
        deleted_at timestamptz,
        is_orphaned boolean NOT NULL DEFAULT false,
        field_definition_id uuid,
        CHECK (source_item_id IS NULL OR source_item_id <> id::text)
    );
    -- The invariant: one live version per (tenant, customer, name), whatever the writers do.
    CREATE UNIQUE INDEX profile_fields_one_active
        ON profile_fields (tenant_id, profile_id, name)
        WHERE status = 'active' AND deleted_at IS NULL;
    -- The versions a new write supersedes (active, expired or orphaned, not deleted).
    CREATE INDEX profile_fields_current_idx ON profile_fields (tenant_id, profile_id, name)
        WHERE status IN ('active', 'expired', 'orphaned') AND deleted_at IS NULL;
    CREATE INDEX profile_fields_history_idx
        ON profile_fields (profile_id, name, collected_at DESC);
    CREATE INDEX profile_fields_source_idx ON profile_fields (source_uuid)
        WHERE source_uuid IS NOT NULL;
    CREATE INDEX profile_fields_expiry_idx ON profile_fields (expires_at)
        WHERE status = 'active' AND expires_at IS NOT NULL;

    CREATE TABLE profile_assets (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        profile_id uuid NOT NULL REFERENCES customer_profiles (id),
        name text NOT NULL,
        asset_type text NOT NULL,
        storage_provider text NOT NULL,
        storage_path text NOT NULL,
        mime_type text NOT NULL,
        size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
        checksum text NOT NULL,
        status text NOT NULL DEFAULT 'active' {ITEM_STATUS},
        source_item_id text,
        source_item_type text {SOURCE_TYPE},
        {SOURCE_UUID},
        derived_from_tool text,
        verified boolean NOT NULL DEFAULT false,
        verification_result jsonb,
        retention_policy text NOT NULL DEFAULT 'permanent',
        uploaded_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        superseded_by_id uuid,
        superseded_at timestamptz,
        deleted_at timestamptz,
        is_orphaned boolean NOT NULL DEFAULT false,
        CHECK (source_item_id IS NULL OR source_item_id <> id::text)
    );
    CREATE UNIQUE INDEX profile_assets_one_active
        ON profile_assets (tenant_id, profile_id, name)
        WHERE status = 'active' AND deleted_at IS NULL;
    CREATE INDEX profile_assets_current_idx ON profile_assets (tenant_id, profile_id, name)
        WHERE status IN ('active', 'expired', 'orphaned') AND deleted_at IS NULL;
    CREATE INDEX profile_assets_profile_idx ON profile_assets (profile_id, name, uploaded_at DESC);
    CREATE INDEX profile_assets_source_idx ON profile_assets (source_uuid)
        WHERE source_uuid IS NOT NULL;
    CREATE INDEX profile_assets_expiry_idx ON profile_assets (expires_at)
        WHERE status = 'active' AND expires_at IS NOT NULL;

    -- A read never shows a passed expires_at as current, even before the expiry job ran.
    CREATE FUNCTION ccv_effective_status(status text, expires_at timestamptz) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE
        RETURN CASE WHEN status = 'active' AND expires_at <= now() THEN 'expired' ELSE status END;

    -- The public shape of an item, built where the row is, so every read agrees on it.
    -- Explicit json_build_object (not to_jsonb of the row): cheaper, and the function stays
    -- inlinable into the queries that call it.
    CREATE FUNCTION ccv_field_doc(f profile_fields) RETURNS json
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

    -- analysis_field_ids (the live fields derived from the asset) is passed in by the
    -- caller: a subquery here would keep the function from being inlined.
    CREATE FUNCTION ccv_asset_doc(a profile_assets, analysis_field_ids json) RETURNS json
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

    -- The live fields derived from an asset, for its analysis_field_ids.
    CREATE FUNCTION ccv_analysis_field_ids(tenant uuid, asset uuid) RETURNS json
        LANGUAGE sql STABLE PARALLEL SAFE
        RETURN (SELECT json_agg(f.id ORDER BY f.collected_at)
                  FROM profile_fields f
                 WHERE f.tenant_id = tenant AND f.source_uuid = asset
                   AND f.status = 'active' AND f.deleted_at IS NULL
                   AND (f.expires_at IS NULL OR f.expires_at > now()));

    -- Fields and assets as one graph, so lineage is a single recursive query over both.
    CREATE VIEW lineage_items AS
        SELECT id, tenant_id, 'profile_field'::text AS item_type, name,
               ccv_effective_status(status, expires_at) AS status, expires_at,
               deleted_at, source_item_id, source_item_type, source_uuid
          FROM profile_fields
        UNION ALL
        SELECT id, tenant_id, 'profile_asset'::text, name,
               ccv_effective_status(status, expires_at), expires_at,
               deleted_at, source_item_id, source_item_type, source_uuid
          FROM profile_assets;
    """)  # noqa: S608 - constant fragments, no input


def downgrade() -> None:
    op.execute("""
    DROP VIEW lineage_items;
    DROP FUNCTION ccv_analysis_field_ids(uuid, uuid);
    DROP FUNCTION ccv_asset_doc(profile_assets, json);
    DROP FUNCTION ccv_field_doc(profile_fields);
    DROP FUNCTION ccv_effective_status(text, timestamptz);
    DROP TABLE profile_assets;
    DROP TABLE profile_fields;
    DROP TABLE consents;
    DROP TABLE channel_identities;
    DROP TABLE customer_profiles;
    DROP TABLE api_keys;
    DROP TABLE tenants;
    """)
