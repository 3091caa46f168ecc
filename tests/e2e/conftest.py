"""The five services as real processes against the session's PostgreSQL, broker and SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from closeloop.demo import DemoWorkspace, seed_workspace
from closeloop.infra import free_port
from closeloop.stack import SERVICE_PORTS, ServiceStack
from tests.conftest import SECRET_KEY


# Package scope: the service processes run only while the e2e tests do, and never compete for
# consumer groups with the in-process services of the integration tests.
@pytest.fixture(scope="package")
def stack(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    # A claim older than 3 s counts as abandoned, so a send interrupted by a kill is retried quickly.
    env = {**stack_env, "CLOSELOOP_DISPATCH_SEND_CLAIM_TIMEOUT_S": "3"}
    services = ServiceStack(
        env=env,
        log_dir=tmp_path_factory.mktemp("service-logs"),
        ports={name: free_port() for name in SERVICE_PORTS},
    )
    services.start_all()
    try:
        services.wait_ready()
        yield services
    finally:
        services.stop_all()


@pytest.fixture
def urls(stack: ServiceStack) -> dict[str, str]:
    return {name: stack.url(name) for name in stack.ports}


@pytest.fixture
def demo(urls: dict[str, str], workspace: str) -> DemoWorkspace:
    """A workspace seeded the way ``make run`` seeds the demo: through the public REST APIs."""
    return seed_workspace(urls, secret_key=SECRET_KEY, workspace_id=workspace)
