-- name: upsert_definition
-- PUT is an upsert; a PUT over an extractor's suggestion makes it active. `created` tells
-- 201 from 200 (xmax is 0 only on a freshly inserted row version).
INSERT INTO profile_field_definitions AS d (
    id, tenant_id, agent_id, name, status, display_name, description, value_type,
    validation_regex, allowed_values, required_verification, verification_methods,
    collection_prompt, extraction_examples, extraction_prompt_hint, is_pii,
    encryption_required, retention_days, freshness_seconds, enabled, "min", "max", min_age,
    max_age, default_region, purposes, consent_type)
VALUES (
    %(id)s, %(tenant_id)s, %(agent_id)s, %(name)s, %(status)s, %(display_name)s,
    %(description)s, %(value_type)s, %(validation_regex)s, %(allowed_values)s,
    %(required_verification)s, %(verification_methods)s, %(collection_prompt)s,
    %(extraction_examples)s, %(extraction_prompt_hint)s, %(is_pii)s,
    %(encryption_required)s, %(retention_days)s, %(freshness_seconds)s, %(enabled)s, %(min)s,
    %(max)s, %(min_age)s, %(max_age)s, %(default_region)s, %(purposes)s, %(consent_type)s)
ON CONFLICT (tenant_id, agent_id, name) WHERE deleted_at IS NULL DO UPDATE SET
    status = excluded.status, display_name = excluded.display_name,
    description = excluded.description, value_type = excluded.value_type,
    validation_regex = excluded.validation_regex, allowed_values = excluded.allowed_values,
    required_verification = excluded.required_verification,
    verification_methods = excluded.verification_methods,
    collection_prompt = excluded.collection_prompt,
    extraction_examples = excluded.extraction_examples,
    extraction_prompt_hint = excluded.extraction_prompt_hint, is_pii = excluded.is_pii,
    encryption_required = excluded.encryption_required,
    retention_days = excluded.retention_days, freshness_seconds = excluded.freshness_seconds,
    enabled = excluded.enabled, "min" = excluded."min", "max" = excluded."max",
    min_age = excluded.min_age, max_age = excluded.max_age,
    default_region = excluded.default_region, purposes = excluded.purposes,
    consent_type = excluded.consent_type, updated_at = clock_timestamp()
RETURNING to_jsonb(d) AS doc, (xmax = 0) AS created;

-- name: get_definition
SELECT to_jsonb(d) AS doc
  FROM profile_field_definitions d
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND name = %(name)s
   AND deleted_at IS NULL;

-- name: definition_for_write
-- The definition a field write is validated against: active, enabled, not deleted.
SELECT to_jsonb(d) AS doc
  FROM profile_field_definitions d
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND name = %(name)s
   AND deleted_at IS NULL AND status = 'active' AND enabled;

-- name: list_definitions
SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.name), '[]') AS docs
  FROM profile_field_definitions d
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND deleted_at IS NULL
   AND status = %(status)s;

-- name: delete_definition
UPDATE profile_field_definitions SET deleted_at = clock_timestamp()
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND name = %(name)s
   AND deleted_at IS NULL
RETURNING id;

-- name: put_manual_requirement
INSERT INTO scenario_field_requirements AS r (
    id, tenant_id, agent_id, scenario_id, rule_id, field_name, step_id, required_level,
    fallback_action, when_condition, depends_on_fields, collection_order, origin)
VALUES (
    %(id)s, %(tenant_id)s, %(agent_id)s, %(scenario_id)s, %(rule_id)s, %(field_name)s,
    %(step_id)s, %(required_level)s, %(fallback_action)s, %(when_condition)s,
    %(depends_on_fields)s, %(collection_order)s, 'manual')
ON CONFLICT (tenant_id, agent_id, scenario_id, field_name, coalesce(step_id, ''))
    WHERE origin = 'manual'
DO UPDATE SET
    rule_id = excluded.rule_id, required_level = excluded.required_level,
    fallback_action = excluded.fallback_action, when_condition = excluded.when_condition,
    depends_on_fields = excluded.depends_on_fields,
    collection_order = excluded.collection_order, updated_at = clock_timestamp()
