"""Lineage traversal over fields and assets: depth, truncation, cycles, tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from uuid import UUID

import pytest

from ccvault.domain.errors import NotFound
from ccvault.domain.models import (
    Direction,
    ItemStatus,
    Lineage,
    ProfileAsset,
    ProfileField,
    SourceItemType,
)
from ccvault.runtime import Vault
from ccvault.storage.lineage import lineage

from .helpers import Item, new_asset, new_field

ANCESTORS = Direction.ancestors
DESCENDANTS = Direction.descendants


async def _walk(
    vault: Vault,
    tenant_id: UUID,
    item: Item | UUID,
    direction: Direction,
    max_depth: int | None = None,
) -> Lineage:
    item_id = item if isinstance(item, UUID) else item.id
    # A traversal that does not stop would hang the suite: bound it.
    async with asyncio.timeout(30):
        if max_depth is None:
            return await lineage(vault.pool, tenant_id, item_id, direction)
        return await lineage(vault.pool, tenant_id, item_id, direction, max_depth)


def _chain_ids(result: Lineage) -> list[UUID]:
    return [entry.item_id for entry in result.chain]


async def _field_chain(vault: Vault, tenant_id: UUID, length: int) -> list[ProfileField]:
    """`length` fields, each derived from the previous one."""
    items: list[ProfileField] = []
    for i in range(length):
        parent = items[-1] if items else None
        items.append(
            await vault.profiles.save_field(
                tenant_id, "c1", f"step_{i}", new_field(i, derived_from=parent)
            )
        )
    return items


async def test_ancestors_and_descendants_cross_fields_and_assets(
    vault: Vault, tenant_id: UUID
) -> None:
    passport = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    number = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-1", derived_from=passport)
    )
    report = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("kyc_report", derived_from=number)
    )
    verdict = await vault.profiles.save_field(
        tenant_id, "c1", "kyc_status", new_field("passed", derived_from=report)
    )

    up = await _walk(vault, tenant_id, verdict, ANCESTORS)

    assert isinstance(up.item, ProfileField) and up.item.id == verdict.id
    assert [(e.depth, e.item_id, e.item_type, e.name) for e in up.chain] == [
        (0, verdict.id, SourceItemType.profile_field, "kyc_status"),
        (1, report.id, SourceItemType.profile_asset, "kyc_report"),
        (2, number.id, SourceItemType.profile_field, "document_id"),
        (3, passport.id, SourceItemType.profile_asset, "passport"),
    ]
    assert [e.source_item_id for e in up.chain] == [
        str(report.id),
        str(number.id),
        str(passport.id),
        None,
    ]
    assert all(e.status is ItemStatus.active for e in up.chain)
    assert (up.truncated, up.cycle_detected) == (False, False)

    down = await _walk(vault, tenant_id, passport, DESCENDANTS)

    assert isinstance(down.item, ProfileAsset) and down.item.id == passport.id
    assert _chain_ids(down) == [passport.id, number.id, report.id, verdict.id]
    assert [e.depth for e in down.chain] == [0, 1, 2, 3]
    assert (down.truncated, down.cycle_detected) == (False, False)


async def test_descendants_of_a_branching_item_are_ordered_by_depth(
    vault: Vault, tenant_id: UUID
) -> None:
    root = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    left = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-1", derived_from=root)
    )
    right = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=root)
    )
    leaf = await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", derived_from=left))
    crop = await vault.profiles.save_asset(tenant_id, "c1", new_asset("crop", derived_from=right))

    down = await _walk(vault, tenant_id, root, DESCENDANTS)

    assert down.chain[0].item_id == root.id and down.chain[0].depth == 0
    depths = [e.depth for e in down.chain]
    assert depths == sorted(depths) == [0, 1, 1, 2, 2]
    assert {e.item_id for e in down.chain[1:3]} == {left.id, right.id}
    assert {e.item_id for e in down.chain[3:]} == {leaf.id, crop.id}


async def test_an_item_without_links_is_its_own_whole_chain(vault: Vault, tenant_id: UUID) -> None:
    alone = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))

    for direction in (ANCESTORS, DESCENDANTS):
        result = await _walk(vault, tenant_id, alone, direction)
        assert [(e.depth, e.item_id) for e in result.chain] == [(0, alone.id)]
        assert result.item == alone
        assert (result.truncated, result.cycle_detected) == (False, False)


async def test_max_depth_zero_returns_just_the_item_and_says_more_lies_beyond(
    vault: Vault, tenant_id: UUID
) -> None:
    parent, child = await _field_chain(vault, tenant_id, 2)

    up = await _walk(vault, tenant_id, child, ANCESTORS, max_depth=0)
    assert _chain_ids(up) == [child.id]
    assert up.truncated is True

    down = await _walk(vault, tenant_id, parent, DESCENDANTS, max_depth=0)
    assert _chain_ids(down) == [parent.id]
    assert down.truncated is True

    top = await _walk(vault, tenant_id, parent, ANCESTORS, max_depth=0)
    assert _chain_ids(top) == [parent.id]
    assert top.truncated is False


async def test_a_chain_of_twelve_items_is_cut_at_depth_ten_and_marked_truncated(
    vault: Vault, tenant_id: UUID
) -> None:
    items = await _field_chain(vault, tenant_id, 12)

    up = await _walk(vault, tenant_id, items[-1], ANCESTORS)
    assert len(up.chain) == 11
    assert [e.depth for e in up.chain] == list(range(11))
    assert _chain_ids(up) == [f.id for f in reversed(items[1:])]
    assert (up.truncated, up.cycle_detected) == (True, False)

    down = await _walk(vault, tenant_id, items[0], DESCENDANTS, max_depth=10)
    assert _chain_ids(down) == [f.id for f in items[:11]]
    assert (down.truncated, down.cycle_detected) == (True, False)


async def test_a_chain_of_exactly_eleven_items_fits_and_is_not_truncated(
    vault: Vault, tenant_id: UUID
) -> None:
    items = await _field_chain(vault, tenant_id, 11)

    up = await _walk(vault, tenant_id, items[-1], ANCESTORS, max_depth=10)
    assert _chain_ids(up) == [f.id for f in reversed(items)]
    assert up.truncated is False

    down = await _walk(vault, tenant_id, items[0], DESCENDANTS)
    assert _chain_ids(down) == [f.id for f in items]
    assert down.truncated is False


async def test_a_smaller_max_depth_cuts_the_chain_there(vault: Vault, tenant_id: UUID) -> None:
    items = await _field_chain(vault, tenant_id, 5)

    up = await _walk(vault, tenant_id, items[-1], ANCESTORS, max_depth=3)
    assert [e.depth for e in up.chain] == [0, 1, 2, 3]
    assert up.truncated is True
    exact = await _walk(vault, tenant_id, items[-1], ANCESTORS, max_depth=4)
    assert len(exact.chain) == 5 and exact.truncated is False


async def test_a_cycle_made_by_raw_sql_terminates_without_duplicates(
    vault: Vault, tenant_id: UUID
) -> None:
    root = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("P-1"))
    middle = await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", derived_from=root))
    leaf = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=middle)
    )
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET source_item_id = %s, source_item_type = 'profile_field'"
            " WHERE id = %s",
            (str(leaf.id), root.id),
        )

    expected = {root.id, middle.id, leaf.id}
    for start, direction in ((leaf, ANCESTORS), (root, DESCENDANTS), (middle, ANCESTORS)):
        result = await _walk(vault, tenant_id, start, direction)
        ids = _chain_ids(result)
        assert len(ids) == len(set(ids)), f"duplicate items walking {direction} from {start.id}"
        assert set(ids) == expected
        assert ids[0] == start.id
        assert [e.depth for e in result.chain] == [0, 1, 2]
        assert result.cycle_detected is True
        assert result.truncated is False


async def test_a_two_item_cycle_terminates(vault: Vault, tenant_id: UUID) -> None:
    first, second = await _field_chain(vault, tenant_id, 2)
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET source_item_id = %s, source_item_type = 'profile_field'"
            " WHERE id = %s",
            (str(second.id), first.id),
        )

    for direction in (ANCESTORS, DESCENDANTS):
        result = await _walk(vault, tenant_id, first, direction, max_depth=10)
        assert _chain_ids(result) == [first.id, second.id]
        assert result.cycle_detected is True


async def test_traversal_never_leaves_the_tenant(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    mine = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("P-1"))
    theirs = await vault.profiles.save_field(other_tenant_id, "c1", "document_id", new_field("Q-1"))
    their_child = await vault.profiles.save_asset(
        other_tenant_id, "c1", new_asset("scan", derived_from=theirs)
    )
    # Tampering: my field now names their field as its source.
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET source_item_id = %s, source_item_type = 'profile_field'"
            " WHERE id = %s",
            (str(theirs.id), mine.id),
        )

    up = await _walk(vault, tenant_id, mine, ANCESTORS)
    assert _chain_ids(up) == [mine.id]
    assert (up.truncated, up.cycle_detected) == (False, False)

    down = await _walk(vault, other_tenant_id, theirs, DESCENDANTS)
    assert _chain_ids(down) == [theirs.id, their_child.id]

    for foreign in (theirs.id, their_child.id):
        for direction in (ANCESTORS, DESCENDANTS):
            with pytest.raises(NotFound):
                await _walk(vault, tenant_id, foreign, direction)


async def test_an_unknown_item_is_not_found(vault: Vault, tenant_id: UUID) -> None:
    with pytest.raises(NotFound):
        await _walk(vault, tenant_id, uuid.uuid4(), ANCESTORS)


async def test_deleted_superseded_and_expired_items_appear_with_their_state(
    vault: Vault, tenant_id: UUID
) -> None:
    scan = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("scan", expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    )
    source = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-1", derived_from=scan)
    )
    child = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )
    grandchild = await vault.profiles.save_field(
        tenant_id, "c1", "age_band", new_field("30-40", derived_from=child)
    )
    await vault.profiles.save_field(tenant_id, "c1", "age_band", new_field("40-50"))
    await vault.profiles.delete_field(tenant_id, "c1", "document_id")

    up = await _walk(vault, tenant_id, grandchild, ANCESTORS)

    states = [(e.item_id, e.status, e.deleted_at is not None) for e in up.chain]
    assert states == [
        (grandchild.id, ItemStatus.superseded, False),
        (child.id, ItemStatus.orphaned, False),
        (source.id, ItemStatus.active, True),
        (scan.id, ItemStatus.expired, False),
    ]

    deleted = await _walk(vault, tenant_id, source, DESCENDANTS)
    assert isinstance(deleted.item, ProfileField)
    assert deleted.item.deleted_at is not None
    assert deleted.chain[0].deleted_at == deleted.item.deleted_at
    assert _chain_ids(deleted) == [source.id, child.id, grandchild.id]


async def test_the_item_of_a_lineage_is_the_full_field_or_asset(
    vault: Vault, tenant_id: UUID
) -> None:
    asset = await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    field = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("P-1", derived_from=asset, confidence=0.7)
    )

    on_field = await _walk(vault, tenant_id, field, ANCESTORS)
    on_asset = await _walk(vault, tenant_id, asset, DESCENDANTS)

    assert on_field.item == await vault.profiles.get_field(tenant_id, "c1", "document_id")
    assert on_asset.item == await vault.profiles.get_asset(tenant_id, asset.id)
    assert isinstance(on_asset.item, ProfileAsset)
    assert on_asset.item.analysis_field_ids == [field.id]
