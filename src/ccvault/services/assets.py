"""Assets: document references with the same lifecycle rules as fields."""

from __future__ import annotations

from functools import partial
from uuid import UUID

from ccvault.domain.audit import Action, note
from ccvault.domain.caller import Caller
from ccvault.domain.etags import IfMatch
from ccvault.domain.models import ProfileAsset
from ccvault.domain.writes import NewAsset
from ccvault.storage.profiles import ProfileStore


class AssetService:
    """Add, list, read and delete a profile's assets."""

    def __init__(self, profiles: ProfileStore) -> None:
        self._profiles = profiles

    async def add(
        self, caller: Caller, customer_id: str, new: NewAsset, *, if_match: IfMatch | None = None
    ) -> ProfileAsset:
        """A new current asset; a current asset of the same name becomes superseded."""
        return await self._profiles.save_asset(
            caller.tenant_id,
            customer_id,
            new,
            key_id=caller.key_id,
            if_match=if_match,
            audit=note(caller, Action.asset_add, customer_id, target=new.name),
        )

    async def list(
        self, caller: Caller, customer_id: str, *, include_history: bool = False
    ) -> list[ProfileAsset]:
        """Active assets, or every version (deleted ones included) with the history."""
        return await self._profiles.list_assets(
            caller.tenant_id, customer_id, include_history=include_history
        )

    async def get(self, caller: Caller, asset_id: UUID) -> ProfileAsset:
        """One asset version by id, deleted ones included (for audit)."""
        return await self._profiles.get_asset(caller.tenant_id, asset_id)

    async def delete(self, caller: Caller, asset_id: UUID) -> None:
        """Soft-delete; items derived from it become orphaned. NotFound the second time."""
        await self._profiles.delete_asset(
            caller.tenant_id,
            asset_id,
            audit=partial(note, caller, Action.asset_delete, target=str(asset_id)),
        )
