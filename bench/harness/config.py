"""The YAML configuration our processes read (``DISPATCHER_CONFIG``), written to the temp dir.

Only written here; :func:`bench.harness.driver.our_config` also checks it with the code under
test's ``parse_settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from . import KEY, QUEUE_NAME, REDIS_URL


def write_config(
    tmp: Path,
    name: str,
    url: str,
    database_url: str,
    threads: int | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """``config-<name>.yaml`` in ``tmp``: Redis DB 4, queue ``bench-webhooks``, one endpoint at
    ``url`` with a key; ``threads`` is ``worker.threads`` (the default when None); ``extra``
    top-level settings (``storage_keys``) are added as they are."""
    raw: dict[str, Any] = {
        "source": "Baremeds",
        "environment": "bench",
        "redis_url": REDIS_URL,
        "database_url": database_url,
        "queue_name": QUEUE_NAME,
        "process_log": str(tmp / f"logs-{name}" / "send-webhook-request-process.log"),
        "delivery": {"timeout": 5, "max_attempts": 3, "backoff": [1]},
        "endpoints": [{"name": "bench", "url": url, "key": KEY}],
        "allow_networks": ["127.0.0.0/8"],
    }
    if threads is not None:
        raw["worker"] = {"threads": threads}
    raw.update(extra or {})
    path = tmp / f"config-{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path, raw
