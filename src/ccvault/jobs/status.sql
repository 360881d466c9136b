-- name: job_overview
-- Counts per state, the most recent jobs with their last event, and whether any worker
-- has sent a heartbeat lately: everything GET /admin/jobs and /readyz need, in one query.
SELECT
    (SELECT coalesce(json_object_agg(status, n), '{}')
       FROM (SELECT status, count(*) AS n FROM procrastinate_jobs GROUP BY status) c)
        AS counts,
    (SELECT coalesce(json_agg(j ORDER BY j.id DESC), '[]') FROM (
        SELECT job.id, job.task_name, job.queue_name, job.status, job.attempts,
               job.args, job.scheduled_at,
               (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = job.id)
                   AS last_event_at
          FROM procrastinate_jobs job
         ORDER BY job.id DESC
         LIMIT %(limit)s) j) AS recent,
    (SELECT count(*) FROM procrastinate_workers
      WHERE last_heartbeat > now() - make_interval(secs => %(alive_seconds)s))
        AS live_workers,
    (SELECT count(*) FROM procrastinate_jobs
      WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now()))
        AS backlog;
