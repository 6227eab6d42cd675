"""Property-based fuzzing of the whole public API from its own OpenAPI document: whatever the
input, the service answers with a 2xx/4xx (problem+json for errors), never a 5xx."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings


def test_no_server_errors(app, world, api):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {api.token('ent')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    seen: dict[str, set[int]] = {}

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
        def run(case):
            response = case.call(headers=headers)
            where = f"{case.method} {case.formatted_path}"
            seen.setdefault(where, set()).add(response.status_code)
            assert response.status_code < 500, (where, response.status_code, response.text[:500])
            if response.status_code >= 400:
                content_type = (response.headers.get("content-type") or [""])[0]
                assert content_type.startswith("application/problem+json"), (where, response.headers)

        run()
    assert seen
