"""The retry strategy of every vault job: `attempts` runs in all, the n-th retry waiting
base * 2^(n-1) seconds (CCV_JOB_RETRY_ATTEMPTS, CCV_JOB_RETRY_BASE_SECONDS). No servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from procrastinate.jobs import Job

from ccvault.jobs.queue import ExponentialBackoff


def failed_job(attempts: int) -> Job:
    """A job that has failed `attempts` times before the current failure."""
    return Job(id=1, queue="ccv", lock=None, queueing_lock=None, task_name="t", attempts=attempts)


@pytest.mark.parametrize("base", [1.0, 60.0, 0.5, 2.5])
def test_each_retry_waits_twice_as_long_as_the_one_before_starting_from_the_base(
    base: float,
) -> None:
    strategy = ExponentialBackoff(attempts=3, base_seconds=base)

    for earlier_failures, wait in enumerate([base, 2 * base]):
        before = datetime.now(UTC)
        decision = strategy.get_retry_decision(
            exception=RuntimeError("boom"), job=failed_job(earlier_failures)
        )
        after = datetime.now(UTC)
        assert decision is not None and decision.retry_at is not None
        delay = timedelta(seconds=wait)
        assert before + delay <= decision.retry_at <= after + delay, (earlier_failures, wait)


@pytest.mark.parametrize(("attempts", "retried"), [(1, 0), (2, 1), (3, 2), (5, 4)])
def test_a_job_runs_at_most_attempts_times_in_all(attempts: int, retried: int) -> None:
    strategy = ExponentialBackoff(attempts=attempts, base_seconds=1)

    decisions = [
        strategy.get_retry_decision(exception=RuntimeError("boom"), job=failed_job(n))
        for n in range(attempts)
    ]

    assert [d is not None for d in decisions] == [True] * retried + [False]
