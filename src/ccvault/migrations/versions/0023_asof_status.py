"""As-of status as reads showed it: an orphaning the stored status recorded wins over an
expiry its sweep had not reached.

Migration 0019 decided between `orphaned` and `expired` at T by which time came first.
But an item past its `expires_at` that the expiry sweep has not flipped yet is still
stored `active`; deleting its source then flips it to `orphaned`, and from that moment
every read answers `orphaned` (a stored `orphaned` is never shown as `expired`). So when
the stored status is `orphaned`, the item is orphaned from `orphaned_at` on, whatever its
`expires_at`; when it is `expired`, the orphaning (if any) never changed what reads showed.
Only a version superseded since keeps no trace of which it was: for it the first time
still decides.

Revision ID: 0023_asof_status
Revises: 0022_history_retention
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0023_asof_status"
down_revision = "0022_history_retention"
branch_labels = None
depends_on = None

_DOCS = """
CREATE OR REPLACE FUNCTION ccv_asof_field_doc(f profile_fields, t timestamptz) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (ccv_field_doc(f)::jsonb || jsonb_build_object(
        'status', {field_status},
        'superseded_by_id', CASE WHEN f.superseded_at <= t THEN f.superseded_by_id END,
        'superseded_at', CASE WHEN f.superseded_at <= t THEN f.superseded_at END,
        'deleted_at', CASE WHEN f.deleted_at <= t THEN f.deleted_at END,
        'is_orphaned', coalesce(f.orphaned_at <= t, false),
        'updated_at', CASE WHEN f.updated_at <= t THEN f.updated_at ELSE greatest(
            f.collected_at,
            CASE WHEN f.superseded_at <= t THEN f.superseded_at END,
            CASE WHEN f.deleted_at <= t THEN f.deleted_at END,
            CASE WHEN f.orphaned_at <= t THEN f.orphaned_at END) END))::json;

CREATE OR REPLACE FUNCTION ccv_asof_asset_doc(a profile_assets, t timestamptz,
                                              analysis_field_ids json)
    RETURNS json LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (ccv_asset_doc(a, analysis_field_ids)::jsonb || jsonb_build_object(
        'status', {asset_status},
        'superseded_by_id', CASE WHEN a.superseded_at <= t THEN a.superseded_by_id END,
        'superseded_at', CASE WHEN a.superseded_at <= t THEN a.superseded_at END,
        'deleted_at', CASE WHEN a.deleted_at <= t THEN a.deleted_at END,
        'is_orphaned', coalesce(a.orphaned_at <= t, false)))::json;
"""


def upgrade() -> None:
    op.execute("""
    -- An item's status at T (every time in it known, T included): superseded wins; then
    -- orphaned from orphaned_at on when the stored status says the orphaning is what
    -- reads showed (or, for a version superseded since, when it came before the expiry);
    -- then expired from expires_at on; else active.
    CREATE FUNCTION ccv_asof_status(status text, superseded_at timestamptz,
                                    orphaned_at timestamptz, expires_at timestamptz,
                                    t timestamptz) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN CASE WHEN superseded_at <= t THEN 'superseded'
                    WHEN orphaned_at <= t
                         AND (status = 'orphaned'
                              OR (status = 'superseded'
                                  AND (expires_at IS NULL OR orphaned_at < expires_at)))
                        THEN 'orphaned'
                    WHEN expires_at <= t THEN 'expired'
                    ELSE 'active' END;
    """)
    op.execute(
        _DOCS.format(
            field_status="ccv_asof_status(f.status, f.superseded_at, f.orphaned_at, "
            "f.expires_at, t)",
            asset_status="ccv_asof_status(a.status, a.superseded_at, a.orphaned_at, "
            "a.expires_at, t)",
        )
    )
    op.execute("DROP FUNCTION ccv_asof_status(timestamptz, timestamptz, timestamptz, timestamptz)")


def downgrade() -> None:
    op.execute("""
    CREATE FUNCTION ccv_asof_status(superseded_at timestamptz, orphaned_at timestamptz,
                                    expires_at timestamptz, t timestamptz) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN CASE WHEN superseded_at <= t THEN 'superseded'
                    WHEN orphaned_at <= t AND (expires_at IS NULL OR orphaned_at < expires_at)
                        THEN 'orphaned'
                    WHEN expires_at <= t THEN 'expired'
                    ELSE 'active' END;
    """)
    op.execute(
        _DOCS.format(
            field_status="ccv_asof_status(f.superseded_at, f.orphaned_at, f.expires_at, t)",
            asset_status="ccv_asof_status(a.superseded_at, a.orphaned_at, a.expires_at, t)",
        )
    )
    op.execute(
        "DROP FUNCTION ccv_asof_status(text, timestamptz, timestamptz, timestamptz, timestamptz)"
    )
