"""An invalidation is one Redis round trip (issue 17, point 7): one EVALSHA of the
tombstone script, however many profiles a mutation touched, and no `SCRIPT EXISTS` before
it. Counted twice, against a Valkey this test owns: by the server (`INFO commandstats`:
which commands ran) and on the client (each write of a request to a socket is one round
trip, a pipeline included)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from cache_support import Counters, dedicated_valkey, quiet_cache, raw_redis, split_entry
from ccvault.domain.models import Profile
from ccvault.runtime import Vault
from ccvault.storage import profiles as profiles_module
from ccvault.storage.cache import TOMBSTONES_PER_CALL, ProfileCache, Touched
from ccvault.storage.profiles import ProfileStore

from .helpers import new_field


async def commands_run(raw: aioredis.Redis) -> dict[str, int]:
    """Calls per command the server has run so far (INFO itself left out)."""
    stats = await raw.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in stats.items()
        if name != "cmdstat_info"
    }


# What the tombstone script runs inside Redis (counted by the server as commands too).
IN_SCRIPT = {"getrange", "set"}


def gained(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The commands sent between two readings of `commands_run` (the script's own calls
    left out)."""
    return {
        name: n - before.get(name, 0)
        for name, n in after.items()
        if n != before.get(name, 0) and name not in IN_SCRIPT
    }


@dataclass
class Sends:
    """Requests written to Redis sockets (one per round trip: a pipeline is one write)."""

    count: int = 0


@contextmanager
def counting_sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sends]:
    """Count every request any redis-py asyncio connection writes while the block runs."""
    sends = Sends()
    send = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sends.count += 1
        await send(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", counting)
        yield sends


async def warmed(cache: ProfileCache) -> None:
    """One call first, so the pool holds a connected socket (a connection's handshake is
    not the invalidation's cost) and the server knows the tombstone script."""
    await cache.invalidate([Touched(UUID(int=1), "warm-up", 1)])


async def test_a_field_write_invalidates_with_one_evalsha_and_one_round_trip(
    vault: Vault, tenant_id: UUID, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as cache,
        raw_redis(server.url) as raw,
    ):
        store = ProfileStore(vault.pool, cache)
        await store.save_field(tenant_id, "c1", "tier", new_field("silver"))
        await store.get_profile_json(tenant_id, "c1")  # cached
        await warmed(cache)

        before = await commands_run(raw)
        with counting_sends(monkeypatch) as sends:
            await store.save_field(tenant_id, "c1", "tier", new_field("gold"))
        assert sends.count == 1
        assert gained(before, await commands_run(raw)) == {"evalsha": 1}

        value = await raw.get(cache.key(tenant_id, "c1"))
        assert value is not None
        *_, body = split_entry(value)
        assert body == b"", "the write left no tombstone"
        assert b'"gold"' in await store.get_profile_json(tenant_id, "c1")


async def test_many_profiles_are_tombstoned_in_one_round_trip(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = UUID(int=7)
    touched = [Touched(tenant, f"c{i}", 3) for i in range(2 * TOMBSTONES_PER_CALL + 7)]
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as cache,
        raw_redis(server.url) as raw,
    ):
        await warmed(cache)
        before = Counters.now()
        commands = await commands_run(raw)
        with counting_sends(monkeypatch) as sends:
            await cache.invalidate(touched)
        assert sends.count == 1
        # Cut in calls of TOMBSTONES_PER_CALL profiles (Redis runs each alone), sent together.
        assert gained(commands, await commands_run(raw)) == {"evalsha": 3}
        assert before.since().invalidations == len(touched)
        values = await raw.mget([cache.key(t.tenant_id, t.customer_id) for t in touched])
        assert values == [b"0:3|"] * len(touched)


async def test_a_tombstone_never_replaces_a_newer_version(vault: Vault, tmp_path: Path) -> None:
    tenant = UUID(int=8)
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as cache,
        raw_redis(server.url) as raw,
    ):
        _, epoch = await cache.get(tenant, "new")
        await cache.put(tenant, "new", 5, epoch, b'{"v":5}')
        await cache.put(tenant, "old", 2, epoch, b'{"v":2}')

        await cache.invalidate([Touched(tenant, "new", 4), Touched(tenant, "old", 3)])

        assert await raw.get(cache.key(tenant, "new")) == f"{epoch}:5|".encode() + b'{"v":5}'
        assert await raw.get(cache.key(tenant, "old")) == b"0:3|"
        # A reader that loaded version 2 before the write cannot put it back.
        await cache.put(tenant, "old", 2, epoch, b'{"v":2}')
        assert await raw.get(cache.key(tenant, "old")) == b"0:3|"


@pytest.mark.parametrize("profiles", [1, TOMBSTONES_PER_CALL + 1])
async def test_a_server_that_forgot_the_script_still_gets_the_tombstones(
    vault: Vault, tmp_path: Path, profiles: int
) -> None:
    """A restarted or flushed server answers NOSCRIPT: the script is loaded and the
    tombstones sent again, and the invalidation counts as a success (no epoch raise)."""
    tenant = UUID(int=9)
    touched = [Touched(tenant, f"c{i}", 2) for i in range(profiles)]
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as cache,
        raw_redis(server.url) as raw,
    ):
        await warmed(cache)
        await raw.script_flush()
        before = Counters.now()

        await cache.invalidate(touched)

        assert (before.since().invalidations, before.since().errors) == (profiles, 0)
        values = await raw.mget([cache.key(t.tenant_id, t.customer_id) for t in touched])
        assert values == [b"0:2|"] * profiles
        assert not cache.lift_owed


async def test_a_cache_miss_parses_the_profile_once(
    vault: Vault, tenant_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The miss parses the database's document into the model, dumps the cached bytes
    from it and returns that model: no parse of its own JSON again."""
    assert vault.cache is not None
    await vault.cache.sync_epoch()  # no lift by the background sync between the two reads
    await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("gold"))
    parses = 0
    parse = Profile.model_validate_json

    def counting(data: Any, **kwargs: Any) -> Profile:
        nonlocal parses
        parses += 1
        return parse(data, **kwargs)

    monkeypatch.setattr(profiles_module.Profile, "model_validate_json", counting)
    before = Counters.now()
    profile = await vault.profiles.get_profile(tenant_id, "c1")
    assert before.since().misses == 1
    assert parses == 1
    assert profile.fields["tier"].value == "gold"

    before = Counters.now()
    assert await vault.profiles.get_profile(tenant_id, "c1") == profile
    assert before.since().hits == 1
    assert parses == 2, "a hit parses the cached bytes once"
