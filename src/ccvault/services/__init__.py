"""The use cases every entry point calls (HTTP routes, the MCP server, the console, the
CLI): one module per use case, each taking the `Caller` first. Entry points never reach
`storage/` themselves, so a rule lives in one place whatever door a request came in by."""

from __future__ import annotations

from dataclasses import dataclass

from ccvault.services.agents import AgentDirectory
from ccvault.services.asof import AsOfService
from ccvault.services.assets import AssetService
from ccvault.services.audit import AuditService
from ccvault.services.context import ContextService
from ccvault.services.definitions import DefinitionService
from ccvault.services.erasure import ErasureService
from ccvault.services.events import EventService
from ccvault.services.export import ExportService
from ccvault.services.fields import FieldService
from ccvault.services.health import HealthService
from ccvault.services.imports import Importer
from ccvault.services.keys import KeyResolver
from ccvault.services.lineage import LineageService
from ccvault.services.missing import MissingFieldsService
from ccvault.services.operations import OperationsService
from ccvault.services.profiles import ProfileService
from ccvault.services.requirements import RequirementService
from ccvault.services.review import ReviewService
from ccvault.services.scenarios import ScenarioService
from ccvault.services.tenants import TenantService
from ccvault.services.webhooks import WebhookService


@dataclass(frozen=True)
class Services:
    """Every use case of one running vault, built once at start-up (runtime.py)."""

    profiles: ProfileService
    fields: FieldService
    assets: AssetService
    lineage: LineageService
    definitions: DefinitionService
    requirements: RequirementService
    scenarios: ScenarioService
    review: ReviewService
    missing: MissingFieldsService
    tenants: TenantService
    keys: KeyResolver
    operations: OperationsService
    health: HealthService
    context: ContextService
    imports: Importer
    erasure: ErasureService
    export: ExportService
    agents: AgentDirectory
    asof: AsOfService
    events: EventService
    audit: AuditService
    webhooks: WebhookService
