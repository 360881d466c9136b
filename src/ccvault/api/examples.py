"""Examples for the published schemas, keyed by component name: one customer's story, so
/docs shows requests and answers that belong together. A test validates each example
against its schema."""

from __future__ import annotations

from typing import Any, Final

_FIELD_ID = "0b6f7a52-8c1e-4f0e-9a57-3c2d1e4b5a60"
_ASSET_ID = "5d0c2f1e-7a3b-4c8d-9e6f-1a2b3c4d5e6f"
_DEFINITION_ID = "7e1d9c3b-2a4f-4b6d-8c0e-9f1a2b3c4d5e"
_REQUIREMENT_ID = "3f2e1d0c-9b8a-4765-8432-10fedcba9876"
_TENANT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
_AT = "2025-03-14T09:26:53Z"

_EMAIL_FIELD: Final = {
    "id": _FIELD_ID,
    "name": "email",
    "value": "ana@example.com",
    "value_type": "email",
    "status": "active",
    "source": "user_provided",
    "source_item_id": None,
    "source_item_type": None,
    "source_metadata": {"channel": "whatsapp"},
    "source_session_id": "sess-2025-03-14-001",
    "source_scenario_id": "onboarding",
    "source_step_id": "contact",
    "confidence": 1.0,
    "verified": True,
    "verification_method": "otp",
    "verified_at": _AT,
    "requires_confirmation": False,
    "collected_at": _AT,
    "updated_at": _AT,
    "expires_at": None,
    "superseded_by_id": None,
    "superseded_at": None,
    "deleted_at": None,
    "is_orphaned": False,
    "field_definition_id": _DEFINITION_ID,
}

_PASSPORT: Final = {
    "id": _ASSET_ID,
    "name": "passport",
    "asset_type": "document",
    "storage_provider": "s3",
    "storage_path": "kyc-bucket/cust-42/passport.pdf",
    "mime_type": "application/pdf",
    "size_bytes": 482133,
    "checksum": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "status": "active",
    "source_item_id": None,
    "source_item_type": None,
    "derived_from_tool": None,
    "verified": False,
    "verification_result": None,
    "retention_policy": "permanent",
    "uploaded_at": _AT,
    "expires_at": None,
    "superseded_by_id": None,
    "superseded_at": None,
    "deleted_at": None,
    "is_orphaned": False,
    "analysis_field_ids": [],
}

_DEFINITION_BODY: Final = {
    "display_name": "Email address",
    "description": "Where receipts and notices go.",
    "value_type": "email",
    "required_verification": True,
    "verification_methods": ["otp"],
    "collection_prompt": "What email address should we send your receipt to?",
    "is_pii": True,
    "retention_days": 365,
}

_REQUIREMENT: Final[dict[str, Any]] = {
    "id": _REQUIREMENT_ID,
    "field_name": "email",
    "step_id": None,
    "rule_id": None,
    "required_level": "hard",
    "fallback_action": "ask",
    "when_condition": None,
    "depends_on_fields": [],
    "collection_order": 10,
    "confidence": None,
    "needs_human_review": False,
    "review_status": "none",
    "origin": "manual",
}

_EXTRACTION: Final[dict[str, Any]] = {"status": "queued", "error": None, "finished_at": None}

EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    # Request bodies.
    "ImportLine": {
        "customer_id": "cust-42",
        "fields": {
            "name": "Ana Lima",
            "email": {"value": "ana@Example.com", "value_type": "email", "verified": True},
        },
        "channel_identities": [{"channel": "whatsapp", "channel_user_id": "+351912345678"}],
        "consents": {"marketing_email": True},
    },
    "NewProfile": {
        "customer_id": "cust-42",
        "channel_identities": [
            {"channel": "whatsapp", "channel_user_id": "+351912345678", "verified": True}
        ],
    },
    "NewField": {
        "value": "ana@example.com",
        "source": "user_provided",
        "source_session_id": "sess-2025-03-14-001",
        "source_scenario_id": "onboarding",
        "source_step_id": "contact",
        "verified": True,
        "verification_method": "otp",
        "agent_id": "support-bot",
    },
    "NewAsset": {
        "name": "passport",
        "asset_type": "document",
        "storage_provider": "s3",
        "storage_path": "kyc-bucket/cust-42/passport.pdf",
        "mime_type": "application/pdf",
        "size_bytes": 482133,
        "checksum": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    },
    "NewIdentity": {"channel": "phone", "channel_user_id": "+351912345678", "primary": True},
    "ConsentAnswer": {"granted": True, "source_session_id": "sess-2025-03-14-001"},
    "MergeRequest": {"source_customer_id": "cust-42-duplicate"},
    "EraseRequest": {"reason": "GDPR art. 17 request #8812"},
    "NewWebhook": {
        "url": "https://crm.example.com/hooks/ccv",
        "types": ["field.written", "field.expired", "profile.erased"],
        "secret": "whsec-4f1c9a7e2b",
    },
    "EventPage": {
        "items": [
            {
                "id": "c1a2b3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                "type": "field.written",
                "at": _AT,
                "customer_id": "cust-42",
                "data": {"id": _FIELD_ID, "name": "email"},
            }
        ],
        "next_cursor": "WzQyXQ.3q2Zl4mN8x1VbC0tR7yK5w",
    },
    "DefinitionBody": _DEFINITION_BODY,
    "RequirementBody": {"required_level": "hard", "fallback_action": "ask", "collection_order": 10},
    "ReviewDecision": {"decision": "approve"},
    "MissingFieldsRequest": {
        "agent_id": "support-bot",
        "scenario_id": "transfer",
        "step_id": "confirm",
        "context": {"transfer_amount": 1500, "currency": "EUR"},
    },
    "ScenarioBody": {
        "name": "Refund request",
        "description": "The customer asks for a refund of an order.",
        "conditions": ["the customer is logged in"],
        "steps": [
            {"step_id": "identify", "description": "Find the order by its number."},
            {"step_id": "refund", "description": "Refund to the card the order was paid with."},
        ],
    },
    "RuleBody": {
        "name": "Large refunds",
        "condition": "the refund is over 500 EUR",
        "action": "ask for the customer's IBAN and verify their identity",
        "scenario_id": "refund",
    },
    "NewTenant": {"name": "acme-support", "validation_mode": "strict"},
    "TenantPatch": {"validation_mode": "warn"},
    "NewKey": {"label": "support-bot production"},
    "ProfilePatch": {"verification_level": "kyc_complete"},
    # Answers.
    "ProfileField": _EMAIL_FIELD,
    "WrittenField": {**_EMAIL_FIELD, "validation_warnings": []},
    "ProfileAsset": _PASSPORT,
    "Profile": {
        "customer_id": "cust-42",
        "created_at": _AT,
        "updated_at": _AT,
        "verification_level": "unverified",
        "channel_identities": [
            {
                "channel": "whatsapp",
                "channel_user_id": "+351912345678",
                "verified": True,
                "primary": False,
                "created_at": _AT,
            }
        ],
        "consents": [
            {
                "consent_type": "marketing_email",
                "granted": True,
                "granted_at": _AT,
                "revoked_at": None,
                "source_session_id": "sess-2025-03-14-001",
                "updated_at": _AT,
            }
        ],
        "fields": {"email": _EMAIL_FIELD},
        "assets": [_PASSPORT],
        "field_status_summary": {"active": 1, "superseded": 2, "expired": 0, "orphaned": 0},
    },
    "Lineage": {
        "item": _EMAIL_FIELD,
        "chain": [
            {
                "depth": 0,
                "item_id": _FIELD_ID,
                "item_type": "profile_field",
                "name": "email",
                "status": "active",
                "deleted_at": None,
                "source_item_id": None,
            }
        ],
        "truncated": False,
        "cycle_detected": False,
    },
    "FieldDefinition": {
        **_DEFINITION_BODY,
        "validation_regex": None,
        "allowed_values": None,
        "extraction_examples": [],
        "extraction_prompt_hint": None,
        "encryption_required": False,
        "freshness_seconds": None,
        "enabled": True,
        "min": None,
        "max": None,
        "min_age": None,
        "max_age": None,
        "default_region": None,
        "id": _DEFINITION_ID,
        "agent_id": "support-bot",
        "name": "email",
        "status": "active",
        "created_at": _AT,
        "updated_at": _AT,
    },
    "Requirement": _REQUIREMENT,
    "RequirementList": {"items": [_REQUIREMENT]},
    "MissingFields": {
        "can_proceed": False,
        "missing": [
            {
                "field_name": "email",
                "required_level": "hard",
                "fallback_action": "ask",
                "reason": "unverified",
                "collection_prompt": "What email address should we send your receipt to?",
                "display_name": "Email address",
                "collection_order": 10,
            }
        ],
    },
    "Scenario": {
        "agent_id": "support-bot",
        "scenario_id": "refund",
        "name": "Refund request",
        "description": "The customer asks for a refund of an order.",
        "conditions": ["the customer is logged in"],
        "steps": [{"step_id": "identify", "description": "Find the order.", "conditions": []}],
        "created_at": _AT,
        "updated_at": _AT,
        "extraction": _EXTRACTION,
    },
    "Rule": {
        "agent_id": "support-bot",
        "rule_id": "large-refunds",
        "name": "Large refunds",
        "condition": "the refund is over 500 EUR",
        "action": "ask for the customer's IBAN and verify their identity",
        "scenario_id": "refund",
        "created_at": _AT,
        "updated_at": _AT,
        "extraction": _EXTRACTION,
    },
    "CreatedTenant": {
        "tenant_id": _TENANT_ID,
        "name": "acme-support",
        "validation_mode": "strict",
        "api_key": "ccv_EXAMPLE-shown-once-only-its-hash-is-kept-000",
        "key_id": "0b6f2f9e-5d1c-4c57-9d4a-3f1e2b7c8a90",
    },
    "Tenant": {
        "tenant_id": _TENANT_ID,
        "name": "acme-support",
        "validation_mode": "warn",
        "created_at": _AT,
    },
    "SweepCounts": {"updated": 3, "fields": 2, "assets": 1},
}
