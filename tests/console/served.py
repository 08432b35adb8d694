"""The console served by a real uvicorn in a thread of the test process, so a test can hold the
app at a known point (a patched function waiting on an event) while real clients send requests
at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.conftest import wait_for

from .browser import free_port


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` on a free port of 127.0.0.1; its base URL. Stopped (gracefully) on exit."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30, message="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
