"""`Vault` (blocking) is generated from `AsyncVault`, not written by hand: the generated file
is current, both have the same methods and signatures, the signatures take every key of the
server's request bodies, and the blocking client works against the live vault."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import ccvault.client
from ccvault.client import AsyncVault, NotFound, ValidationFailed, Vault
from ccvault.domain.models import Profile
from ccvault.domain.scenarios import RuleBody, ScenarioBody
from ccvault.domain.schema import RequirementBody
from ccvault.domain.writes import (
    ConsentAnswer,
    MergeRequest,
    NewAsset,
    NewField,
    NewIdentity,
    NewProfile,
    ProfilePatch,
)

CLIENT_DIR = Path(ccvault.client.__file__).parent
RESOURCES = [
    "profiles",
    "fields",
    "assets",
    "consents",
    "identities",
    "definitions",
    "scenarios",
    "rules",
    "requirements",
    "review_queue",
]


def test_the_blocking_client_is_the_generated_twin_of_the_async_one() -> None:
    checked = subprocess.run(
        [sys.executable, str(CLIENT_DIR / "_unasync.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def public_methods(obj: object) -> dict[str, inspect.Signature]:
    """Name -> signature of the public methods (and __call__) of a resource."""
    names = [n for n in dir(type(obj)) if not n.startswith("_") or n == "__call__"]
    found = {}
    for name in names:
        member = getattr(type(obj), name)
        if inspect.isfunction(member) and (name != "__call__" or "__call__" in vars(type(obj))):
            found[name] = inspect.signature(member)
    return found


def test_both_clients_have_the_same_methods_with_the_same_signatures() -> None:
    sync, aio = Vault("http://x", "k"), AsyncVault("http://x", "k")
    assert public_methods(sync).keys() - {"close"} == public_methods(aio).keys() - {"aclose"}
    for resource in RESOURCES:
        mine, theirs = (
            public_methods(getattr(sync, resource)),
            public_methods(getattr(aio, resource)),
        )
        assert mine.keys() == theirs.keys(), resource
        for name, signature in mine.items():
            assert signature.parameters == theirs[name].parameters, f"{resource}.{name}"
    sync.close()


@pytest.mark.parametrize(
    ("method", "model"),
    [
        ("profiles.create", NewProfile),
        ("profiles.patch", ProfilePatch),
        ("profiles.merge", MergeRequest),
        ("fields.put", NewField),
        ("assets.add", NewAsset),
        ("consents.put", ConsentAnswer),
        ("identities.link", NewIdentity),
        ("scenarios.put", ScenarioBody),
        ("rules.put", RuleBody),
        ("requirements.put", RequirementBody),
    ],
)
def test_each_write_takes_every_key_of_the_servers_body_as_a_keyword(
    method: str, model: type[BaseModel]
) -> None:
    resource, name = method.split(".")
    aio = AsyncVault("http://x", "k")
    signature = inspect.signature(getattr(getattr(aio, resource), name))
    keywords = {
        p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(model.model_fields) <= keywords


def test_the_blocking_client_reads_and_writes_the_live_vault(svault: Vault) -> None:
    written = svault.fields.put("s1", "email", value="a@b.c", source="user_provided")
    profile = svault.profiles.get("s1")
    assert isinstance(profile, Profile) and profile.fields["email"].id == written.id
    assert [f.id for f in svault.fields.history("s1", "email")] == [written.id]
    for i in range(5):
        svault.profiles.create(customer_id=f"s-page-{i}")
    assert len(list(svault.profiles.iter_all(limit=2))) == 6
    with pytest.raises(NotFound):
        svault.fields.get("s1", "phone")
    with pytest.raises(ValidationFailed) as refused:
        svault.fields.put("s1", "BAD NAME", value=1, source="user_provided")
    assert refused.value.errors
