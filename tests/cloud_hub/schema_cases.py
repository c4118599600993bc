"""schemathesis against a running hub: every operation of some tags gets its own share of
generated requests, each checked against the OpenAPI schema (shared by the schema tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def run_schema_cases(
    hub_url: str,
    key: str,
    tags: list[str],
    mode: GenerationMode,
    examples: int,
    min_examples: int,
    steer: Callable[[Any], None],
) -> tuple[list[Any], dict[str, set[int]]]:
    """Generate ``mode`` requests for every operation tagged ``tags`` (at least
    ``min_examples`` each, ``examples`` in all), ``steer`` each case towards existing data,
    call the hub with ``key`` and check every response with ``CHECKS``. Returns the operations
    and the status codes each answered with.

    Each operation gets its own share: one strategy over all of them let hash order decide which
    were drawn, and an operation could go untried.
    """
    loaded = schemathesis.openapi.from_url(f"{hub_url}/openapi.json")
    operations = [r.ok() for r in loaded.include(tag=tags).get_all_operations()]
    answered: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=max(min_examples, examples // max(1, len(operations))),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            steer(case)
            response = case.call_and_validate(
                base_url=hub_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
            )
            answered.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            check()
        except Unsatisfiable:
            # A route with no input to get wrong (GET /health) has no negative case.
            if mode is not GenerationMode.NEGATIVE:
                raise
    return operations, answered
