"""Property-based check of the API against its own OpenAPI document (/api/v1/openapi.json) with schemathesis.

Every operation gets a few generated requests through the real WSGI application (all middleware included),
authenticated with a principal's bearer token. Every response must not be a 5xx, must use a status code the
document declares, and must match the declared JSON schema. Path ids are pointed at real objects in the
principal's school so the generated bodies and query strings reach the selectors and services, not just the 404
branch (out-of-scope answers are covered in test_api.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from komu.accounts.services import api_token_issue
from komu.testing.world import World

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def _keep_the_test_connection_open() -> Any:
    """The WSGI handler closes database connections at the end of each request (request_finished); inside a test
    transaction that would close the connection the test is using (PostgreSQL). Django's own test client
    disconnects the same receivers while it makes requests."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def principal_headers(world: World) -> dict[str, str]:
    raw = api_token_issue(actor=world.user("principal_a"), name="schemathesis", expires_at=None).raw
    return {"Authorization": f"Bearer {raw}"}


# Loaded when the module is collected (the document needs no database). Not through
# schemathesis.pytest.from_fixture: its lazy loader sets pytest's private Node._nodeid, which pytest 9 removed.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure here is reproducible, never flaky
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(
    case: Any, world: World, principal_headers: dict[str, str]
) -> None:
    real_ids = {
        "student_id": str(world.students["a1_second"].pk),
        "school_id": world.school_a.pk,
        "class_id": world.class_a1.pk,
    }
    for name in list(case.path_parameters or {}):
        if name in real_ids:
            case.path_parameters[name] = real_ids[name]
    case.call_and_validate(headers=principal_headers, checks=CHECKS)