RETURNING to_jsonb(r) AS doc, (xmax = 0) AS created;

-- name: list_requirements
-- An extracted requirement that a manual one hides (same scenario, field and step) is not
-- listed, as missing-fields does not enforce it; it comes back if the manual one goes.
SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.collection_order, r.field_name,
                          r.step_id NULLS FIRST, r.origin), '[]') AS docs
  FROM scenario_field_requirements r
 WHERE r.tenant_id = %(tenant_id)s AND r.agent_id = %(agent_id)s
   AND r.scenario_id = %(scenario_id)s
   AND NOT (r.origin = 'extracted' AND EXISTS (
       SELECT 1 FROM scenario_field_requirements m
        WHERE m.origin = 'manual' AND m.tenant_id = r.tenant_id
          AND m.agent_id = r.agent_id AND m.scenario_id = r.scenario_id
          AND m.field_name = r.field_name
          AND coalesce(m.step_id, '') = coalesce(r.step_id, '')));

-- name: delete_requirement
DELETE FROM scenario_field_requirements
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s
   AND scenario_id = %(scenario_id)s AND field_name = %(field_name)s
   AND step_id IS NOT DISTINCT FROM %(step_id)s
RETURNING id;

-- name: review_requirement
-- approve clears needs_human_review; reject keeps the requirement listed, unenforced.
UPDATE scenario_field_requirements AS r
   SET review_status = %(decision)s,
       needs_human_review = CASE WHEN %(decision)s = 'approved' THEN false
                                 ELSE needs_human_review END,
       updated_at = clock_timestamp()
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND id = %(id)s
RETURNING to_jsonb(r) AS doc;

-- name: missing_fields_inputs
-- Everything missing-fields needs in one round trip: the applicable requirements, the
-- few attributes of their live definitions the answer uses, and the profile's current
-- version of every field. {filters} is filled with the filters the caller actually gave
-- (scenario, rule, step), so each shape keeps a reusable prepared plan.
WITH reqs AS (
    SELECT r.id, r.field_name, r.step_id, r.rule_id, r.required_level, r.fallback_action,
           r.when_condition, r.depends_on_fields, r.collection_order, r.confidence,
           r.needs_human_review, r.review_status, r.origin
      FROM scenario_field_requirements r
     WHERE r.tenant_id = %(tenant_id)s AND r.agent_id = %(agent_id)s {filters}
), profile AS (
    SELECT coalesce(a.merged_into_id, a.id) AS id
      FROM customer_profiles a
     WHERE a.tenant_id = %(tenant_id)s AND a.customer_id = %(customer_id)s
)
SELECT
    (SELECT coalesce(json_agg(reqs), '[]') FROM reqs) AS requirements,
    (SELECT coalesce(json_agg(json_build_object(
                'name', d.name, 'display_name', d.display_name,
                'collection_prompt', d.collection_prompt,
                'required_verification', d.required_verification,
                'freshness_seconds', d.freshness_seconds, 'value_type', d.value_type,
                'min', d."min", 'max', d."max", 'min_age', d.min_age, 'max_age', d.max_age)),
            '[]')
       FROM profile_field_definitions d
      WHERE d.tenant_id = %(tenant_id)s AND d.agent_id = %(agent_id)s
        AND d.deleted_at IS NULL AND d.status = 'active' AND d.enabled
        AND d.name IN (SELECT field_name FROM reqs)) AS definitions,
    (SELECT coalesce(json_agg(json_build_object(
                'name', f.name, 'value', f.value, 'verified', f.verified,
                'collected_at', f.collected_at,
                'status', ccv_effective_status(f.status, f.expires_at))), '[]')
       FROM profile_fields f
      WHERE f.tenant_id = %(tenant_id)s AND f.profile_id = (SELECT id FROM profile)
        AND f.superseded_at IS NULL AND f.deleted_at IS NULL)
        AS fields,
    now() AS now;

-- name: read_rules
-- What purpose-aware reads need of the definitions a profile's versions were written
-- under (by id: a version keeps the definition it was validated against).
SELECT id, purposes, consent_type
  FROM profile_field_definitions
 WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s)
   AND (purposes <> '{}' OR consent_type IS NOT NULL);
