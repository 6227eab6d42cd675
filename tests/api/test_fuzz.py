"""Property-based fuzzing of the whole public API from its own OpenAPI document.

Every operation, as an operator and as an enterprise user, on each database backend: whatever the
input, the service answers without a 5xx, errors are problem+json, and every response conforms to
the document (status code, content type, headers, body schema). ``FUZZ_EXAMPLES`` sets the examples
per operation and role (default 6, so this file stays within a few minutes on 2 cores in CI; the
black-box run used 200)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import PASSWORD

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("role", ["op", "ent"])
def test_every_operation_conforms(app, world, api, role):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {api.token(role)}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    seen: dict[str, set[int]] = {}

    def fresh_token() -> dict:
        r = api.client.post("/api/v1/auth/token", json={"username": role, "password": PASSWORD})
        assert r.status_code == 201
        return {"Authorization": f"Bearer {r.get_json()['token']}"}

    for operation in operations:
        # Revoking ends the token it is called with: that operation gets a throwaway token per case.
        revokes = operation.path.endswith("/auth/revoke")

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
            report_multiple_bugs=False,
        )
        def run(case):
            where = f"{case.method} {case.formatted_path}"
            sent = fresh_token() if revokes else headers  # noqa: B023 (run() is called in this same iteration)
            response = case.call(headers=sent)
            seen.setdefault(where, set()).add(response.status_code)
            if response.status_code >= 400:
                content_type = (response.headers.get("content-type") or [""])[0]
                assert content_type.startswith("application/problem+json"), (where, response.headers)
            case.validate_response(response, checks=CHECKS, headers=sent)

        try:
            run()
        except Exception as exc:  # collect every operation's first failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert seen
    # the token stayed valid throughout: most operations answered something else than 401
    authorised = [where for where, codes in seen.items() if codes - {401}]
    assert len(authorised) >= len(seen) * 0.8, sorted(set(seen) - set(authorised))
    assert not failures, "\n\n".join(failures)
