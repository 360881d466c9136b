"""Fixtures for store-level tests: a second tenant to check isolation against."""

from __future__ import annotations

import uuid

import pytest

from ccvault.runtime import Vault


@pytest.fixture
async def other_tenant_id(vault: Vault) -> uuid.UUID:
    """A second fresh tenant, for isolation checks."""
    created, _ = await vault.tenants.create(f"other-{uuid.uuid4().hex}", "warn")
    return created.tenant_id
