"""Python client of the Customer Context Vault: `Vault` (blocking) and `AsyncVault`.

    from ccvault.client import Vault

    with Vault("http://127.0.0.1:8000", "ccv_...") as vault:
        vault.fields.put("c1", "email", value="a@b.c", source="user_provided")
        profile = vault.profiles.get("c1")

Needs only httpx and pydantic (the base `ccvault` distribution); the models it returns are
the server's own (`ccvault.domain`). How the two classes come from one source: see
`ccvault.client._unasync`."""

from ccvault.client._async import AsyncVault
from ccvault.client._core import RetryPolicy
from ccvault.client._sync import Vault
from ccvault.client.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ServerError,
    Unauthorized,
    Unreachable,
    ValidationFailed,
    VaultError,
    Withheld,
)

__all__ = [
    "AsyncVault",
    "Conflict",
    "NotFound",
    "PreconditionFailed",
    "RetryPolicy",
    "ServerError",
    "Unauthorized",
    "Unreachable",
    "ValidationFailed",
    "Vault",
    "VaultError",
    "Withheld",
]
