"""The installed `ccv` command documents how the job workers are run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CCV = Path(sys.executable).with_name("ccv")


def help_text(*command: str) -> str:
    """What `ccv <command> --help` prints, on a terminal wide enough for one line each."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [str(CCV), *command, "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("worker",), ["--concurrency", "CCV_WORKER_CONCURRENCY", "SIGTERM"]),
        (("serve",), ["--worker", "--no-worker", "--workers", "--host", "--port"]),
    ],
)
def test_help_of_the_worker_and_serve_commands_names_their_job_options(
    command: tuple[str, ...], expected: list[str]
) -> None:
    text = help_text(*command)

    missing = [option for option in expected if option not in text]
    assert missing == [], text


def test_serve_help_explains_that_no_worker_leaves_jobs_to_ccv_worker() -> None:
    text = " ".join(help_text("serve").split())

    assert "ccv worker" in text
