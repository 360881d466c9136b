-- name: put_scenario
-- Store the text and mark its extraction queued; the caller defers the job in this same
-- transaction, so a rolled-back write never runs one and a committed write never loses it.
INSERT INTO scenarios AS s (tenant_id, agent_id, scenario_id, name, description, conditions,
                            steps, extraction_status, extraction_error, extraction_finished_at)
VALUES (%(tenant_id)s, %(agent_id)s, %(scenario_id)s, %(name)s, %(description)s,
        %(conditions)s, %(steps)s, 'queued', NULL, NULL)
ON CONFLICT (tenant_id, agent_id, scenario_id) DO UPDATE SET
    name = excluded.name, description = excluded.description,
    conditions = excluded.conditions, steps = excluded.steps,
    extraction_status = 'queued', extraction_error = NULL, extraction_finished_at = NULL,
    updated_at = clock_timestamp()
RETURNING ccv_scenario_doc(s) AS doc, (xmax = 0) AS created;

-- name: get_scenario
SELECT ccv_scenario_doc(s) AS doc
  FROM scenarios s
 WHERE s.tenant_id = %(tenant_id)s AND s.agent_id = %(agent_id)s
   AND s.scenario_id = %(scenario_id)s;

-- name: delete_scenario
-- The scenario and every requirement it has (manual or extracted) go together.
WITH gone AS (
    DELETE FROM scenarios
     WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s
       AND scenario_id = %(scenario_id)s
    RETURNING scenario_id
), requirements AS (
    DELETE FROM scenario_field_requirements r
     USING gone
     WHERE r.tenant_id = %(tenant_id)s AND r.agent_id = %(agent_id)s
       AND r.scenario_id = gone.scenario_id
)
SELECT count(*) FROM gone;

-- name: put_rule
INSERT INTO rules AS r (tenant_id, agent_id, rule_id, name, condition, action, scenario_id,
                        extraction_status, extraction_error, extraction_finished_at)
VALUES (%(tenant_id)s, %(agent_id)s, %(rule_id)s, %(name)s, %(condition)s, %(action)s,
        %(scenario_id)s, 'queued', NULL, NULL)
ON CONFLICT (tenant_id, agent_id, rule_id) DO UPDATE SET
    name = excluded.name, condition = excluded.condition, action = excluded.action,
    scenario_id = excluded.scenario_id,
    extraction_status = 'queued', extraction_error = NULL, extraction_finished_at = NULL,
    updated_at = clock_timestamp()
RETURNING ccv_rule_doc(r) AS doc, (xmax = 0) AS created;

-- name: get_rule
SELECT ccv_rule_doc(r) AS doc
  FROM rules r
 WHERE r.tenant_id = %(tenant_id)s AND r.agent_id = %(agent_id)s AND r.rule_id = %(rule_id)s;

-- name: delete_rule
WITH gone AS (
    DELETE FROM rules
     WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND rule_id = %(rule_id)s
    RETURNING rule_id
), requirements AS (
    DELETE FROM scenario_field_requirements q
     USING gone
     WHERE q.tenant_id = %(tenant_id)s AND q.agent_id = %(agent_id)s
       AND q.rule_id = gone.rule_id
)
SELECT count(*) FROM gone;

-- name: defer_extraction
-- Enqueue the extraction job on our own connection (inside the caller's transaction).
-- The queueing lock keeps one waiting job per scenario/rule: if one is already waiting
-- it will read the newest text when it runs, so the new defer is skipped.
SELECT procrastinate_defer_jobs_v1(ARRAY[
    ROW('ccv', 'ccv.extract_requirements', 0, NULL, %(queueing_lock)s, %(args)s::jsonb,
        NULL)::procrastinate_job_to_defer_v1])
 WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs
                    WHERE queueing_lock = %(queueing_lock)s AND status = 'todo');

-- name: set_scenario_extraction
-- A run's outcome is recorded only if the text is still the one it read (`seen`, its
-- updated_at when the run started): a PUT meanwhile queued a newer run, whose status
-- stands until that run ends.
UPDATE scenarios SET extraction_status = %(status)s, extraction_error = %(error)s,
       extraction_finished_at = CASE WHEN %(status)s IN ('done', 'failed')
                                     THEN clock_timestamp() END
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND scenario_id = %(source_id)s
   AND (%(seen)s::timestamptz IS NULL OR updated_at = %(seen)s::timestamptz)
RETURNING name, description, conditions, steps, NULL::text AS scenario_id, updated_at;

-- name: set_rule_extraction
UPDATE rules SET extraction_status = %(status)s, extraction_error = %(error)s,
       extraction_finished_at = CASE WHEN %(status)s IN ('done', 'failed')
                                     THEN clock_timestamp() END
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND rule_id = %(source_id)s
   AND (%(seen)s::timestamptz IS NULL OR updated_at = %(seen)s::timestamptz)
