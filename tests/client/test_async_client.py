"""`AsyncVault` against a live vault (`ccv serve`, real PostgreSQL and Redis): every method,
the server's own models as results, typed errors, ETags, and paging across pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ccvault.client import (
    AsyncVault,
    Conflict,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    ValidationFailed,
    VaultError,
    Withheld,
)
from ccvault.domain.answers import Page, ValidationIssue, WrittenField
from ccvault.domain.audit import AuditEntry
from ccvault.domain.context import ContextView
from ccvault.domain.models import (
    ChannelIdentity,
    Consent,
    Lineage,
    Profile,
    ProfileAsset,
    ProfileField,
    ProfileSummary,
)
from ccvault.domain.privacy import Erasure, ProfileExport
from ccvault.domain.scenarios import Rule, Scenario
from ccvault.domain.schema import FieldDefinition, MissingFields, Requirement, ReviewQueue
from ccvault.storage.db import Pool

AGENT = "agent-c"
ASSET = {
    "name": "passport",
    "asset_type": "document",
    "storage_provider": "s3",
    "storage_path": "bucket/passport.pdf",
    "mime_type": "application/pdf",
    "size_bytes": 1234,
    "checksum": "sha256:abc",
}


def cid() -> str:
    """A customer id of this test alone."""
    return f"c-{uuid.uuid4().hex[:10]}"


async def test_profiles_create_get_by_channel_and_patch_answer_the_servers_models(
    avault: AsyncVault,
) -> None:
    minted = await avault.profiles.create()
    assert isinstance(minted, Profile) and minted.customer_id
    created = await avault.profiles.create(
        customer_id="c1", channel_identities=[{"channel": "whatsapp", "channel_user_id": "+49301"}]
    )
    assert created.customer_id == "c1"
    assert [i.channel_user_id for i in created.channel_identities] == ["+49301"]
    assert (await avault.profiles.get("c1")).customer_id == "c1"
    assert (await avault.profiles.by_channel("whatsapp", "+49301")).customer_id == "c1"
    patched = await avault.profiles.patch("c1", verification_level="email_verified")
    assert patched.verification_level == "email_verified"


async def test_a_second_create_is_a_conflict_and_an_unknown_profile_not_found(
    avault: AsyncVault,
) -> None:
    await avault.profiles.create(customer_id="dup")
    with pytest.raises(Conflict) as conflict:
        await avault.profiles.create(customer_id="dup")
    assert conflict.value.status == 409
    assert conflict.value.problem["status"] == 409
    with pytest.raises(NotFound) as missing:
        await avault.profiles.get("nobody")
    assert missing.value.status == 404 and missing.value.title == "Not Found"
    assert "nobody" in (missing.value.detail or "")


async def test_an_etag_read_guards_a_write_and_a_stale_one_fails_the_precondition(
    avault: AsyncVault,
) -> None:
    await avault.fields.put("e1", "email", value="a@b.c", source="user_provided")
    profile, etag = await avault.profiles.get_with_etag("e1")
    assert profile.fields["email"].value == "a@b.c" and etag
    await avault.fields.put("e1", "name", value="Ada", source="user_provided", if_match=etag)
    with pytest.raises(PreconditionFailed) as stale:
        await avault.fields.put("e1", "name", value="Bob", source="user_provided", if_match=etag)
    assert stale.value.status == 412
    with pytest.raises(PreconditionFailed):
        await avault.profiles.patch("e1", verification_level="kyc_complete", if_match=etag)


async def test_fields_put_get_history_delete(avault: AsyncVault) -> None:
    c = cid()
    first = await avault.fields.put(
        c,
        "email",
        value="ada@EXAMPLE.com",
        source="user_provided",
        value_type="email",
        source_metadata={"turn": 3},
        confidence=0.9,
        verified=True,
        verification_method="otp",
    )
    assert isinstance(first, WrittenField)
    assert first.value == "ada@example.com" and first.verified and first.confidence == 0.9
    assert first.validation_warnings == []  # the tenant is in warn mode
    second = await avault.fields.put(c, "email", value="ada@b.c", source="llm_extracted")
    got = await avault.fields.get(c, "email")
    assert isinstance(got, ProfileField) and got.id == second.id
    history = await avault.fields.history(c, "email")
    assert [f.id for f in history] == [second.id, first.id]
    assert history[1].status == "superseded"
    await avault.fields.delete(c, "email")
    with pytest.raises(NotFound):
        await avault.fields.get(c, "email")
    with pytest.raises(NotFound):
        await avault.fields.delete(c, "email")


async def test_reads_as_of_an_instant(avault: AsyncVault) -> None:
    c = cid()
    first = await avault.fields.put(c, "email", value="old@example.com", source="user_provided")
    second = await avault.fields.put(c, "email", value="new@example.com", source="user_provided")
    then = second.collected_at - timedelta(microseconds=1)

    profile = await avault.profiles.get(c, as_of=then, include_history=True)
    assert isinstance(profile, Profile) and profile.fields["email"].id == first.id
    assert profile.field_history is not None and len(profile.field_history["email"]) == 1
    got = await avault.fields.get(c, "email", as_of=then.isoformat())
    assert isinstance(got, ProfileField) and got.id == first.id
    assert (await avault.fields.get(c, "email", as_of=second.collected_at)).id == second.id
    with pytest.raises(ValidationFailed) as future:
        await avault.profiles.get(c, as_of=datetime.now(UTC) + timedelta(hours=1))
    assert future.value.errors[0].loc == ["query", "as_of"]
    with pytest.raises(ValidationFailed):  # no offset
        await avault.profiles.get(c, as_of=datetime(2026, 1, 1))
    with pytest.raises(NotFound):
        await avault.profiles.get(c, as_of=first.collected_at - timedelta(seconds=1))


async def test_a_refused_value_is_validation_failed_with_the_servers_complaints(
    avault: AsyncVault,
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await avault.fields.put(cid(), "age", value=None, source="user_provided")
    assert refused.value.status == 422
    assert refused.value.errors and all(
        isinstance(e, ValidationIssue) for e in refused.value.errors
    )
    with pytest.raises(ValidationFailed) as bad_source:
        await avault.fields.put(cid(), "age", value=3, source="rumour")
    assert any(e.loc[-1] == "source" for e in bad_source.value.errors)
    assert "source" in str(bad_source.value)


async def test_a_wrong_key_is_unauthorized(live: str) -> None:
    async with AsyncVault(live, "ccv_not-a-key") as stranger:
        with pytest.raises(Unauthorized) as refused:
            await stranger.profiles.get("c1")
    assert refused.value.status == 401
    assert isinstance(refused.value, VaultError)


async def test_assets_add_get_list_delete(avault: AsyncVault) -> None:
    c = cid()
    asset = await avault.assets.add(c, **ASSET)  # type: ignore[arg-type]
    assert isinstance(asset, ProfileAsset) and asset.retention_policy == "permanent"
    assert (await avault.assets.get(asset.id)).id == asset.id
    newer = await avault.assets.add(c, **{**ASSET, "checksum": "sha256:def"})  # type: ignore[arg-type]
    assert [a.id for a in await avault.assets.list(c)] == [newer.id]
    assert len(await avault.assets.list(c, include_history=True)) == 2
    await avault.assets.delete(newer.id)
    assert (await avault.assets.get(newer.id)).deleted_at is not None
    with pytest.raises(NotFound):
        await avault.assets.delete(newer.id)


async def test_consents_and_identities(avault: AsyncVault) -> None:
    consent = await avault.consents.put("k1", "marketing", granted=True, source_session_id="s/1")
    assert isinstance(consent, Consent) and consent.granted
    linked = await avault.identities.link("k1", channel="email", channel_user_id="k1@x.io")
    assert isinstance(linked, ChannelIdentity) and linked.channel == "email"
    again = await avault.identities.link("k1", channel="email", channel_user_id="k1@x.io")
    assert again.channel_user_id == "k1@x.io"
    with pytest.raises(Conflict):
        await avault.identities.link("k2", channel="email", channel_user_id="k1@x.io")
    profile = await avault.profiles.get("k1")
    assert [c.consent_type for c in profile.consents] == ["marketing"]


async def test_merge_folds_the_source_in_and_keeps_its_id_as_an_alias(avault: AsyncVault) -> None:
    await avault.fields.put("m-target", "name", value="Ada", source="user_provided")
    await avault.fields.put("m-source", "email", value="a@b.c", source="user_provided")
    merged = await avault.profiles.merge("m-target", source_customer_id="m-source")
    assert set(merged.fields) == {"name", "email"}
    assert (await avault.profiles.get("m-source")).customer_id == "m-target"
    with pytest.raises(ValidationFailed):
        await avault.profiles.merge("m-target", source_customer_id="m-target")


async def test_lineage_both_directions(avault: AsyncVault) -> None:
    c = cid()
    root = await avault.fields.put(c, "document", value="scan", source="document_extracted")
    child = await avault.fields.put(
        c,
        "birth_date",
        value="1990-01-02",
        source="document_extracted",
        source_item_id=root.id,
        source_item_type="profile_field",
    )
    up = await avault.lineage(child.id)
    assert isinstance(up, Lineage)
    assert [e.item_id for e in up.chain] == [child.id, root.id]
    down = await avault.lineage(root.id, direction="descendants", max_depth=1)
    assert [e.item_id for e in down.chain] == [root.id, child.id]
    with pytest.raises(ValidationFailed):
        await avault.lineage(root.id, max_depth=11)
    with pytest.raises(NotFound):
        await avault.lineage(uuid.uuid4())


async def test_definitions_put_get_list_delete(avault: AsyncVault) -> None:
    created = await avault.definitions.put(
        AGENT,
        "email",
        display_name="Email",
        value_type="email",
        collection_prompt="What is your email?",
        required_verification=True,
    )
    assert isinstance(created, FieldDefinition) and created.required_verification
    assert (await avault.definitions.get(AGENT, "email")).collection_prompt == "What is your email?"
    assert [d.name for d in await avault.definitions.list(AGENT)] == ["email"]
    assert await avault.definitions.list(AGENT, status="suggested") == []
    await avault.definitions.delete(AGENT, "email")
    with pytest.raises(NotFound):
        await avault.definitions.get(AGENT, "email")


async def test_scenarios_and_rules_put_get_delete(avault: AsyncVault) -> None:
    scenario = await avault.scenarios.put(
        AGENT,
        "onboarding",
        name="Onboarding",
        conditions=["We need the customer's email."],
        steps=[{"step_id": "s1", "description": "greet"}],
    )
    assert isinstance(scenario, Scenario) and scenario.extraction.status == "queued"
    assert (await avault.scenarios.get(AGENT, "onboarding")).name == "Onboarding"
    rule = await avault.rules.put(
        AGENT, "big-transfers", name="Big transfers", condition="amount > 1000"
    )
    assert isinstance(rule, Rule) and rule.condition == "amount > 1000"
    assert (await avault.rules.get(AGENT, "big-transfers")).rule_id == "big-transfers"
    await avault.rules.delete(AGENT, "big-transfers")
    await avault.scenarios.delete(AGENT, "onboarding")
    for gone in (
        avault.rules.get(AGENT, "big-transfers"),
        avault.scenarios.get(AGENT, "onboarding"),
    ):
        with pytest.raises(NotFound):
            await gone


async def test_requirements_and_missing_fields(avault: AsyncVault) -> None:
    await avault.definitions.put(
        AGENT, "email", display_name="Email", value_type="email", collection_prompt="Email?"
    )
    req = await avault.requirements.put(AGENT, "kyc", "email", collection_order=1)
    assert isinstance(req, Requirement) and req.origin == "manual"
    step = await avault.requirements.put(
        AGENT, "kyc", "phone", step_id="s2", required_level="soft", fallback_action="skip"
    )
    assert step.step_id == "s2"
    listed = await avault.requirements.list(AGENT, "kyc")
    assert {r.field_name for r in listed} == {"email", "phone"}
    c = cid()
    missing = await avault.missing_fields(c, agent_id=AGENT, scenario_id="kyc")
    assert isinstance(missing, MissingFields) and not missing.can_proceed
    assert {m.field_name for m in missing.missing} == {"email", "phone"}
    other_step = await avault.missing_fields(c, agent_id=AGENT, scenario_id="kyc", step_id="s1")
    assert [m.field_name for m in other_step.missing] == ["email"]
    assert other_step.missing[0].collection_prompt == "Email?"
    await avault.fields.put(c, "email", value="a@b.c", source="user_provided")
    assert (
        await avault.missing_fields(c, agent_id=AGENT, scenario_id="kyc", step_id="s1")
    ).can_proceed
    await avault.requirements.delete(AGENT, "kyc", "phone", step_id="s2")
    with pytest.raises(NotFound):
        await avault.requirements.delete(AGENT, "kyc", "phone", step_id="s2")


async def insert_pending(pool: Pool, tenant_id: uuid.UUID, field_name: str) -> uuid.UUID:
    """A requirement as the extractor stores one it is unsure of (pending review)."""
    req_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            """INSERT INTO scenario_field_requirements (
                   id, tenant_id, agent_id, scenario_id, field_name, required_level,
                   fallback_action, confidence, needs_human_review, review_status, origin)
               VALUES (%s, %s, %s, 'onboarding', %s, 'soft', 'ask', 0.6, true, 'pending',
                       'extracted')""",
            (req_id, tenant_id, AGENT, field_name),
        )
    return req_id


async def test_the_review_queue_pages_and_iterates_and_a_review_settles_one(
    avault: AsyncVault, live_tenant: tuple[uuid.UUID, str], pool: Pool
) -> None:
    await avault.scenarios.put(AGENT, "onboarding", name="Onboarding")
    ids = [await insert_pending(pool, live_tenant[0], f"f{i}") for i in range(5)]
    first = await avault.review_queue(AGENT, limit=2)
    assert isinstance(first, ReviewQueue) and len(first.items) == 2 and first.next_cursor
    every = [item.requirement.id async for item in avault.review_queue.iter_all(AGENT, limit=2)]
    assert sorted(every) == sorted(ids)
    reviewed = await avault.requirements.review(AGENT, ids[0], decision="approve")
    assert reviewed.review_status == "approved" and not reviewed.needs_human_review
    rest = [item.requirement.id async for item in avault.review_queue.iter_all(AGENT)]
    assert sorted(rest) == sorted(ids[1:])
    with pytest.raises(ValidationFailed):
        await avault.review_queue(AGENT, cursor="not-a-cursor")


async def test_profiles_list_is_one_page_and_iter_all_walks_every_page(avault: AsyncVault) -> None:
    made = {f"p-{i:02d}" for i in range(7)}
    for customer_id in made:
        await avault.profiles.create(customer_id=customer_id)
    page = await avault.profiles.list(limit=3)
    assert isinstance(page, Page) and len(page.items) == 3 and page.next_cursor
    assert all(isinstance(s, ProfileSummary) for s in page.items)
    seen = [s.customer_id async for s in avault.profiles.iter_all(limit=3)]
    assert len(seen) == len(set(seen)) == 7 and set(seen) == made
    assert [s.customer_id async for s in avault.profiles.iter_all(q="p-0", limit=2)] != []


async def test_the_context_view_as_the_servers_model_and_as_text(avault: AsyncVault) -> None:
    await avault.definitions.put(AGENT, "email", display_name="Email address", value_type="email")
    await avault.fields.put("ctx", "email", value="a@b.c", source="user_provided")
    view = await avault.profiles.context("ctx", agent_id=AGENT)
    assert isinstance(view, ContextView)
    assert [f.display_name for f in view.facts] == ["Email address"]
    text = await avault.profiles.context("ctx", agent_id=AGENT, format="text")
    assert isinstance(text, str) and "Email address: a@b.c" in text


async def test_missing_fields_with_a_conversation_context_is_the_post_form(
    avault: AsyncVault,
) -> None:
    await avault.requirements.put(
        AGENT, "transfer", "proof_of_address", when_condition="amount > 1000"
    )
    small = await avault.missing_fields(
        cid(), agent_id=AGENT, scenario_id="transfer", context={"amount": 10}
    )
    big = await avault.missing_fields(
        cid(), agent_id=AGENT, scenario_id="transfer", context={"amount": 5000}
    )
    assert small.missing == [] and [m.field_name for m in big.missing] == ["proof_of_address"]


async def test_reads_for_a_purpose_withhold_and_a_withheld_field_is_its_own_error(
    avault: AsyncVault,
) -> None:
    c = cid()
    await avault.definitions.put(
        AGENT, "income", display_name="Income", value_type="string", purposes=["credit"]
    )
    await avault.fields.put(c, "income", value="3200 EUR", source="user_provided", agent_id=AGENT)
    marketing = await avault.profiles.get(c, purpose="marketing")
    assert "income" not in marketing.fields
    assert [(w.name, w.reason) for w in marketing.withheld_fields or []] == [("income", "purpose")]
    assert "income" in (await avault.profiles.get(c, purpose="credit")).fields
    with pytest.raises(Withheld) as refused:
        await avault.fields.get(c, "income", purpose="marketing")
    assert refused.value.status == 403
    assert (await avault.fields.get(c, "income", purpose="credit")).value == "3200 EUR"


async def test_export_then_erase_leaves_nothing_and_a_second_erase_is_not_found(
    avault: AsyncVault,
) -> None:
    c = cid()
    await avault.fields.put(c, "email", value="a@b.c", source="user_provided")
    await avault.fields.put(c, "email", value="d@e.f", source="user_provided")
    exported = await avault.profiles.export(c)
    assert isinstance(exported, ProfileExport) and exported.customer_id == c
    assert [v.value for v in exported.profile.field_history["email"]] == ["d@e.f", "a@b.c"]
    erased = await avault.profiles.erase(c, reason="customer request")
    assert isinstance(erased, Erasure) and erased.counts.fields == 2
    with pytest.raises(NotFound):
        await avault.profiles.get(c)
    with pytest.raises(NotFound):
        await avault.profiles.erase(c)


async def test_the_audit_pages_newest_first_and_iterates_every_entry(
    avault: AsyncVault,
) -> None:
    c = cid()
    for value in ("a@b.c", "d@e.f", "g@h.i"):
        await avault.fields.put(c, "email", value=value, source="user_provided")
    await avault.profiles.get(c)
    page = await avault.profiles.audit(c, limit=2)
    assert isinstance(page, Page) and all(isinstance(e, AuditEntry) for e in page.items)
    assert [e.action for e in page.items] == ["profile.read", "field.write"]
    assert page.next_cursor is not None
    every = [e async for e in avault.profiles.iter_audit(c, limit=2)]
    assert [e.action for e in every] == ["profile.read", *["field.write"] * 3]
    assert [e.seq for e in every] == sorted((e.seq for e in every), reverse=True)


async def test_ids_with_every_allowed_punctuation_reach_the_right_profile(
    avault: AsyncVault,
) -> None:
    odd = "Tenant:42@shop+eu.x_y-z"
    await avault.fields.put(odd, "name", value="Ada", source="user_provided")
    assert (await avault.profiles.get(odd)).customer_id == odd
    await avault.identities.link(odd, channel="sms", channel_user_id="+49 30 123 ?#&x=1")
    assert (await avault.profiles.by_channel("sms", "+49 30 123 ?#&x=1")).customer_id == odd
