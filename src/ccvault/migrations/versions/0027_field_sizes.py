"""Each field version keeps its size, so the profile limits no longer render the current
versions as text on every insert (issue 17, the field write's cost).

`profile_fields.value_bytes` is a stored generated column holding exactly what the
limit check of migration 0012 summed for the row, `octet_length(value::text) +
octet_length(source_metadata::text)` (an integer, as that expression is): PostgreSQL
computes it when a version is inserted or updated, whatever writes it (the write
function, imports, merges' moves, raw SQL). `ccv_check_field_limits` now sums the column
instead of casting each current version's `value` and `source_metadata` to text: one
cast per written row (at insert) instead of one per current version per insert. Same
limits, same error codes and messages; a row whose expression is NULL has a NULL column,
which sum() skips as it skipped the expression (neither column can be NULL today).
jsonb's text form depends on nothing but the value, so the stored size cannot go stale.
The check summing 20 small versions went from 18-24 to 12-13 us; for a profile holding
810 KB it went from 0.77-0.88 ms to 10-14 us a write (the old one rendered all of it).

No index was added for the check: it already finds the profile's current versions
through `profile_fields_one_current` (20 entries, 20 heap fetches). An index over current
versions that includes the size makes it an index-only scan, but only saved the check
about 4 of its 12 us with every page all-visible (the pages of a profile being written
seldom are), while every write would pay one more index entry.

Readers name their columns (ccv_field_doc, the as-of and export documents, the change
feed; imports COPY an explicit column list into a table of their own); a generated
column takes no value in an INSERT or COPY, and none of our writers names it. Only raw
row reads (`SELECT *`, `to_jsonb(f)`) show the new column.

PostgreSQL refuses to add a column with a value to a table whose row type a function
with a SQL-standard body takes (ccv_field_doc, ccv_asof_field_doc): they are dropped and
created again from their own definitions, as PostgreSQL prints them, in the same
transaction. Adding a stored generated column rewrites profile_fields once (ACCESS
EXCLUSIVE for the rewrite), computing the size of every existing version.

Revision ID: 0027_field_sizes
Revises: 0026_implied_tenant_keys
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0027_field_sizes"
down_revision = "0026_implied_tenant_keys"
branch_labels = None
depends_on = None

# Keep equal to domain/bounds.py (and migration 0012).
MAX_PROFILE_FIELDS = 200
MAX_PROFILE_VALUE_BYTES = 1024 * 1024

# What migration 0012's check summed for one row, and now stores.
ROW_BYTES = "octet_length(value::text) + octet_length(source_metadata::text)"

# The functions taking a profile_fields row, each before the one it calls.
_ROW_TYPE_FUNCTIONS = (
    "ccv_asof_field_doc(profile_fields, timestamptz)",
    "ccv_field_doc(profile_fields)",
)

_CHECK = """
-- The current fields of one profile within their count and rendered size.
CREATE OR REPLACE FUNCTION ccv_check_field_limits(p_tenant_id uuid, p_profile_id uuid)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    fields integer;
    bytes bigint;
BEGIN
    SELECT count(*), coalesce(sum({size}), 0)
      INTO fields, bytes
      FROM profile_fields
     WHERE tenant_id = p_tenant_id AND profile_id = p_profile_id
       AND superseded_at IS NULL AND deleted_at IS NULL;
    IF fields > {max_fields} THEN
        RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'profile_fields_limit';
    END IF;
    IF bytes > {max_bytes} THEN
        RAISE EXCEPTION USING ERRCODE = 'CV422', MESSAGE = 'profile_bytes_limit';
    END IF;
END $$;
"""


def _check(size: str) -> str:
    return _CHECK.format(
        size=size, max_fields=MAX_PROFILE_FIELDS, max_bytes=MAX_PROFILE_VALUE_BYTES
    )


def upgrade() -> None:
    bind = op.get_bind()
    # PostgreSQL refuses to add a column with a value to a table whose row type a
    # function with a SQL-standard body takes ("cannot alter table "profile_fields"
    # because function ccv_field_doc(profile_fields) uses its row type"): those functions
    # are dropped and created again as they are now, in this transaction (nothing else
    # sees them missing). DROP without CASCADE: a new dependant fails here, loudly.
    definitions = [
        bind.exec_driver_sql(
            "SELECT pg_get_functiondef(%(f)s::regprocedure)", {"f": function}
        ).scalar_one()
        for function in _ROW_TYPE_FUNCTIONS
    ]
    for function in _ROW_TYPE_FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute(f"""
    ALTER TABLE profile_fields
        ADD COLUMN value_bytes integer GENERATED ALWAYS AS ({ROW_BYTES}) STORED;
    COMMENT ON COLUMN profile_fields.value_bytes IS
        'Bytes of value and source_metadata as text: what the profile limits sum (0027)';
    """)
    for definition in reversed(definitions):
        bind.exec_driver_sql(definition)  # as PostgreSQL printed it: no bind parameters
    op.execute(_check("value_bytes"))


def downgrade() -> None:
    op.execute(_check(ROW_BYTES))
    op.execute("ALTER TABLE profile_fields DROP COLUMN value_bytes")
