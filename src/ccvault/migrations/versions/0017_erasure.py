"""Erasure: deleting a customer for good, following lineage, with a receipt.

- `erasure_receipts` keeps what an erasure may keep: when, how many rows of each kind,
  the caller's reason, and `subject_hash` (an HMAC of the customer id under the tenant's
  secret, migration 0009; computed by the service): no id, no value.
- `ccv_descendants` is the lineage closure downwards (recursive CTE), shared by the two
  passes of an erasure.
- `ccv_erase_profile` deletes (rows gone, not flagged) every version of every field and
  asset of a profile, its identities, consents, aliases and the profile row, and every
  item of the tenant derived from one of them, transitively, in any profile; the
  profiles that lose derived items get a new version. Set-based: one DELETE per table
  per pass.
- `ccv_check_source` now takes a KEY SHARE lock on the source row it checks (the
  weakest lock: supersedes, soft deletes and merge moves of the source do not wait for
  it; only a DELETE or FOR UPDATE does, and only an erasure takes those), NOWAIT: a
  source an erasure holds fails the write at once (SQLSTATE 55P03, answered as 422
  source_not_found) instead of waiting with its own profile locked, which could
  deadlock with the erasure reaching for that profile.

Order against everything else that writes (README "Erasure"): every writer of a profile
holds its row lock (ccv_lock_profile; a merge locks both sides; orphan detection locks
its profiles) from before it touches an item to its commit, and the erasure takes the
same lock first. So a writer that got the lock first commits before the erasure reads
anything, and its rows are erased with the rest; one that waited sees the row gone and
either fails with 404 (routes that need the profile) or creates a fresh, empty profile
(writes that create one): strictly after the erasure. The one writer that touches an
erased item without the profile's lock is a write in another profile deriving from it:
its KEY SHARE lock makes the erasure's DELETE wait for its commit, after which the
second pass (a fresh snapshot) sees the new item and deletes it too; one that arrives
after the DELETE is refused at once (source_not_found). Expiry updates items without
the profile lock, by the ctid it read: a deleted row no longer matches.

Revision ID: 0017_erasure
Revises: 0016_purposes
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0017_erasure"
down_revision = "0016_purposes"
branch_labels = None
depends_on = None

_CHECK_SOURCE_LOCKING = """
CREATE OR REPLACE FUNCTION ccv_check_source(p_tenant_id uuid, p_source_uuid uuid, p_kind text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    found_deleted timestamptz;
BEGIN
    IF p_source_uuid IS NULL THEN
        RETURN;
    END IF;
    -- KEY SHARE until commit: an erasure deleting the source waits for this write, so it
    -- sees (and erases) what this write derives from it. NOWAIT: a source an erasure
    -- already holds is going; waiting for it with our profile locked could deadlock.
    IF p_kind = 'profile_field' THEN
        SELECT deleted_at INTO found_deleted FROM profile_fields
         WHERE tenant_id = p_tenant_id AND id = p_source_uuid FOR KEY SHARE NOWAIT;
    ELSIF p_kind = 'profile_asset' THEN
        SELECT deleted_at INTO found_deleted FROM profile_assets
         WHERE tenant_id = p_tenant_id AND id = p_source_uuid FOR KEY SHARE NOWAIT;
    END IF;
    IF NOT FOUND OR p_kind NOT IN ('profile_field', 'profile_asset') THEN
        RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'source_not_found';
    END IF;
    IF found_deleted IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'source_deleted';
    END IF;
END $$;
"""

_CHECK_SOURCE_0006 = """
CREATE OR REPLACE FUNCTION ccv_check_source(p_tenant_id uuid, p_source_uuid uuid, p_kind text)
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
"""


def upgrade() -> None:
    op.execute("""
    CREATE TABLE erasure_receipts (
        id uuid NOT NULL,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        -- hex HMAC-SHA256: never the customer id itself
        subject_hash text NOT NULL CHECK (subject_hash ~ '^[0-9a-f]{64}$'),
        erased_at timestamptz NOT NULL,
        fields bigint NOT NULL CHECK (fields >= 0),
        assets bigint NOT NULL CHECK (assets >= 0),
        identities bigint NOT NULL CHECK (identities >= 0),
        consents bigint NOT NULL CHECK (consents >= 0),
        derived_items bigint NOT NULL CHECK (derived_items >= 0),
        reason text CHECK (length(reason) <= 500),
        -- tenant_id in the key, as on every tenant table (migration 0014: shard-ready)
        PRIMARY KEY (id, tenant_id)
    );
    CREATE INDEX erasure_receipts_tenant_idx ON erasure_receipts (tenant_id, erased_at DESC, id);

    -- Every item of the tenant deriving, directly or not, from one of p_seeds (the seeds
    -- themselves left out). UNION, not UNION ALL: a diamond is visited once.
    CREATE FUNCTION ccv_descendants(p_tenant_id uuid, p_seeds uuid[]) RETURNS SETOF uuid
    LANGUAGE sql STABLE AS $$
        WITH RECURSIVE down (id) AS (
            SELECT unnest(p_seeds)
            UNION
            SELECT d.id
              FROM down c
             CROSS JOIN LATERAL (
                SELECT f.id FROM profile_fields f
                 WHERE f.tenant_id = p_tenant_id AND f.source_uuid = c.id
                UNION ALL
                SELECT s.id FROM profile_assets s
                 WHERE s.tenant_id = p_tenant_id AND s.source_uuid = c.id) d
        )
        SELECT id FROM down WHERE id NOT IN (SELECT unnest(p_seeds))
    $$;
    """)
    op.execute(_CHECK_SOURCE_LOCKING)
    op.execute("""
    -- Erase one profile (an alias erases its target); see the module docstring for the
    -- order against other writers. Raises CV404 when there is no such profile, CV409 when
    -- merges kept retiring it while we waited. Returns the erased customer id and version,
    -- the row counts, and the profiles that lost derived items with their new versions.
    CREATE FUNCTION ccv_erase_profile(
        p_tenant_id uuid, p_customer_id text,
        OUT customer_id text, OUT erased_version bigint,
        OUT fields bigint, OUT assets bigint, OUT identities bigint, OUT consents bigint,
        OUT derived_items bigint, OUT touched_customer_ids text[], OUT touched_versions bigint[])
    -- The recursive closure's row estimates are pessimistic (each level 10x the last),
    -- which puts its cost past jit_above_cost: compiling it took ~1 s per statement for a
    -- walk that runs in milliseconds. No statement here gains from JIT.
    LANGUAGE plpgsql SET jit = off AS $$
    DECLARE
        profile uuid;
        merged uuid;
        doomed uuid[];
        gone uuid[] := '{}';
        losers uuid[] := '{}';
        more uuid[];
        n_own_fields bigint;
        n_own_assets bigint;
        n_derived bigint;
    BEGIN
        -- 1. The profile row, aliases followed, locked as every writer locks it; again if
        --    a merge retired it while we waited.
        FOR attempt IN 1..5 LOOP
            SELECT p.id, p.customer_id, p.version, p.merged_into_id
              INTO profile, customer_id, erased_version, merged
              FROM customer_profiles a
              JOIN customer_profiles p ON p.id = coalesce(a.merged_into_id, a.id)
             WHERE a.tenant_id = p_tenant_id AND a.customer_id = p_customer_id
               AND p.tenant_id = p_tenant_id
               FOR UPDATE OF p;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'CV404', MESSAGE = 'no profile';
            END IF;
            EXIT WHEN merged IS NULL;
        END LOOP;
        IF merged IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CV409', MESSAGE = 'profile kept changing';
        END IF;

        -- 2. What goes (a fresh snapshot, after every writer that held the lock before us
        --    committed): the profile's items and everything derived from them.
        SELECT array_agg(i.id) INTO doomed FROM (
            SELECT id FROM profile_fields WHERE tenant_id = p_tenant_id AND profile_id = profile
            UNION ALL
            SELECT id FROM profile_assets WHERE tenant_id = p_tenant_id AND profile_id = profile
        ) i;
        doomed := coalesce(doomed, '{}');
        doomed := doomed || coalesce(
            (SELECT array_agg(d) FROM ccv_descendants(p_tenant_id, doomed) d), '{}');

        fields := 0; assets := 0; derived_items := 0;
        -- 3. Delete, then look again from what was deleted: a write deriving from one of
        --    these items that held its KEY SHARE lock made the DELETE wait for its commit,
        --    so its item is visible to the next pass. Ends when a pass finds nothing.
        WHILE cardinality(doomed) > 0 LOOP
            -- Profiles before items, in id order, as the writers and the sweeps lock.
            PERFORM 1 FROM customer_profiles
              WHERE id IN (SELECT x.profile_id FROM profile_fields x
                            WHERE x.tenant_id = p_tenant_id AND x.id IN (SELECT unnest(doomed))
                           UNION
                           SELECT x.profile_id FROM profile_assets x
                            WHERE x.tenant_id = p_tenant_id AND x.id IN (SELECT unnest(doomed)))
                AND id <> profile
              ORDER BY id FOR NO KEY UPDATE;
            WITH f AS (
                DELETE FROM profile_fields x
                 WHERE x.tenant_id = p_tenant_id AND x.id IN (SELECT unnest(doomed))
                RETURNING x.id, x.profile_id, 'f' AS kind
            ), a AS (
                DELETE FROM profile_assets x
                 WHERE x.tenant_id = p_tenant_id AND x.id IN (SELECT unnest(doomed))
                RETURNING x.id, x.profile_id, 'a' AS kind
            ), d AS (SELECT * FROM f UNION ALL SELECT * FROM a)
            SELECT count(*) FILTER (WHERE d.profile_id = profile AND d.kind = 'f'),
                   count(*) FILTER (WHERE d.profile_id = profile AND d.kind = 'a'),
                   count(*) FILTER (WHERE d.profile_id <> profile),
                   coalesce(array_agg(d.id), '{}'),
                   coalesce(array_agg(DISTINCT d.profile_id)
                            FILTER (WHERE d.profile_id <> profile), '{}')
              INTO n_own_fields, n_own_assets, n_derived, doomed, more
              FROM d;
            fields := fields + n_own_fields;
            assets := assets + n_own_assets;
            derived_items := derived_items + n_derived;
            gone := gone || doomed;
            losers := losers || more;
            SELECT coalesce(array_agg(d), '{}') INTO doomed
              FROM ccv_descendants(p_tenant_id, gone) d;
        END LOOP;

        DELETE FROM channel_identities WHERE tenant_id = p_tenant_id AND profile_id = profile;
        GET DIAGNOSTICS identities = ROW_COUNT;
        DELETE FROM consents WHERE tenant_id = p_tenant_id AND profile_id = profile;
        GET DIAGNOSTICS consents = ROW_COUNT;
        -- The profile and its aliases (merges point every alias at the live target).
        DELETE FROM customer_profiles
         WHERE tenant_id = p_tenant_id AND (id = profile OR merged_into_id = profile);

        -- 4. New versions for the profiles that lost derived items (caches, ETags).
        WITH bumped AS (
            UPDATE customer_profiles p
               SET version = p.version + 1, updated_at = clock_timestamp()
             WHERE p.tenant_id = p_tenant_id AND p.id IN (SELECT unnest(losers))
            RETURNING p.customer_id, p.version
        )
        SELECT coalesce(array_agg(b.customer_id), '{}'), coalesce(array_agg(b.version), '{}')
          INTO touched_customer_ids, touched_versions
          FROM bumped b;
    END $$;
    """)


def downgrade() -> None:
    op.execute("""
    DROP FUNCTION ccv_erase_profile(uuid, text);
    DROP FUNCTION ccv_descendants(uuid, uuid[]);
    DROP TABLE erasure_receipts;
    """)
    op.execute(_CHECK_SOURCE_0006)