RETURNING name, condition, action, scenario_id, updated_at;

-- name: agent_definitions
-- What the extractor may map text to: the agent's active, enabled definitions (earlier
-- suggestions are not offered as existing; re-suggesting one is a no-op).
SELECT coalesce(json_agg(to_jsonb(d) ORDER BY d.name), '[]')
  FROM profile_field_definitions d
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND deleted_at IS NULL
   AND status = 'active' AND enabled;

-- name: drop_unreviewed_extracted
-- Re-extraction replaces what the last run proposed and nobody reviewed; manual and
-- reviewed requirements stay as they are. Answers the keys dropped (for the audit log).
DELETE FROM scenario_field_requirements
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s AND origin = 'extracted'
   AND review_status IN ('none', 'pending')
   AND ((%(kind)s = 'scenario' AND scenario_id = %(source_id)s AND rule_id IS NULL)
     OR (%(kind)s = 'rule' AND rule_id = %(source_id)s))
RETURNING scenario_id, rule_id, field_name, step_id;

-- name: insert_extracted
-- A reviewed requirement for the same field and step keeps its place (ON CONFLICT): no
-- row answered, nothing stored, nothing audited.
INSERT INTO scenario_field_requirements (
    id, tenant_id, agent_id, scenario_id, rule_id, field_name, step_id, required_level,
    fallback_action, when_condition, collection_order, confidence, needs_human_review,
    review_status, origin)
VALUES (%(id)s, %(tenant_id)s, %(agent_id)s, %(scenario_id)s, %(rule_id)s, %(field_name)s,
        %(step_id)s, %(required_level)s, %(fallback_action)s, %(when_condition)s,
        %(collection_order)s, %(confidence)s, %(needs_human_review)s, %(review_status)s,
        'extracted')
ON CONFLICT DO NOTHING
RETURNING id;

-- name: insert_suggestion
-- A field the agent has no definition for becomes a suggestion, once; a suggestion
-- somebody dismissed (deleted while still suggested) is never made again for that agent.
-- Bounds the text set ("must be over 18" -> min_age 18) travel with it (NULL: none).
INSERT INTO profile_field_definitions (
    id, tenant_id, agent_id, name, status, display_name, description, value_type,
    collection_prompt, "min", "max", min_age, max_age)
SELECT %(id)s, %(tenant_id)s, %(agent_id)s, %(name)s, 'suggested', %(display_name)s,
       %(description)s, %(value_type)s, %(collection_prompt)s, %(min)s, %(max)s,
       %(min_age)s, %(max_age)s
 WHERE NOT EXISTS (
       SELECT 1 FROM profile_field_definitions d
        WHERE d.tenant_id = %(tenant_id)s AND d.agent_id = %(agent_id)s
          AND d.name = %(name)s AND d.status = 'suggested' AND d.deleted_at IS NOT NULL)
ON CONFLICT (tenant_id, agent_id, name) WHERE deleted_at IS NULL DO NOTHING;

-- name: rules_naming_scenario
-- Rules that name a scenario: their requirements belong to it, so they go when it is
-- deleted and are extracted again when it is created anew.
SELECT rule_id FROM rules
 WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s
   AND scenario_id = %(scenario_id)s;

-- name: review_queue
-- Pending requirements of the agent, oldest first, after the cursor's (created_at, id),
-- each with the text it was extracted from: the rule's when it came from a rule, else the
-- scenario's. One a manual requirement hides is not enforced, so nobody needs to review it.
SELECT to_jsonb(r) AS requirement, r.scenario_id, r.rule_id, r.created_at, r.id,
       s.name, s.description, s.conditions, s.steps, ru.name, ru.condition, ru.action
  FROM scenario_field_requirements r
  LEFT JOIN rules ru
    ON r.rule_id IS NOT NULL AND ru.tenant_id = r.tenant_id
   AND ru.agent_id = r.agent_id AND ru.rule_id = r.rule_id
  LEFT JOIN scenarios s
    ON r.rule_id IS NULL AND s.tenant_id = r.tenant_id
   AND s.agent_id = r.agent_id AND s.scenario_id = r.scenario_id
 WHERE r.tenant_id = %(tenant_id)s AND r.agent_id = %(agent_id)s
   AND r.review_status = 'pending'
   AND (r.created_at, r.id) > (%(after_at)s::timestamptz, %(after_id)s::uuid)
   AND NOT (r.origin = 'extracted' AND r.scenario_id IS NOT NULL AND EXISTS (
       SELECT 1 FROM scenario_field_requirements m
        WHERE m.origin = 'manual' AND m.tenant_id = r.tenant_id
          AND m.agent_id = r.agent_id AND m.scenario_id = r.scenario_id
          AND m.field_name = r.field_name
          AND coalesce(m.step_id, '') = coalesce(r.step_id, '')))
 ORDER BY r.created_at, r.id
 LIMIT %(limit)s;
