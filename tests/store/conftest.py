"""The store's tests run on both backends: an engine on SQLite and one on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from dispatcher import store


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = store.create_store_engine(database_url)
    yield engine
    engine.dispose()
