"""The fixtures the CLI's tests share: a runtime on the real Redis and each database, with one
endpoint and a retention policy, for the commands that act on stored deliveries (retry, log
erase, storage, retention, audit)."""

from __future__ import annotations

import pytest

from tests.ops.test_phi_lifecycle import ENDPOINT


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(
        database_url=database_url,
        endpoints=[ENDPOINT],
        retention={"payload_days": 30, "rows_days": 90},
    )
