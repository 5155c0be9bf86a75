"""The reliability suite starts the real gateway as the e2e tests do (their fixture, reused)."""
from __future__ import annotations

import resource

import pytest

from tests.e2e.conftest import Gateway, gateway, gateway_factory, shared_gateway  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def raise_own_fd_limit():
    """The floods open thousands of sockets from this process too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
