"""Reads as of an instant (DESIGN §8 "Time"): what the vault must remember to answer them.

Supersedes, soft deletes, `collected_at` and `expires_at` already date every version. What
was missing, and is kept from here on:

- `orphaned_at` on fields and assets: when an item lost its source. A trigger stamps it
  when `is_orphaned` turns true, whichever statement does it (a delete's dependents, the
  orphan sweeps' window functions, anything later): the statements stay as they are. It
  fires only on updates that set `is_orphaned` (`UPDATE OF`) and the column is in no index,
  so status changes stay HOT (migration 0007).
- `origin_profile_id` on fields, assets and identities: the profile an item was written to
  when a merge has moved it since (NULL: it never moved). A trigger fills it on the
  updates that move items (`UPDATE OF profile_id`: only merges do), so the target as of
  before a merge shows only its own facts.
- `profile_merges`: which profile was merged into which, and when. Aliases are re-pointed
  at the latest target by later merges, so `customer_profiles.merged_into_id` alone loses
  the chain (A into B, then B into C) an as-of read must follow. Filled by a trigger when a
  profile's `merged_into_id` is first set.
- `consent_history`: every consent answer (a row per insert or update of `consents`,
  trigger-filled, so a write, an import and a merge all leave one). An answer written by
  the statement's own transaction is dated by its `updated_at`; one carried over from
  another profile by a merge (an older `updated_at`) by the clock, so it counts for the
  target only from the merge on.

The two new tables are keyed and refer to profiles with `tenant_id` (migration 0014) and
go with their profile (`ON DELETE CASCADE`): an erasure, which deletes the profile and its
aliases, takes their consent history and merge records with it, without touching
`ccv_erase_profile`. Rows written before this migration: consents get one history row
dated by their `updated_at`; orphaned items get the deletion time of their source (when
it still exists) or their own last change; items moved by earlier merges cannot be told
from the target's own.

Revision ID: 0019_asof_reads
Revises: 0018_cache_key_secret
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0019_asof_reads"
down_revision = "0018_cache_key_secret"
branch_labels = None
depends_on = None

_ITEM_TABLES = ("profile_fields", "profile_assets")


def upgrade() -> None:
    op.execute("""
    ALTER TABLE profile_fields ADD COLUMN orphaned_at timestamptz,
                               ADD COLUMN origin_profile_id uuid;
    ALTER TABLE profile_assets ADD COLUMN orphaned_at timestamptz,
                               ADD COLUMN origin_profile_id uuid;
    ALTER TABLE channel_identities ADD COLUMN origin_profile_id uuid;

    -- Items orphaned before this migration: dated by their source's deletion (the
    -- orphaning followed it in the same transaction), else by their own last change.
    UPDATE profile_fields f
       SET orphaned_at = coalesce(
               (SELECT min(s.deleted_at) FROM (
                    SELECT deleted_at FROM profile_fields x
                     WHERE x.id = f.source_uuid AND x.tenant_id = f.tenant_id
                    UNION ALL
                    SELECT deleted_at FROM profile_assets x
                     WHERE x.id = f.source_uuid AND x.tenant_id = f.tenant_id) s),
               f.updated_at)
     WHERE f.is_orphaned;
    UPDATE profile_assets a
       SET orphaned_at = coalesce(
               (SELECT min(s.deleted_at) FROM (
                    SELECT deleted_at FROM profile_fields x
                     WHERE x.id = a.source_uuid AND x.tenant_id = a.tenant_id
                    UNION ALL
                    SELECT deleted_at FROM profile_assets x
                     WHERE x.id = a.source_uuid AND x.tenant_id = a.tenant_id) s),
               coalesce(a.superseded_at, a.uploaded_at))
     WHERE a.is_orphaned;

    -- An item's status at T (every time in it known, T included): superseded wins; then
    -- whichever came first of orphaning and expiry (by their times, not by when a sweep
    -- got to them); else active.
    CREATE FUNCTION ccv_asof_status(superseded_at timestamptz, orphaned_at timestamptz,
                                    expires_at timestamptz, t timestamptz) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN CASE WHEN superseded_at <= t THEN 'superseded'
                    WHEN orphaned_at <= t AND (expires_at IS NULL OR orphaned_at < expires_at)
                        THEN 'orphaned'
                    WHEN expires_at <= t THEN 'expired'
                    ELSE 'active' END;

    -- An item's public document as it read at T: its status then, and nothing that
    -- happened after T (a later supersede, delete or orphaning). Built on the current
    -- document (whatever keys later migrations give it) with the time-bound keys replaced.
    CREATE FUNCTION ccv_asof_field_doc(f profile_fields, t timestamptz) RETURNS json
        LANGUAGE sql STABLE PARALLEL SAFE
        RETURN (ccv_field_doc(f)::jsonb || jsonb_build_object(
            'status', ccv_asof_status(f.superseded_at, f.orphaned_at, f.expires_at, t),
            'superseded_by_id', CASE WHEN f.superseded_at <= t THEN f.superseded_by_id END,
            'superseded_at', CASE WHEN f.superseded_at <= t THEN f.superseded_at END,
            'deleted_at', CASE WHEN f.deleted_at <= t THEN f.deleted_at END,
            'is_orphaned', coalesce(f.orphaned_at <= t, false),
            'updated_at', CASE WHEN f.updated_at <= t THEN f.updated_at ELSE greatest(
                f.collected_at,
                CASE WHEN f.superseded_at <= t THEN f.superseded_at END,
                CASE WHEN f.deleted_at <= t THEN f.deleted_at END,
                CASE WHEN f.orphaned_at <= t THEN f.orphaned_at END) END))::json;

    CREATE FUNCTION ccv_asof_asset_doc(a profile_assets, t timestamptz, analysis_field_ids json)
        RETURNS json LANGUAGE sql STABLE PARALLEL SAFE
        RETURN (ccv_asset_doc(a, analysis_field_ids)::jsonb || jsonb_build_object(
            'status', ccv_asof_status(a.superseded_at, a.orphaned_at, a.expires_at, t),
            'superseded_by_id', CASE WHEN a.superseded_at <= t THEN a.superseded_by_id END,
            'superseded_at', CASE WHEN a.superseded_at <= t THEN a.superseded_at END,
            'deleted_at', CASE WHEN a.deleted_at <= t THEN a.deleted_at END,
            'is_orphaned', coalesce(a.orphaned_at <= t, false)))::json;

    CREATE FUNCTION ccv_asof_stamp_orphaned() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.orphaned_at := clock_timestamp();
        RETURN NEW;
    END $$;

    -- Only merges move items between profiles; the first move names the origin.
    CREATE FUNCTION ccv_asof_keep_origin() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.origin_profile_id := coalesce(OLD.origin_profile_id, OLD.profile_id);
        RETURN NEW;
    END $$;
    """)
    for table in _ITEM_TABLES:
        op.execute(f"""
        CREATE TRIGGER ccv_asof_orphaned_at BEFORE UPDATE OF is_orphaned ON {table}
            FOR EACH ROW WHEN (NEW.is_orphaned AND NOT OLD.is_orphaned)
            EXECUTE FUNCTION ccv_asof_stamp_orphaned();
        """)
    for table in (*_ITEM_TABLES, "channel_identities"):
        op.execute(f"""
        CREATE TRIGGER ccv_asof_origin BEFORE UPDATE OF profile_id ON {table}
            FOR EACH ROW WHEN (NEW.profile_id IS DISTINCT FROM OLD.profile_id)
            EXECUTE FUNCTION ccv_asof_keep_origin();
        """)
    op.execute("""
    CREATE TABLE profile_merges (
        tenant_id uuid NOT NULL,
        source_profile_id uuid NOT NULL,
        target_profile_id uuid NOT NULL,
        merged_at timestamptz NOT NULL,
        -- A profile is merged away once: afterwards its id is an alias.
        PRIMARY KEY (source_profile_id, tenant_id),
        FOREIGN KEY (source_profile_id, tenant_id)
            REFERENCES customer_profiles (id, tenant_id) ON DELETE CASCADE,
        FOREIGN KEY (target_profile_id, tenant_id)
            REFERENCES customer_profiles (id, tenant_id) ON DELETE CASCADE
    );
    CREATE INDEX profile_merges_target_idx ON profile_merges (target_profile_id, tenant_id);

    CREATE FUNCTION ccv_asof_record_merge() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO profile_merges (tenant_id, source_profile_id, target_profile_id, merged_at)
        VALUES (NEW.tenant_id, NEW.id, NEW.merged_into_id, clock_timestamp());
        RETURN NULL;
    END $$;
    -- The version bumps of every write leave merged_into_id out of their SET list: this
    -- trigger is not even looked at for them.
    CREATE TRIGGER ccv_asof_merge AFTER UPDATE OF merged_into_id ON customer_profiles
        FOR EACH ROW WHEN (OLD.merged_into_id IS NULL AND NEW.merged_into_id IS NOT NULL)
        EXECUTE FUNCTION ccv_asof_record_merge();

    CREATE TABLE consent_history (
        tenant_id uuid NOT NULL,
        profile_id uuid NOT NULL,
        consent_type text NOT NULL,
        -- Order of the answers (one profile's are serialized by its lock).
        seq bigint GENERATED ALWAYS AS IDENTITY,
        recorded_at timestamptz NOT NULL,
        granted boolean NOT NULL,
        granted_at timestamptz,
        revoked_at timestamptz,
        source_session_id text,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (profile_id, consent_type, seq, tenant_id),
        FOREIGN KEY (profile_id, tenant_id)
            REFERENCES customer_profiles (id, tenant_id) ON DELETE CASCADE
    );
    INSERT INTO consent_history (tenant_id, profile_id, consent_type, recorded_at, granted,
                                 granted_at, revoked_at, source_session_id, updated_at)
    SELECT tenant_id, profile_id, consent_type, updated_at, granted, granted_at, revoked_at,
           source_session_id, updated_at
      FROM consents;

    CREATE FUNCTION ccv_asof_record_consent() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO consent_history (tenant_id, profile_id, consent_type, recorded_at,
                                     granted, granted_at, revoked_at, source_session_id,
                                     updated_at)
        VALUES (NEW.tenant_id, NEW.profile_id, NEW.consent_type,
                -- An answer given in this transaction is dated as given; one a merge
                -- carries over from another profile counts here from now on.
                CASE WHEN NEW.updated_at >= now() THEN NEW.updated_at
                     ELSE clock_timestamp() END,
                NEW.granted, NEW.granted_at, NEW.revoked_at, NEW.source_session_id,
                NEW.updated_at);
        RETURN NULL;
    END $$;
    CREATE TRIGGER ccv_asof_consent AFTER INSERT OR UPDATE ON consents
        FOR EACH ROW EXECUTE FUNCTION ccv_asof_record_consent();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER ccv_asof_consent ON consents;
    DROP FUNCTION ccv_asof_record_consent();
    DROP TABLE consent_history;
    DROP TRIGGER ccv_asof_merge ON customer_profiles;
    DROP FUNCTION ccv_asof_record_merge();
    DROP TABLE profile_merges;
    """)
    for table in (*_ITEM_TABLES, "channel_identities"):
        op.execute(f"DROP TRIGGER ccv_asof_origin ON {table}")
    for table in _ITEM_TABLES:
        op.execute(f"DROP TRIGGER ccv_asof_orphaned_at ON {table}")
    op.execute("""
    DROP FUNCTION ccv_asof_keep_origin();
    DROP FUNCTION ccv_asof_asset_doc(profile_assets, timestamptz, json);
    DROP FUNCTION ccv_asof_field_doc(profile_fields, timestamptz);
    DROP FUNCTION ccv_asof_status(timestamptz, timestamptz, timestamptz, timestamptz);
    DROP FUNCTION ccv_asof_stamp_orphaned();
    ALTER TABLE channel_identities DROP COLUMN origin_profile_id;
    ALTER TABLE profile_assets DROP COLUMN origin_profile_id, DROP COLUMN orphaned_at;
    ALTER TABLE profile_fields DROP COLUMN origin_profile_id, DROP COLUMN orphaned_at;
    """)
