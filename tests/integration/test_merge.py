"""Merging one profile into another: what moves, who wins a conflict, and the alias left."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from ccvault.domain.errors import Conflict, InvalidInput, NotFound
from ccvault.domain.models import Direction, ItemStatus
from ccvault.domain.writes import ConsentAnswer, NewIdentity
from ccvault.runtime import Vault
from ccvault.storage.lineage import lineage

from .helpers import fetch, new_asset, new_field, profile_row_id, stored_asset, stored_field


async def _rows_of_profile(vault: Vault, profile_id: UUID | None) -> dict[str, int]:
    rows = await fetch(
        vault.pool,
        "SELECT 'fields', count(*) FROM profile_fields WHERE profile_id = %(p)s"
        " UNION ALL SELECT 'assets', count(*) FROM profile_assets WHERE profile_id = %(p)s"
        " UNION ALL SELECT 'identities', count(*) FROM channel_identities"
        "  WHERE profile_id = %(p)s"
        " UNION ALL SELECT 'consents', count(*) FROM consents WHERE profile_id = %(p)s",
        {"p": profile_id},
    )
    return {kind: int(n) for kind, n in rows}


async def test_merge_moves_identities_fields_assets_consents_and_history(
    vault: Vault, tenant_id: UUID
) -> None:
    store = vault.profiles
    await store.create_profile(
        tenant_id, "target", [NewIdentity(channel="sms", channel_user_id="1")]
    )
    await store.create_profile(
        tenant_id, "source", [NewIdentity(channel="chat", channel_user_id="u-9")]
    )
    email = await store.save_field(tenant_id, "target", "email", new_field("a@x.example"))
    old_phone = await store.save_field(tenant_id, "source", "phone", new_field("+15550000001"))
    phone = await store.save_field(tenant_id, "source", "phone", new_field("+15550000002"))
    passport = await store.save_asset(tenant_id, "source", new_asset("passport"))
    derived = await store.save_field(
        tenant_id, "source", "document_id", new_field("P-1", derived_from=passport)
    )
    await store.put_consent(tenant_id, "source", "marketing", ConsentAnswer(granted=True))
    target_id = await profile_row_id(vault.pool, tenant_id, "target")
    source_id = await profile_row_id(vault.pool, tenant_id, "source")

    merged = await store.merge(tenant_id, "target", "source")

    assert merged == "target"
    profile = await store.get_profile(tenant_id, "target", include_history=True)
    assert {(i.channel, i.channel_user_id) for i in profile.channel_identities} == {
        ("sms", "1"),
        ("chat", "u-9"),
    }
    assert {name: f.id for name, f in profile.fields.items()} == {
        "email": email.id,
        "phone": phone.id,
        "document_id": derived.id,
    }
    assert [a.id for a in profile.assets] == [passport.id]
    assert profile.assets[0].analysis_field_ids == [derived.id]
    assert [(c.consent_type, c.granted) for c in profile.consents] == [("marketing", True)]
    assert profile.field_history is not None
    assert [f.id for f in profile.field_history["phone"]] == [phone.id, old_phone.id]
    assert await store.customer_for_channel(tenant_id, "chat", "u-9") == "target"
    assert await _rows_of_profile(vault, source_id) == {
        "fields": 0,
        "assets": 0,
        "identities": 0,
        "consents": 0,
    }
    retired = await fetch(
        vault.pool,
        "SELECT merged_into_id, deleted_at FROM customer_profiles WHERE id = %s",
        (source_id,),
    )
    assert retired[0][0] == target_id and retired[0][1] is not None
    # Lineage references keep working after the move.
    up = await lineage(vault.pool, tenant_id, derived.id, Direction.ancestors)
    assert [e.item_id for e in up.chain] == [derived.id, passport.id]


@pytest.mark.parametrize("newer", ["target", "source"])
async def test_on_a_name_in_both_profiles_the_newer_value_wins_and_supersedes_the_other(
    vault: Vault, tenant_id: UUID, newer: str
) -> None:
    older = "source" if newer == "target" else "target"
    loser = await vault.profiles.save_field(tenant_id, older, "email", new_field("old@x.example"))
    winner = await vault.profiles.save_field(tenant_id, newer, "email", new_field("new@x.example"))
    assert loser.collected_at < winner.collected_at

    await vault.profiles.merge(tenant_id, "target", "source")

    current = await vault.profiles.get_field(tenant_id, "target", "email")
    assert current.id == winner.id and current.value == "new@x.example"
    lost = await stored_field(vault.pool, loser.id)
    assert lost["status"] == "superseded"
    assert lost["superseded_by_id"] == str(winner.id)
    assert lost["superseded_at"] is not None
    history = await vault.profiles.field_history(tenant_id, "target", "email")
    assert [(f.id, f.status) for f in history] == [
        (winner.id, ItemStatus.active),
        (loser.id, ItemStatus.superseded),
    ]
    summary = (await vault.profiles.get_profile(tenant_id, "target")).field_status_summary
    assert (summary.active, summary.superseded) == (1, 1)


@pytest.mark.parametrize("newer", ["target", "source"])
async def test_on_an_asset_name_in_both_profiles_the_newer_asset_wins(
    vault: Vault, tenant_id: UUID, newer: str
) -> None:
    older = "source" if newer == "target" else "target"
    loser = await vault.profiles.save_asset(tenant_id, older, new_asset("passport"))
    winner = await vault.profiles.save_asset(tenant_id, newer, new_asset("passport"))

    await vault.profiles.merge(tenant_id, "target", "source")

    assert [a.id for a in await vault.profiles.list_assets(tenant_id, "target")] == [winner.id]
    lost = await vault.profiles.get_asset(tenant_id, loser.id)
    assert (lost.status, lost.superseded_by_id) == (ItemStatus.superseded, winner.id)
    row = await stored_asset(vault.pool, loser.id)
    assert row["superseded_at"] is not None


async def test_the_merged_away_customer_id_becomes_an_alias_for_reads_and_writes(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "target", "email", new_field("a@x.example"))
    await vault.profiles.save_field(tenant_id, "source", "phone", new_field("+15550000001"))
    target_id = await profile_row_id(vault.pool, tenant_id, "target")
    # Read both once so cached copies exist: the merge must be visible through them.
    assert (await vault.profiles.get_profile(tenant_id, "source")).customer_id == "source"
    assert set((await vault.profiles.get_profile(tenant_id, "target")).fields) == {"email"}

    await vault.profiles.merge(tenant_id, "target", "source")

    assert set((await vault.profiles.get_profile(tenant_id, "target")).fields) == {"email", "phone"}
    via_alias = await vault.profiles.get_profile(tenant_id, "source")
    assert via_alias.customer_id == "target"
    assert via_alias == await vault.profiles.get_profile(tenant_id, "target")

    written = await vault.profiles.save_field(tenant_id, "source", "nickname", new_field("Al"))
    assert (await vault.profiles.get_field(tenant_id, "target", "nickname")).id == written.id
    rows = await fetch(
        vault.pool, "SELECT profile_id FROM profile_fields WHERE id = %s", (written.id,)
    )
    assert rows[0][0] == target_id
    asset = await vault.profiles.save_asset(tenant_id, "source", new_asset("passport"))
    assert [a.id for a in await vault.profiles.list_assets(tenant_id, "target")] == [asset.id]
    consent = await vault.profiles.put_consent(
        tenant_id, "source", "marketing", ConsentAnswer(granted=True)
    )
    assert (await vault.profiles.get_profile(tenant_id, "target")).consents == [consent]
    await vault.profiles.link_identity(
        tenant_id, "source", NewIdentity(channel="sms", channel_user_id="2")
    )
    assert await vault.profiles.customer_for_channel(tenant_id, "sms", "2") == "target"

    assert (await vault.profiles.get_field(tenant_id, "source", "email")).value == "a@x.example"
    history = await vault.profiles.field_history(tenant_id, "source", "phone")
    assert [f.value for f in history] == ["+15550000001"]
    await vault.profiles.delete_field(tenant_id, "source", "phone")
    with pytest.raises(NotFound):
        await vault.profiles.get_field(tenant_id, "target", "phone")
    # The alias row itself never receives data.
    alias_id = await profile_row_id(vault.pool, tenant_id, "source")
    assert set((await _rows_of_profile(vault, alias_id)).values()) == {0}


async def test_creating_a_profile_under_an_alias_is_a_conflict(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.create_profile(tenant_id, "target", [])
    await vault.profiles.create_profile(tenant_id, "source", [])
    await vault.profiles.merge(tenant_id, "target", "source")

    with pytest.raises(Conflict):
        await vault.profiles.create_profile(tenant_id, "source", [])


async def test_merging_a_profile_into_itself_is_refused_also_through_an_alias(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "target", "email", new_field("a@x.example"))
    await vault.profiles.save_field(tenant_id, "source", "phone", new_field("+15550000001"))

    with pytest.raises(InvalidInput):
        await vault.profiles.merge(tenant_id, "target", "target")

    await vault.profiles.merge(tenant_id, "target", "source")

    for target, source in (("target", "source"), ("source", "target"), ("source", "source")):
        with pytest.raises(InvalidInput):
            await vault.profiles.merge(tenant_id, target, source)
    profile = await vault.profiles.get_profile(tenant_id, "target")
    assert set(profile.fields) == {"email", "phone"}


async def test_merging_an_unknown_or_foreign_profile_is_not_found(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "target", "email", new_field("a@x.example"))
    await vault.profiles.save_field(other_tenant_id, "source", "phone", new_field("+15550000001"))

    with pytest.raises(NotFound):
        await vault.profiles.merge(tenant_id, "target", "nobody")
    with pytest.raises(NotFound):
        await vault.profiles.merge(tenant_id, "nobody", "target")
    with pytest.raises(NotFound):
        await vault.profiles.merge(tenant_id, "target", "source")

    assert set((await vault.profiles.get_profile(tenant_id, "target")).fields) == {"email"}
    assert await profile_row_id(vault.pool, tenant_id, "nobody") is None
    foreign = await vault.profiles.get_profile(other_tenant_id, "source")
    assert foreign.customer_id == "source" and set(foreign.fields) == {"phone"}


async def test_a_merge_chain_keeps_every_alias_resolving_to_the_last_target(
    vault: Vault, tenant_id: UUID
) -> None:
    b_field = await vault.profiles.save_field(tenant_id, "B", "phone", new_field("+15550000001"))
    await vault.profiles.save_field(tenant_id, "A", "email", new_field("a@x.example"))
    await vault.profiles.save_field(tenant_id, "C", "nickname", new_field("Cy"))

    assert await vault.profiles.merge(tenant_id, "A", "B") == "A"
    for customer in ("A", "B", "C"):
        await vault.profiles.get_profile(tenant_id, customer)
    assert await vault.profiles.merge(tenant_id, "C", "A") == "C"

    for alias in ("A", "B"):
        profile = await vault.profiles.get_profile(tenant_id, alias)
        assert profile.customer_id == "C"
        assert set(profile.fields) == {"phone", "email", "nickname"}
    assert (await vault.profiles.get_field(tenant_id, "B", "phone")).id == b_field.id
    written = await vault.profiles.save_field(tenant_id, "B", "city", new_field("Lyon"))
    assert (await vault.profiles.get_field(tenant_id, "C", "city")).id == written.id
    c_id = await profile_row_id(vault.pool, tenant_id, "C")
    targets = await fetch(
        vault.pool,
        "SELECT customer_id, merged_into_id FROM customer_profiles"
        " WHERE tenant_id = %s AND customer_id IN ('A', 'B')",
        (tenant_id,),
    )
    assert dict(targets) == {"A": c_id, "B": c_id}
    with pytest.raises(InvalidInput):
        await vault.profiles.merge(tenant_id, "B", "C")


@pytest.mark.parametrize("newer", ["target", "source"])
async def test_on_a_consent_in_both_profiles_the_more_recent_answer_wins(
    vault: Vault, tenant_id: UUID, newer: str
) -> None:
    older = "source" if newer == "target" else "target"
    await vault.profiles.put_consent(
        tenant_id, older, "marketing", ConsentAnswer(granted=True, source_session_id="s-old")
    )
    await asyncio.sleep(0.01)
    recent = await vault.profiles.put_consent(
        tenant_id, newer, "marketing", ConsentAnswer(granted=False, source_session_id="s-new")
    )
    only_source = await vault.profiles.put_consent(
        tenant_id, "source", "analytics", ConsentAnswer(granted=True)
    )

    await vault.profiles.merge(tenant_id, "target", "source")

    profile = await vault.profiles.get_profile(tenant_id, "target")
    consents = {c.consent_type: c for c in profile.consents}
    assert consents == {"analytics": only_source, "marketing": recent}
    assert consents["marketing"].granted is False
    assert consents["marketing"].source_session_id == "s-new"


async def test_the_target_keeps_its_primary_identity(vault: Vault, tenant_id: UUID) -> None:
    await vault.profiles.create_profile(
        tenant_id, "target", [NewIdentity(channel="sms", channel_user_id="1", primary=True)]
    )
    await vault.profiles.create_profile(
        tenant_id, "source", [NewIdentity(channel="chat", channel_user_id="9", primary=True)]
    )

    await vault.profiles.merge(tenant_id, "target", "source")

    identities = (await vault.profiles.get_profile(tenant_id, "target")).channel_identities
    assert {(i.channel, i.primary) for i in identities} == {("sms", True), ("chat", False)}


async def test_opposite_merges_racing_leave_one_live_profile_that_both_ids_resolve_to(
    vault: Vault, tenant_id: UUID
) -> None:
    for i in range(10):
        a, b = f"a{i}", f"b{i}"
        await vault.profiles.save_field(tenant_id, a, "email", new_field(f"{a}@x.example"))
        await vault.profiles.save_field(tenant_id, b, "phone", new_field("+15550000001"))

        results = await asyncio.gather(
            vault.profiles.merge(tenant_id, a, b),
            vault.profiles.merge(tenant_id, b, a),
            return_exceptions=True,
        )

        merged = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(merged) == 1, results
        assert len(refused) == 1 and isinstance(refused[0], InvalidInput), results
        rows = await fetch(
            vault.pool,
            "SELECT customer_id, id, merged_into_id, deleted_at FROM customer_profiles"
            " WHERE tenant_id = %s AND customer_id IN (%s, %s)",
            (tenant_id, a, b),
        )
        live = [r for r in rows if r[2] is None and r[3] is None]
        assert len(live) == 1, rows
        assert all(r[2] != r[1] for r in rows), "a profile must never be its own alias"
        for customer in (a, b):
            profile = await vault.profiles.get_profile(tenant_id, customer)
            assert profile.customer_id == live[0][0]
            assert set(profile.fields) == {"email", "phone"}


async def test_a_write_to_an_alias_racing_a_merge_of_its_target_succeeds(
    vault: Vault, tenant_id: UUID
) -> None:
    for i in range(10):
        a, b, c = f"a{i}", f"b{i}", f"c{i}"
        for customer in (a, b, c):
            await vault.profiles.save_field(tenant_id, customer, "email", new_field(customer))
        await vault.profiles.merge(tenant_id, a, b)

        results = await asyncio.gather(
            vault.profiles.save_field(tenant_id, b, "nickname", new_field(f"n{i}")),
            vault.profiles.merge(tenant_id, c, a),
            return_exceptions=True,
        )

        assert [r for r in results if isinstance(r, BaseException)] == []
        for customer in (a, b, c):
            profile = await vault.profiles.get_profile(tenant_id, customer)
            assert profile.customer_id == c
            assert profile.fields["nickname"].value == f"n{i}"
