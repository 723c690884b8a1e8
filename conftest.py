"""Root test configuration: hypothesis profiles and the e2e marker."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# "ci" (default) keeps property tests quick; "fuzz" (nox -s fuzz) digs much deeper.
settings.register_profile("ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", deadline=None, max_examples=20_000, suppress_health_check=list(HealthCheck))
settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test with real daemons or subprocesses")
