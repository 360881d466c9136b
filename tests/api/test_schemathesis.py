"""Schemathesis against the app in-process: every phase `schemathesis run` has (examples,
coverage, fuzzing, then stateful sequences), valid and invalid requests, every check.

It drives Schemathesis' engine, as its CLI does, rather than the pytest loader: the app
needs the suite's servers, so its schema comes from a fixture, and `from_fixture` breaks
on pytest 9.2 (it sets the private `Function._nodeid`). Its own database (its thousands
of writes and sweeps touch no other test's data) and its own app, whose lifespan
Schemathesis runs on its event-loop thread. The tenant and admin keys reach it through
the document's own security schemes. Bounded to about 3,000 requests (CCV_FUZZ_EXAMPLES
per operation in the fuzzing phase; the other phases add their own) and the same seed
every run unless CCV_FUZZ_SEED says otherwise, so what it finds reproduces. Any problem
it finds fails the test.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import engine
from schemathesis.engine import Status, events
from schemathesis.python import asgi

from ccvault import migrations
from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.storage.db import open_pool
from ccvault.storage.tenants import TenantStore
from ccvault.storage.urls import libpq_url, with_database

EXAMPLES = int(os.environ.get("CCV_FUZZ_EXAMPLES", "40"))


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """The import's body: the generated ImportLine as one NDJSON line (a non-object value
    too: the route must report it as a bad line, not fail)."""
    return json.dumps(value).encode() + b"\n"


STEPS = int(os.environ.get("CCV_FUZZ_STATEFUL_STEPS", "300"))
SEED = int(os.environ.get("CCV_FUZZ_SEED", "20251103"))


@pytest.fixture(scope="module")
def fuzz_database(database_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this module alone, dropped afterwards."""
    name = f"ccv_fuzz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(database_server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(database_server_url, name)
    migrations.upgrade(url)
    yield url
    with psycopg.connect(libpq_url(database_server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
async def fuzz_key(fuzz_database: str) -> str:
    """A tenant key of that database (a pool of our own: the app's lives on another loop)."""
    pool = await open_pool(fuzz_database, min_size=1, max_size=1)
    try:
        _, key = await TenantStore(pool).create("schemathesis", "warn")
    finally:
        await pool.close()
    return key


@pytest.fixture(scope="module")
def fuzz_settings(settings: Settings, fuzz_database: str) -> Settings:
    """The suite's settings (servers, admin key) on that database, with no job worker."""
    update = {"database_url": fuzz_database, "in_process_worker": False, "orphan_pause": 0}
    return settings.model_copy(update=update)


@pytest.fixture(scope="module")
def fuzz_app(fuzz_settings: Settings) -> Iterator[FastAPI]:
    """The app on that database; Schemathesis runs its lifespan, so it opens its own vault."""
    app = create_app(fuzz_settings)
    yield app
    # Closes the app's vault now rather than at interpreter exit, after the database is gone.
    asgi.shutdown_lifespans()


def config(tenant_key: str, admin_key: str) -> schemathesis.Config:
    """Every check, every phase, the keys through the document's security schemes."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "auth": {
                "openapi": {
                    "tenantKey": {"bearer": tenant_key},
                    "adminKey": {"bearer": admin_key},
                }
            },
            "checks": {
                "enabled": True,
                # 422 is also the contract's answer to schema-valid requests that break a rule
                # no schema states: source_item_id without source_item_type, missing-fields
                # without scenario_id or rule_id, a validation_regex that does not compile, a
                # when_condition that does not parse, text PostgreSQL cannot store. 412 is
                # HTTP's answer to an If-Match that names no version the profile has (any
                # string is a valid header, and one that is not an entity tag never matches).
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "403", "404", "409", "412", "422"]
                },
            },
            # Reads that answer 200 after a DELETE under their path, by contract: a deleted
            # asset stays readable for audit, history keeps deleted versions, and the
            # requirements of an unknown scenario are an empty list.
            "operations": [
                {"include-path": path, "checks": {"use_after_free": {"enabled": False}}}
                for path in (
                    "/v1/assets/{asset_id}",
                    "/v1/profiles/{customer_id}/fields/{name}/history",
                    "/v1/agents/{agent_id}/scenarios/{scenario_id}/requirements",
                )
            ]
            + [
                # The bulk import answers 200 with the bad lines listed (DESIGN §8: bad
                # lines are reported, good ones stored), so a line that breaks the schema
                # is not "rejected" the way a JSON body is; and its path is also
                # /v1/profiles/{customer_id} for a customer named "import", whose GET and
                # PATCH rightly appear in Allow.
                {
                    "include-path": "/v1/profiles/import",
                    "checks": {
                        "negative_data_rejection": {"enabled": False},
                        "allow_header_conformance": {"enabled": False},
                    },
                }
            ],
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": STEPS},
            },
            # No shrinking: a failure is reported with the request that found it, and
            # shrinking one replays it hundreds of times against the database.
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                "no-shrink": True,
                # No example database: every run starts from the seed alone, writes no files.
                "database": "none",
            },
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        }
    )


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app: FastAPI, fuzz_settings: Settings, fuzz_key: str) -> Any:
    """The published document, loaded the way a client would."""
    assert fuzz_settings.admin_api_key is not None
    admin_key = fuzz_settings.admin_api_key.get_secret_value()
    return schemathesis.openapi.from_asgi(
        "/openapi.json", fuzz_app, config=config(fuzz_key, admin_key)
    )


@dataclass
class Outcome:
    """What a run found: requests made, failed checks and errors, phase by phase."""

    requests: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)
    # "METHOD /path: check" or "METHOD /path: server error: message" -> curl lines
    problems: dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        """Requests per phase, then each distinct problem with the requests that show it."""
        lines = [
            f"{sum(self.requests.values())} requests: {self.requests}",
            f"phases: {self.phases}; seconds: {self.seconds}",
        ]
        lines += [f"{key}\n{curl}" for key, curl in sorted(self.problems.items())]
        return "\n".join(lines)


def run(schema: Any) -> Outcome:
    """Run every phase the way `schemathesis run` does, and sum up its events.

    In-process, an unhandled exception reaches the caller after the 500 went out
    (Starlette re-raises it for the server to log), so a server error arrives as an
    engine error, not as a failed check: both count as problems.
    """
    outcome = Outcome()
    started: dict[str, float] = {}
    unanswered: dict[str, str] = {}  # operation -> the request that raised
    errors: list[tuple[str, str]] = []
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.PhaseStarted):
            started[event.phase.name.value] = event.timestamp
        elif isinstance(event, events.PhaseFinished):
            name = event.phase.name.value
            outcome.phases[name] = event.status.value
            outcome.seconds[name] = round(event.timestamp - started.get(name, event.timestamp), 1)
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            phase = event.phase.value
            outcome.requests[phase] = outcome.requests.get(phase, 0) + len(recorder.interactions)
            for nodes in recorder.checks.values():
                for node in nodes:
                    if node.status is Status.FAILURE and node.failure_info is not None:
                        failure = node.failure_info.failure
                        key = f"{failure.operation}: {node.name}: {failure.title}"
                        outcome.problems.setdefault(key, node.failure_info.code_sample)
            for case_id, case in recorder.cases.items():
                if case_id not in recorder.interactions:
                    unanswered.setdefault(case.value.operation.label, case.value.as_curl_command())
        elif isinstance(event, events.NonFatalError):
            errors.append((event.label, str(event.value).splitlines()[0]))
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            for failure in event.failures:
                outcome.problems.setdefault(f"{failure.operation}: {failure.title}", "")
    for label, message in errors:
        outcome.problems.setdefault(f"{label}: server error: {message}", unanswered.get(label, ""))
    return outcome


@pytest.mark.timeout(900)
def test_generated_requests_get_only_documented_answers(fuzz_schema: Any) -> None:
    outcome = run(fuzz_schema)
    print(outcome.report())
    assert "stateful" in outcome.phases, outcome.report()
    assert list(outcome.problems) == [], outcome.report()
