"""Migration 0010 on a database that already holds data: levels move to the vocabulary,
old versions read with an empty written_by, and profiles cached before it are retired."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from ccvault import migrations
from ccvault.storage.db import open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.urls import libpq_url

from .helpers import new_field

BEFORE = "0009_tenant_secrets"


async def test_upgrading_keeps_profiles_and_versions_in_the_new_vocabulary(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    await asyncio.to_thread(migrations.upgrade, url, BEFORE)
    tenant = uuid.uuid4()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tenants (id, name, validation_mode) VALUES (%s, 'old', 'warn')", (tenant,)
        )
        conn.execute(
            "INSERT INTO customer_profiles (id, tenant_id, customer_id) VALUES (%s, %s, 'c1')",
            (uuid.uuid4(), tenant),
        )
        level = conn.execute("SELECT verification_level FROM customer_profiles").fetchone()
        assert level == ("none",)
        conn.execute(
            "INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type,"
            " source) SELECT %s, tenant_id, id, 'email', '\"a@x.io\"', 'string',"
            " 'user_provided' FROM customer_profiles",
            (uuid.uuid4(),),
        )
        epoch = conn.execute("SELECT epoch FROM cache_epoch").fetchone()

    await asyncio.to_thread(migrations.upgrade, url)

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        assert conn.execute("SELECT verification_level FROM customer_profiles").fetchone() == (
            "unverified",
        )
        raised = conn.execute("SELECT epoch FROM cache_epoch").fetchone()
        assert epoch is not None and raised is not None and raised[0] > epoch[0]
    pool = await open_pool(url, min_size=1, max_size=1)
    try:
        store = ProfileStore(pool)
        profile = await store.get_profile(tenant, "c1")
        assert profile.verification_level == "unverified"
        old = profile.fields["email"]
        assert (old.written_by.key_id, old.written_by.agent_id) == (None, None)
        newer = await store.save_field(tenant, "c1", "email", new_field("b@x.io"))
        assert (await store.get_field(tenant, "c1", "email")).id == newer.id
    finally:
        await pool.close()
