"""Property-based requests generated from the server's own OpenAPI schema (valid and invalid bodies,
odd strings, wrong types): none of them may get a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from archon.context import Runtime  # noqa: E402
from archon.serve import create_app  # noqa: E402
from backends.doubles import EchoBackend  # noqa: E402
from stores.store import Store  # noqa: E402
from tests.serve.conftest import KEY, draft_fuse, live  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'serve.db'}")
    # One pipeline: it answers any model name, so every valid body generated reaches a real run.
    specs = {p.name: p.build() for p in (draft_fuse(),)}
    app = create_app(specs, lambda: Runtime(backends={"fake": EchoBackend()}, store=store), api_keys=[KEY],
                     max_body_bytes=64 * 1024, timeout_s=10)
    with live(app) as srv:
        yield srv


def _each_operation(served, check, max_examples: int) -> int:
    """Run ``check`` on generated cases of every operation. Hypothesis is driven directly rather
    than through schemathesis' pytest plugin, which breaks with some pytest releases."""
    schema = schemathesis.openapi.from_url(served.root + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            check(case)

        run()
    return len(operations)


def test_no_request_gets_a_server_error(served):
    statuses: list[int] = []

    def check(case):
        response = case.call_and_validate(headers={"authorization": f"Bearer {KEY}"}, checks=[not_a_server_error])
        statuses.append(response.status_code)

    count = _each_operation(served, check, max_examples=100)
    assert count >= 4  # chat completions, models, one model, healthz
    # generated requests reached real runs and real refusals alike
    assert len(statuses) >= 100 and 200 in statuses and any(400 <= s < 500 for s in statuses)


def test_without_a_key_every_protected_path_is_401(served):
    def check(case):
        response = case.call()
        assert response.status_code < 500
        if case.path != "/healthz":
            assert response.status_code == 401

    _each_operation(served, check, max_examples=5)
