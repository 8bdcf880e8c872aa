"""/api/openapi.json tells the truth: schemathesis generates requests from it (schema-valid
and schema-violating ones, and undeclared methods) against a real served app on SQLite, as a
logged-in patient, doctor and scheduler, and every response must conform: no server error, a
documented status, a body matching its schema, a 405 with ``Allow``, valid data accepted and
invalid data refused. Bounded (a few examples per operation) to stay within CI's time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from consult.app import APIS
from consult.demo import DEMO_PASSWORD, SPECIALTIES
from consult.http.openapi import build_openapi, with_specialties
from tests.support import demo_server, demo_totp_code

REPO = Path(__file__).resolve().parents[2]
ROLES = ("anna@demo.test", "dr.house@demo.test", "scheduler@demo.test")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo server in its own process: schemathesis calls it synchronously, which would
    block a server in the test's own event loop."""
    with demo_server(tmp_path_factory.mktemp("conformance")) as server:
        yield server.url


@pytest.fixture(scope="module")
def role_headers(served: str) -> list[dict[str, str]]:
    """A logged-in patient's, doctor's and scheduler's headers: each case is sent as each."""
    headers = []
    for email in ROLES:
        login = {"email": email, "password": DEMO_PASSWORD}
        response = requests.post(served + "/api/login", json=login, timeout=10)
        assert response.status_code == 200, response.text
        if response.json()["totp_required"]:  # staff: the demo secret's code
            step = {"challenge": response.json()["challenge"], "code": demo_totp_code()}
            response = requests.post(served + "/api/login/totp", json=step, timeout=10)
            assert response.status_code == 200, response.text
        headers.append({"Authorization": f"Bearer {response.json()['token']}"})
    return headers


def served_document() -> dict[str, Any]:
    """/api/openapi.json as a demo server serves it (test_the_document_is_the_served_one)."""
    document = build_openapi([route for api in APIS for route in api.routes])
    return with_specialties(document, sorted(SPECIALTIES))


# Loaded at collection, so that each operation is its own test. Logging out (here or
# everywhere) would end the role's session half-way through the run.
# schemathesis.toml: the operations that refuse rules JSON Schema cannot state.
CONFIG = SchemathesisConfig.from_path(REPO / "schemathesis.toml")
schema = (
    schemathesis.openapi.from_dict(served_document(), config=CONFIG)
    .exclude(path="/api/logout")
    .exclude(path="/api/me/sessions/logout-all")
)


def test_the_document_is_the_served_one(served: str) -> None:
    assert requests.get(served + "/api/openapi.json", timeout=10).json() == served_document()


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_conforms_to_its_document(
    case: Any, served: str, role_headers: list[dict[str, str]]
) -> None:
    for headers in role_headers:
        case.call_and_validate(base_url=served, headers=headers, timeout=30)
