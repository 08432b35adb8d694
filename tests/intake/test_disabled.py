"""The one rule for a disabled endpoint: the state read through the process's cache (or fresh),
and what a refused read says."""

from __future__ import annotations

import pytest

from dispatcher import StoreUnavailable, store
from dispatcher.intake.disabled import disabled_endpoints, held_back

ENDPOINTS = [{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123"}]


def test_a_fresh_read_sees_a_change_the_cache_does_not_yet(make_runtime) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    assert disabled_endpoints(runtime) == {}
    store.set_endpoint_disabled(runtime.engine, "partner-a", True, "disabled by an operator")
    assert disabled_endpoints(runtime) == {}  # cached for a few seconds
    assert disabled_endpoints(runtime, fresh=True) == {"partner-a": "disabled by an operator"}
    assert held_back("partner-a", disabled_endpoints(runtime)) and not held_back("partner-b", {"partner-a"})


def test_a_database_that_refuses_is_store_unavailable_naming_it(make_runtime) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS, database_url="postgresql+psycopg://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1"):
        disabled_endpoints(runtime)
