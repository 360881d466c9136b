"""Lifecycle of fields and assets: supersession, effective expiry, soft delete, orphaning,
and which items may be a new item's source."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ccvault.domain.errors import InvalidInput, NotFound
from ccvault.domain.models import ItemStatus
from ccvault.runtime import Vault

from .helpers import (
    count_fields,
    fetch,
    new_asset,
    new_field,
    profile_row_id,
    stored_asset,
    stored_field,
)

PAST = datetime(2020, 1, 1, tzinfo=UTC)

# -- supersession and history -------------------------------------------------------


async def test_new_value_supersedes_the_previous_version_in_the_same_transaction(
    vault: Vault, tenant_id: UUID
) -> None:
    first = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    # Read once so a cached copy exists: the next write must be visible through it.
    assert (await vault.profiles.get_profile(tenant_id, "c1")).fields["email"].id == first.id
    second = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("b@x.example"))

    assert second.status is ItemStatus.active
    assert (await vault.profiles.get_profile(tenant_id, "c1")).fields["email"].id == second.id
    old = await stored_field(vault.pool, first.id)
    assert old["status"] == "superseded"
    assert old["superseded_by_id"] == str(second.id)
    assert old["superseded_at"] is not None
    history = await vault.profiles.field_history(tenant_id, "c1", "email")
    assert [f.id for f in history] == [second.id, first.id]
    assert history[1].superseded_at is not None
    assert first.collected_at <= history[1].superseded_at <= second.collected_at
    # Same transaction: the superseding UPDATE and the INSERT carry the same xmin.
    xmins = await fetch(
        vault.pool,
        "SELECT DISTINCT xmin::text FROM profile_fields WHERE id = ANY(%s)",
        ([first.id, second.id],),
    )
    assert len(xmins) == 1
    assert (await vault.profiles.get_field(tenant_id, "c1", "email")).id == second.id


async def test_history_lists_every_version_newest_first_whatever_its_status(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    v1 = await vault.profiles.save_field(tenant_id, "c1", "nickname", new_field("a"))
    v2 = await vault.profiles.save_field(tenant_id, "c1", "nickname", new_field("b"))
    await vault.profiles.delete_field(tenant_id, "c1", "nickname")
    v3 = await vault.profiles.save_field(
        tenant_id, "c1", "nickname", new_field("c", derived_from=source)
    )
    await vault.profiles.delete_field(tenant_id, "c1", "document_id")

    history = await vault.profiles.field_history(tenant_id, "c1", "nickname")

    assert [f.id for f in history] == [v3.id, v2.id, v1.id]
    assert [f.status for f in history] == [
        ItemStatus.orphaned,
        ItemStatus.active,
        ItemStatus.superseded,
    ]
    assert history[1].deleted_at is not None
    assert history[0].is_orphaned and history[0].deleted_at is None
    profile = await vault.profiles.get_profile(tenant_id, "c1", include_history=True)
    assert profile.field_history is not None
    assert profile.field_history["nickname"] == history


async def test_history_of_a_name_never_written_is_empty_and_of_an_unknown_profile_not_found(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))

    assert await vault.profiles.field_history(tenant_id, "c1", "phone") == []
    with pytest.raises(NotFound):
        await vault.profiles.field_history(tenant_id, "nobody", "email")


async def test_saving_over_an_expired_version_supersedes_it(vault: Vault, tenant_id: UUID) -> None:
    expired = await vault.profiles.save_field(
        tenant_id, "c1", "email", new_field("a@x.example", expires_at=PAST)
    )
    assert expired.status is ItemStatus.expired

    fresh = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("b@x.example"))

    history = await vault.profiles.field_history(tenant_id, "c1", "email")
    assert [(f.id, f.status) for f in history] == [
        (fresh.id, ItemStatus.active),
        (expired.id, ItemStatus.superseded),
    ]
    assert history[1].superseded_by_id == fresh.id
    assert (await stored_field(vault.pool, expired.id))["status"] == "superseded"
    summary = (await vault.profiles.get_profile(tenant_id, "c1")).field_status_summary
    assert (summary.active, summary.superseded, summary.expired) == (1, 1, 0)


async def test_saving_over_an_orphaned_version_supersedes_it_and_keeps_the_orphan_flag(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    orphan = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )
    await vault.profiles.delete_field(tenant_id, "c1", "document_id")
    assert (await stored_field(vault.pool, orphan.id))["status"] == "orphaned"

    fresh = await vault.profiles.save_field(tenant_id, "c1", "birth_date", new_field("1990-01-02"))

    history = await vault.profiles.field_history(tenant_id, "c1", "birth_date")
    assert [(f.id, f.status) for f in history] == [
        (fresh.id, ItemStatus.active),
        (orphan.id, ItemStatus.superseded),
    ]
    assert history[1].superseded_by_id == fresh.id
    assert history[1].is_orphaned
    assert (await vault.profiles.get_field(tenant_id, "c1", "birth_date")).id == fresh.id


# -- effective expiry -------------------------------------------------------------


async def test_a_past_expires_at_hides_the_value_from_reads_without_changing_the_stored_status(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    expired = await vault.profiles.save_field(
        tenant_id, "c1", "otp", new_field("123456", expires_at=PAST)
    )

    with pytest.raises(NotFound):
        await vault.profiles.get_field(tenant_id, "c1", "otp")
    profile = await vault.profiles.get_profile(tenant_id, "c1", include_history=True)
    assert set(profile.fields) == {"email"}
    assert profile.field_history is not None
    assert [f.status for f in profile.field_history["otp"]] == [ItemStatus.expired]
    history = await vault.profiles.field_history(tenant_id, "c1", "otp")
    assert [(f.id, f.status) for f in history] == [(expired.id, ItemStatus.expired)]
    summary = profile.field_status_summary
    assert (summary.active, summary.expired, summary.superseded, summary.orphaned) == (1, 1, 0, 0)
    # Reads never write: the expiry job, not a read, persists the status.
    assert (await stored_field(vault.pool, expired.id))["status"] == "active"


async def test_a_value_stops_being_read_once_its_expires_at_passes(
    vault: Vault, tenant_id: UUID
) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=1.5)
    saved = await vault.profiles.save_field(
        tenant_id, "c1", "otp", new_field("123456", expires_at=expires_at)
    )
    assert (await vault.profiles.get_field(tenant_id, "c1", "otp")).id == saved.id
    assert "otp" in (await vault.profiles.get_profile(tenant_id, "c1")).fields

    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.3)

    with pytest.raises(NotFound):
        await vault.profiles.get_field(tenant_id, "c1", "otp")
    profile = await vault.profiles.get_profile(tenant_id, "c1")
    assert "otp" not in profile.fields
    assert profile.field_status_summary.expired == 1
    assert profile.field_status_summary.active == 0
    history = await vault.profiles.field_history(tenant_id, "c1", "otp")
    assert [f.status for f in history] == [ItemStatus.expired]
    assert (await stored_field(vault.pool, saved.id))["status"] == "active"


# -- soft delete ------------------------------------------------------------------


async def test_soft_delete_keeps_the_row_with_deleted_at_and_its_status(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    old = await vault.profiles.save_field(tenant_id, "c1", "phone", new_field("+15550000001"))
    saved = await vault.profiles.save_field(tenant_id, "c1", "phone", new_field("+15550000002"))
    assert "phone" in (await vault.profiles.get_profile(tenant_id, "c1")).fields

    deleted_id = await vault.profiles.delete_field(tenant_id, "c1", "phone")

    assert deleted_id == saved.id
    row = await stored_field(vault.pool, saved.id)
    assert row["status"] == "active" and row["deleted_at"] is not None
    with pytest.raises(NotFound):
        await vault.profiles.get_field(tenant_id, "c1", "phone")
    profile = await vault.profiles.get_profile(tenant_id, "c1")
    assert set(profile.fields) == {"email"}
    # The deleted version leaves the summary; the older superseded one is not deleted.
    summary = profile.field_status_summary
    assert (summary.active, summary.superseded, summary.expired, summary.orphaned) == (1, 1, 0, 0)
    history = await vault.profiles.field_history(tenant_id, "c1", "phone")
    assert [f.id for f in history] == [saved.id, old.id]
    assert history[0].deleted_at is not None and history[0].status is ItemStatus.active


async def test_a_profile_whose_only_field_was_deleted_still_reads_with_a_zero_summary(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    await vault.profiles.delete_field(tenant_id, "c1", "email")

    profile = await vault.profiles.get_profile(tenant_id, "c1")

    assert profile.fields == {}
    summary = profile.field_status_summary
    assert (summary.active, summary.superseded, summary.expired, summary.orphaned) == (0, 0, 0, 0)


async def test_an_empty_profile_reads_with_a_zero_summary(vault: Vault, tenant_id: UUID) -> None:
    await vault.profiles.create_profile(tenant_id, "c1", [])

    profile = await vault.profiles.get_profile(tenant_id, "c1")

    assert profile.customer_id == "c1"
    assert profile.fields == {} and profile.assets == []
    assert profile.field_status_summary.active == 0


async def test_a_profile_with_only_assets_reads_with_its_assets_and_a_zero_summary(
    vault: Vault, tenant_id: UUID
) -> None:
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))

    profile = await vault.profiles.get_profile(tenant_id, "c1")

    assert [a.id for a in profile.assets] == [asset.id]
    assert profile.fields == {}
    assert profile.field_status_summary.active == 0


async def test_deleting_twice_is_not_found_and_deleting_on_an_unknown_profile_too(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    await vault.profiles.delete_field(tenant_id, "c1", "email")

    with pytest.raises(NotFound):
        await vault.profiles.delete_field(tenant_id, "c1", "email")
    with pytest.raises(NotFound):
        await vault.profiles.delete_field(tenant_id, "c1", "never_written")
    with pytest.raises(NotFound):
        await vault.profiles.delete_field(tenant_id, "nobody", "email")
    assert await profile_row_id(vault.pool, tenant_id, "nobody") is None


async def test_a_write_after_a_delete_creates_a_new_active_version_and_leaves_the_deleted_one(
    vault: Vault, tenant_id: UUID
) -> None:
    gone = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    await vault.profiles.delete_field(tenant_id, "c1", "email")
    before = await stored_field(vault.pool, gone.id)

    fresh = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("b@x.example"))

    assert fresh.status is ItemStatus.active
    assert (await vault.profiles.get_field(tenant_id, "c1", "email")).id == fresh.id
    assert await stored_field(vault.pool, gone.id) == before
    assert before["superseded_by_id"] is None
    history = await vault.profiles.field_history(tenant_id, "c1", "email")
    assert [f.id for f in history] == [fresh.id, gone.id]


# -- orphaning --------------------------------------------------------------------


async def test_deleting_a_field_orphans_its_active_field_and_asset_dependents(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    field = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", derived_from=source))
    bystander = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))

    await vault.profiles.delete_field(tenant_id, "c1", "document_id")

    row = await stored_field(vault.pool, field.id)
    assert (row["status"], row["is_orphaned"], row["deleted_at"]) == ("orphaned", True, None)
    asset_row = await stored_asset(vault.pool, asset.id)
    assert (asset_row["status"], asset_row["is_orphaned"]) == ("orphaned", True)
    assert (await stored_field(vault.pool, bystander.id))["status"] == "active"
    with pytest.raises(NotFound):
        await vault.profiles.get_field(tenant_id, "c1", "birth_date")
    profile = await vault.profiles.get_profile(tenant_id, "c1")
    assert set(profile.fields) == {"email"}
    assert profile.assets == []
    assert profile.field_status_summary.orphaned == 1
    history = await vault.profiles.field_history(tenant_id, "c1", "birth_date")
    assert [(f.status, f.is_orphaned) for f in history] == [(ItemStatus.orphaned, True)]


async def test_orphaning_reaches_dependents_in_another_profile_of_the_tenant(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    elsewhere = await vault.profiles.save_field(
        tenant_id, "c2", "household_id", new_field("H-1", derived_from=source)
    )
    await vault.profiles.save_field(tenant_id, "c2", "email", new_field("a@x.example"))
    # Read once so a cached copy of the other profile exists.
    assert "household_id" in (await vault.profiles.get_profile(tenant_id, "c2")).fields

    await vault.profiles.delete_field(tenant_id, "c1", "document_id")

    row = await stored_field(vault.pool, elsewhere.id)
    assert (row["status"], row["is_orphaned"]) == ("orphaned", True)
    profile = await vault.profiles.get_profile(tenant_id, "c2")
    assert set(profile.fields) == {"email"}
    assert (profile.field_status_summary.active, profile.field_status_summary.orphaned) == (1, 1)


async def test_superseded_dependents_keep_their_status_but_are_flagged_orphaned(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    older = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )
    newer = await vault.profiles.save_field(tenant_id, "c1", "birth_date", new_field("1990-01-02"))

    await vault.profiles.delete_field(tenant_id, "c1", "document_id")

    row = await stored_field(vault.pool, older.id)
    assert (row["status"], row["is_orphaned"]) == ("superseded", True)
    assert row["superseded_by_id"] == str(newer.id)
    newer_row = await stored_field(vault.pool, newer.id)
    assert (newer_row["status"], newer_row["is_orphaned"]) == ("active", False)


async def test_orphaning_is_not_transitive(vault: Vault, tenant_id: UUID) -> None:
    root = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    child = await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", derived_from=root))
    grandchild = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=child)
    )

    await vault.profiles.delete_field(tenant_id, "c1", "document_id")

    assert (await stored_asset(vault.pool, child.id))["status"] == "orphaned"
    row = await stored_field(vault.pool, grandchild.id)
    assert (row["status"], row["is_orphaned"]) == ("active", False)
    assert (await vault.profiles.get_field(tenant_id, "c1", "birth_date")).id == grandchild.id
    # The orphan still exists, so it can still be a source.
    more = await vault.profiles.save_field(
        tenant_id, "c1", "nationality", new_field("FR", derived_from=child)
    )
    assert more.status is ItemStatus.active


@pytest.mark.parametrize("kind", ["session", "tool", "external"])
async def test_outside_world_sources_never_orphan_even_when_their_id_matches_a_deleted_item(
    vault: Vault, tenant_id: UUID, kind: str
) -> None:
    vault_item = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    outside = await vault.profiles.save_field(
        tenant_id,
        "c1",
        "birth_date",
        new_field("1990-01-01", source_item_id=str(vault_item.id), source_item_type=kind),
    )

    await vault.profiles.delete_field(tenant_id, "c1", "document_id")

    row = await stored_field(vault.pool, outside.id)
    assert (row["status"], row["is_orphaned"]) == ("active", False)
    assert (await vault.profiles.get_field(tenant_id, "c1", "birth_date")).id == outside.id


async def test_outside_world_sources_are_not_checked_for_existence(
    vault: Vault, tenant_id: UUID
) -> None:
    saved = await vault.profiles.save_field(
        tenant_id,
        "c1",
        "birth_date",
        new_field("1990-01-01", source_item_id="session-42", source_item_type="session"),
    )

    assert saved.source_item_id == "session-42"
    assert saved.status is ItemStatus.active


async def test_an_expired_source_does_not_orphan_its_dependents(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("D-1", expires_at=PAST)
    )
    # An expired item still exists: it may be a source.
    dependent = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", derived_from=source))

    assert dependent.status is ItemStatus.active
    row = await stored_field(vault.pool, dependent.id)
    assert (row["status"], row["is_orphaned"]) == ("active", False)
    asset_row = await stored_asset(vault.pool, asset.id)
    assert (asset_row["status"], asset_row["is_orphaned"]) == ("active", False)
    assert (await vault.profiles.get_field(tenant_id, "c1", "birth_date")).id == dependent.id
    summary = (await vault.profiles.get_profile(tenant_id, "c1")).field_status_summary
    assert (summary.active, summary.expired, summary.orphaned) == (1, 1, 0)


async def test_superseding_a_source_does_not_orphan_its_dependents(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    dependent = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )

    await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-2"))

    row = await stored_field(vault.pool, dependent.id)
    assert (row["status"], row["is_orphaned"]) == ("active", False)


# -- assets -----------------------------------------------------------------------


async def test_a_same_name_asset_supersedes_the_current_one(vault: Vault, tenant_id: UUID) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    first = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    other = await vault.profiles.save_asset(tenant_id, "c1", new_asset("utility_bill"))
    second = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))

    old = await vault.profiles.get_asset(tenant_id, first.id)
    assert old.status is ItemStatus.superseded
    assert old.superseded_by_id == second.id and old.superseded_at is not None
    live = await vault.profiles.list_assets(tenant_id, "c1")
    assert {a.id for a in live} == {second.id, other.id}
    everything = await vault.profiles.list_assets(tenant_id, "c1", include_history=True)
    assert {a.id for a in everything} == {first.id, second.id, other.id}
    assert {a.id for a in (await vault.profiles.get_profile(tenant_id, "c1")).assets} == {
        second.id,
        other.id,
    }


async def test_saving_over_an_expired_asset_supersedes_it(vault: Vault, tenant_id: UUID) -> None:
    expired = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("passport", expires_at=PAST)
    )
    assert expired.status is ItemStatus.expired
    assert await vault.profiles.list_assets(tenant_id, "c1") == []

    fresh = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))

    old = await vault.profiles.get_asset(tenant_id, expired.id)
    assert (old.status, old.superseded_by_id) == (ItemStatus.superseded, fresh.id)


async def test_deleting_an_asset_orphans_derived_fields_and_keeps_it_readable_by_id(
    vault: Vault, tenant_id: UUID
) -> None:
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    field = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-1", derived_from=asset)
    )
    derived_asset = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("passport_crop", derived_from=asset)
    )

    await vault.profiles.delete_asset(tenant_id, asset.id)

    gone = await vault.profiles.get_asset(tenant_id, asset.id)
    assert gone.deleted_at is not None
    assert gone.status is ItemStatus.active
    row = await stored_field(vault.pool, field.id)
    assert (row["status"], row["is_orphaned"]) == ("orphaned", True)
    crop = await vault.profiles.get_asset(tenant_id, derived_asset.id)
    assert (crop.status, crop.is_orphaned) == (ItemStatus.orphaned, True)
    assert await vault.profiles.list_assets(tenant_id, "c1") == []
    assert asset.id in {
        a.id for a in await vault.profiles.list_assets(tenant_id, "c1", include_history=True)
    }
    with pytest.raises(NotFound):
        await vault.profiles.delete_asset(tenant_id, asset.id)


async def test_deleting_an_unknown_or_foreign_asset_is_not_found(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    foreign = await vault.profiles.save_asset(other_tenant_id, "c1", new_asset("passport"))

    with pytest.raises(NotFound):
        await vault.profiles.delete_asset(tenant_id, uuid.uuid4())
    with pytest.raises(NotFound):
        await vault.profiles.delete_asset(tenant_id, foreign.id)
    with pytest.raises(NotFound):
        await vault.profiles.get_asset(tenant_id, foreign.id)
    assert (await stored_asset(vault.pool, foreign.id))["deleted_at"] is None


async def test_analysis_field_ids_lists_the_active_fields_derived_from_the_asset(
    vault: Vault, tenant_id: UUID
) -> None:
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    replaced = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-0", derived_from=asset)
    )
    current = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-1", derived_from=asset)
    )
    deleted = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=asset)
    )
    await vault.profiles.delete_field(tenant_id, "c1", "birth_date")
    name = await vault.profiles.save_field(
        tenant_id, "c1", "full_name", new_field("Ann Lee", derived_from=asset)
    )
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))

    read = await vault.profiles.get_asset(tenant_id, asset.id)

    assert read.analysis_field_ids == [current.id, name.id]
    assert replaced.id not in read.analysis_field_ids and deleted.id not in read.analysis_field_ids


async def test_analysis_field_ids_leaves_out_derived_fields_past_their_expires_at(
    vault: Vault, tenant_id: UUID
) -> None:
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    live = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-1", derived_from=asset)
    )
    expired = await vault.profiles.save_field(
        tenant_id, "c1", "visa_number", new_field("V-1", derived_from=asset, expires_at=PAST)
    )
    assert expired.status is ItemStatus.expired

    read = await vault.profiles.get_asset(tenant_id, asset.id)

    # An expired field is reported `expired` everywhere else: it is not an active field.
    assert read.analysis_field_ids == [live.id]


# -- what may be a source ---------------------------------------------------------


async def test_a_deleted_item_cannot_be_a_source_and_nothing_is_written(
    vault: Vault, tenant_id: UUID
) -> None:
    field = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    await vault.profiles.delete_field(tenant_id, "c1", "document_id")
    await vault.profiles.delete_asset(tenant_id, asset.id)

    with pytest.raises(InvalidInput):
        await vault.profiles.save_field(
            tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=field)
        )
    with pytest.raises(InvalidInput):
        await vault.profiles.save_field(
            tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=asset)
        )
    with pytest.raises(InvalidInput):
        await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", derived_from=field))

    assert await count_fields(vault.pool, tenant_id, "birth_date") == 0
    assets = await vault.profiles.list_assets(tenant_id, "c1", include_history=True)
    assert [a.id for a in assets] == [asset.id]


async def test_an_unknown_source_is_refused_and_nothing_is_written(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    missing = str(uuid.uuid4())

    with pytest.raises(InvalidInput):
        await vault.profiles.save_field(
            tenant_id,
            "c1",
            "email",
            new_field("b@x.example", source_item_id=missing, source_item_type="profile_field"),
        )
    with pytest.raises(InvalidInput):
        await vault.profiles.save_asset(
            tenant_id,
            "c1",
            new_asset("scan", source_item_id=missing, source_item_type="profile_asset"),
        )

    # The current version was not superseded by the refused write.
    history = await vault.profiles.field_history(tenant_id, "c1", "email")
    assert [(f.value, f.status) for f in history] == [("a@x.example", ItemStatus.active)]
    assert await vault.profiles.list_assets(tenant_id, "c1", include_history=True) == []


async def test_an_unknown_source_on_a_new_profile_does_not_create_the_profile(
    vault: Vault, tenant_id: UUID
) -> None:
    missing = str(uuid.uuid4())

    with pytest.raises(InvalidInput):
        await vault.profiles.save_field(
            tenant_id,
            "new-customer",
            "email",
            new_field("a@x.example", source_item_id=missing, source_item_type="profile_field"),
        )

    assert await count_fields(vault.pool, tenant_id) == 0
    assert await profile_row_id(vault.pool, tenant_id, "new-customer") is None
    with pytest.raises(NotFound):
        await vault.profiles.get_profile(tenant_id, "new-customer")


async def test_a_source_of_the_wrong_kind_is_refused(vault: Vault, tenant_id: UUID) -> None:
    field = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D-1"))
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))

    with pytest.raises(InvalidInput):
        await vault.profiles.save_field(
            tenant_id,
            "c1",
            "birth_date",
            new_field("1990", source_item_id=str(field.id), source_item_type="profile_asset"),
        )
    with pytest.raises(InvalidInput):
        await vault.profiles.save_asset(
            tenant_id,
            "c1",
            new_asset("scan", source_item_id=str(asset.id), source_item_type="profile_field"),
        )

    assert await count_fields(vault.pool, tenant_id, "birth_date") == 0
    assert [a.id for a in await vault.profiles.list_assets(tenant_id, "c1")] == [asset.id]


async def test_a_source_in_another_tenant_is_refused(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    foreign_field = await vault.profiles.save_field(
        other_tenant_id, "c1", "document_id", new_field("D-1")
    )
    foreign_asset = await vault.profiles.save_asset(other_tenant_id, "c1", new_asset("passport"))

    for source in (foreign_field, foreign_asset):
        with pytest.raises(InvalidInput):
            await vault.profiles.save_field(
                tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
            )
        with pytest.raises(InvalidInput):
            await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", derived_from=source))

    assert await count_fields(vault.pool, tenant_id) == 0
    assert await profile_row_id(vault.pool, tenant_id, "c1") is None
