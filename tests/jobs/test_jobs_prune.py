"""The daily prune keeps the job table from growing without bound."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ccvault.jobs.queue import PRUNE_TASK, _prune_job, build_app
from ccvault.runtime import Vault


async def test_prune_removes_old_succeeded_jobs_and_keeps_failed_and_recent_ones(
    vault: Vault,
) -> None:
    app = build_app(vault.settings, periodic=False)
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            """
            INSERT INTO procrastinate_jobs (queue_name, task_name, status, args)
            VALUES ('ccv', 'test.prune', 'succeeded', '{"age": "old"}'),
                   ('ccv', 'test.prune', 'failed', '{"age": "old"}'),
                   ('ccv', 'test.prune', 'succeeded', '{"age": "new"}')
            RETURNING id
            """
        )
        old_ok, old_failed, new_ok = [row[0] for row in await cur.fetchall()]
        # Events date a job's end; age two of them past the history window.
        await conn.execute(
            """
            INSERT INTO procrastinate_events (job_id, type, at)
            SELECT id, 'succeeded', now() - make_interval(hours => %s)
              FROM unnest(%s::bigint[]) AS id
            """,
            (vault.settings.job_history_hours + 1, [old_ok, old_failed]),
        )
        await conn.execute(
            "INSERT INTO procrastinate_events (job_id, type, at) VALUES (%s, 'succeeded', now())",
            (new_ok,),
        )

    context: Any = SimpleNamespace(app=app, additional_context={"vault": vault})
    async with app.open_async():
        await _prune_job(context)
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM procrastinate_jobs WHERE id = ANY(%s)", ([old_ok, old_failed, new_ok],)
        )
        left = {row[0] for row in await cur.fetchall()}
    assert left == {old_failed, new_ok}
    assert PRUNE_TASK in app.tasks
