"""Schema layer: field definitions, scenario/rule texts, field requirements.

Revision ID: 0002_schema_layer
Revises: 0001_core
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0002_schema_layer"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE profile_field_definitions (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        agent_id text NOT NULL,
        name text NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suggested')),
        display_name text NOT NULL,
        description text,
        value_type text NOT NULL,
        validation_regex text,
        allowed_values jsonb,
        required_verification boolean NOT NULL DEFAULT false,
        verification_methods jsonb NOT NULL DEFAULT '[]',
        collection_prompt text,
        extraction_examples jsonb NOT NULL DEFAULT '[]',
        extraction_prompt_hint text,
        is_pii boolean NOT NULL DEFAULT false,
        encryption_required boolean NOT NULL DEFAULT false,
        retention_days integer CHECK (retention_days > 0),
        freshness_seconds integer CHECK (freshness_seconds > 0),
        enabled boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    );
    -- One live definition per (tenant, agent, name); deleted ones stay for the field
    -- versions that reference them.
    CREATE UNIQUE INDEX profile_field_definitions_live
        ON profile_field_definitions (tenant_id, agent_id, name) WHERE deleted_at IS NULL;

    CREATE TABLE scenarios (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        agent_id text NOT NULL,
        scenario_id text NOT NULL,
        name text NOT NULL,
        description text,
        conditions jsonb NOT NULL DEFAULT '[]',
        steps jsonb NOT NULL DEFAULT '[]',
        extraction_status text NOT NULL DEFAULT 'queued'
            CHECK (extraction_status IN ('queued', 'running', 'done', 'failed')),
        extraction_error text,
        extraction_finished_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, agent_id, scenario_id)
    );

    CREATE TABLE rules (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        agent_id text NOT NULL,
        rule_id text NOT NULL,
        name text NOT NULL,
        condition text NOT NULL,
        action text,
        scenario_id text,
        extraction_status text NOT NULL DEFAULT 'queued'
            CHECK (extraction_status IN ('queued', 'running', 'done', 'failed')),
        extraction_error text,
        extraction_finished_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, agent_id, rule_id)
    );

    -- The public shape of a stored scenario / rule, shared by every query that answers one.
    CREATE FUNCTION ccv_scenario_doc(s scenarios) RETURNS json
        LANGUAGE sql STABLE PARALLEL SAFE
        RETURN json_build_object(
            'agent_id', s.agent_id, 'scenario_id', s.scenario_id, 'name', s.name,
            'description', s.description, 'conditions', s.conditions, 'steps', s.steps,
            'created_at', s.created_at, 'updated_at', s.updated_at,
            'extraction', json_build_object('status', s.extraction_status,
                                            'error', s.extraction_error,
                                            'finished_at', s.extraction_finished_at));

    CREATE FUNCTION ccv_rule_doc(r rules) RETURNS json
        LANGUAGE sql STABLE PARALLEL SAFE
        RETURN json_build_object(
            'agent_id', r.agent_id, 'rule_id', r.rule_id, 'name', r.name, 'condition', r.condition,
            'action', r.action, 'scenario_id', r.scenario_id,
            'created_at', r.created_at, 'updated_at', r.updated_at,
            'extraction', json_build_object('status', r.extraction_status,
                                            'error', r.extraction_error,
                                            'finished_at', r.extraction_finished_at));

    CREATE TABLE scenario_field_requirements (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        agent_id text NOT NULL,
        scenario_id text,
        rule_id text,
        field_name text NOT NULL,
        step_id text,
        required_level text NOT NULL CHECK (required_level IN ('hard', 'soft')),
        fallback_action text NOT NULL
            CHECK (fallback_action IN ('ask', 'skip', 'block', 'extract')),
        when_condition text,
        depends_on_fields jsonb NOT NULL DEFAULT '[]',
        collection_order integer NOT NULL DEFAULT 0,
        confidence double precision CHECK (confidence BETWEEN 0 AND 1),
        needs_human_review boolean NOT NULL DEFAULT false,
        review_status text NOT NULL DEFAULT 'none'
            CHECK (review_status IN ('none', 'pending', 'approved', 'rejected')),
        origin text NOT NULL CHECK (origin IN ('manual', 'extracted')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK (scenario_id IS NOT NULL OR rule_id IS NOT NULL)
    );
    -- A manual requirement is keyed by (scenario, field, step); concurrent PUTs upsert.
    CREATE UNIQUE INDEX scenario_field_requirements_manual
        ON scenario_field_requirements
           (tenant_id, agent_id, scenario_id, field_name, coalesce(step_id, ''))
        WHERE origin = 'manual';
    -- Re-extraction replaces a source's set; it can never hold the same field twice.
    CREATE UNIQUE INDEX scenario_field_requirements_extracted
        ON scenario_field_requirements
           (tenant_id, agent_id, coalesce(scenario_id, ''), coalesce(rule_id, ''),
            field_name, coalesce(step_id, ''))
        WHERE origin = 'extracted';
    CREATE INDEX scenario_field_requirements_scenario
        ON scenario_field_requirements (tenant_id, agent_id, scenario_id);
    CREATE INDEX scenario_field_requirements_rule
        ON scenario_field_requirements (tenant_id, agent_id, rule_id);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE scenario_field_requirements;
    DROP FUNCTION ccv_rule_doc(rules);
    DROP FUNCTION ccv_scenario_doc(scenarios);
    DROP TABLE rules;
    DROP TABLE scenarios;
    DROP TABLE profile_field_definitions;
    """)
