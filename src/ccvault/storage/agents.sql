-- name: list_agents
-- Every agent a tenant has said anything about (definitions, scenarios, rules), with how
-- much of each it has and how many requirements wait for review: the console's agent list.
-- Agents are not rows of their own, so they are gathered from the three tables.
WITH named AS (
    SELECT agent_id FROM profile_field_definitions
     WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL
    UNION
    SELECT agent_id FROM scenarios WHERE tenant_id = %(tenant_id)s
    UNION
    SELECT agent_id FROM rules WHERE tenant_id = %(tenant_id)s
)
SELECT n.agent_id,
       (SELECT count(*) FROM profile_field_definitions d
         WHERE d.tenant_id = %(tenant_id)s AND d.agent_id = n.agent_id
           AND d.deleted_at IS NULL AND d.status = 'active') AS active_definitions,
       (SELECT count(*) FROM profile_field_definitions d
         WHERE d.tenant_id = %(tenant_id)s AND d.agent_id = n.agent_id
           AND d.deleted_at IS NULL AND d.status = 'suggested') AS suggested_definitions,
       (SELECT count(*) FROM scenarios s
         WHERE s.tenant_id = %(tenant_id)s AND s.agent_id = n.agent_id) AS scenarios,
       (SELECT count(*) FROM rules r
         WHERE r.tenant_id = %(tenant_id)s AND r.agent_id = n.agent_id) AS rules,
       (SELECT count(*) FROM scenario_field_requirements q
         WHERE q.tenant_id = %(tenant_id)s AND q.agent_id = n.agent_id
           AND q.review_status = 'pending') AS pending_reviews
  FROM named n
 ORDER BY n.agent_id
 LIMIT %(limit)s;

-- name: agent_scenarios
SELECT ccv_scenario_doc(s) AS doc
  FROM scenarios s
 WHERE s.tenant_id = %(tenant_id)s AND s.agent_id = %(agent_id)s
 ORDER BY s.scenario_id
 LIMIT %(limit)s;

-- name: agent_rules
SELECT ccv_rule_doc(r) AS doc
  FROM rules r
 WHERE r.tenant_id = %(tenant_id)s AND r.agent_id = %(agent_id)s
 ORDER BY r.rule_id
 LIMIT %(limit)s;
