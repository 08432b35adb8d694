"""The baseline RQ jobs the benchmark enqueues (imported by RQ workers as ``bench.jobs.*``)."""

from __future__ import annotations

import requests


def noop(*_args: object) -> None:
    """RQ's floor: a job that does nothing."""
    return None


def naive_post(url: str, body: bytes, key: str) -> int:
    """The naive delivery: one ``requests.post`` (a new connection each time, as in a forked horse)."""
    response = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "X-Webhook-Key": key},
        timeout=(5, 5),
    )
    return response.status_code
