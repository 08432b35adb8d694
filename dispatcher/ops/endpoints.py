"""Endpoint health for operators: the configured endpoints with their state, and re-sending what
was held back while one was disabled (``dispatcher endpoints``; no click here)."""

from __future__ import annotations

from typing import Any

from .. import store
from ..runtime import Runtime
from .bulk import Progress
from .resend import reopen_and_queue


def endpoint_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Every configured endpoint with its state and how many deliveries it holds back."""
    states = store.endpoint_states(runtime.engine)
    rows = []
    for endpoint in runtime.settings.endpoints:
        state = states.get(endpoint.name, {})
        disabled = bool(state.get("disabled"))
        rows.append(
            {
                "name": endpoint.name,
                "url": endpoint.url,
                "events": list(endpoint.events),
                "disabled": disabled,
                "reason": state.get("reason"),
                "disabled_at": state.get("disabled_at"),
                "held_back": len(store.held_back(runtime.engine, endpoint.name)) if disabled else 0,
            }
        )
    return rows


def resend_held_back(runtime: Runtime, name: str, progress: Progress | None = None) -> int:
    """Re-queues the deliveries failed ``endpoint_disabled`` for endpoint ``name`` (a fresh
    attempt budget each, same request ids); returns how many were re-queued."""
    held = store.held_back(runtime.engine, name)
    requeued = 0
    for request_id in held:
        if reopen_and_queue(runtime, request_id):
            requeued += 1
        if progress:
            progress(1)
    return requeued
