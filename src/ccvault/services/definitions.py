"""Per-agent field definitions: what an agent may store and how values are checked."""

from __future__ import annotations

from ccvault.domain.audit import Action, note
from ccvault.domain.caller import Caller
from ccvault.domain.schema import DefinitionBody, DefinitionStatus, FieldDefinition
from ccvault.storage.schema import SchemaStore


class DefinitionService:
    """Create, read, list and retire an agent's definitions."""

    def __init__(self, schema: SchemaStore) -> None:
        self._schema = schema

    async def put(
        self, caller: Caller, agent_id: str, name: str, body: DefinitionBody
    ) -> tuple[FieldDefinition, bool]:
        """Create (True) or replace (False) a definition; a suggestion becomes active."""
        return await self._schema.put_definition(
            caller.tenant_id,
            agent_id,
            name,
            body,
            audit=note(caller, Action.definition_put, target=f"{agent_id}/{name}"),
        )

    async def get(self, caller: Caller, agent_id: str, name: str) -> FieldDefinition:
        """One definition, active or suggested."""
        return await self._schema.get_definition(caller.tenant_id, agent_id, name)

    async def list(
        self,
        caller: Caller,
        agent_id: str,
        status: DefinitionStatus = DefinitionStatus.active,
    ) -> list[FieldDefinition]:
        """The agent's definitions in one status (active by default)."""
        return await self._schema.list_definitions(caller.tenant_id, agent_id, status)

    async def delete(self, caller: Caller, agent_id: str, name: str) -> None:
        """Retire a definition (dismiss a suggestion); versions keep their reference."""
        await self._schema.delete_definition(
            caller.tenant_id,
            agent_id,
            name,
            audit=note(caller, Action.definition_delete, target=f"{agent_id}/{name}"),
        )
