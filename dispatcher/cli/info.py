"""``dispatcher info``: the queue, the workers and the deliveries by status, right now."""

from __future__ import annotations

import click

from .output import print_table, to_json


@click.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(as_json: bool) -> None:
    """Queue depth, scheduled retries, running and failed jobs, live workers, deliveries by status,
    and per ordered endpoint the keys waiting behind a head and the oldest such head's age."""
    from ..ops.info import age_text, collect
    from ..runtime import get_runtime

    document = collect(get_runtime())
    if as_json:
        click.echo(to_json(document))
        return
    print_table(
        ("queue", "queued", "oldest queued", "scheduled retries", "started", "failed jobs (RQ)"),
        [
            [
                document["queue"],
                document["queued"],
                age_text(document["oldest_queued_age_seconds"]),
                document["scheduled"],
                document["started"],
                document["failed_jobs"],
            ]
        ],
        title="queue",
    )
    columns = ("name", "hostname", "pid", "state", "current_job", "last_heartbeat")
    print_table(
        ("worker", "host", "pid", "state", "current job", "last heartbeat (UTC)", "alive"),
        [[w[c] for c in columns] + ["yes" if w["alive"] else "no"] for w in document["workers"]],
        title=f"workers ({len(document['workers'])})",
    )
    if document["ordered_endpoints"]:
        print_table(
            ("ordered endpoint", "keys waiting", "oldest waiting head"),
            [
                [o["endpoint"], o["keys_waiting"], age_text(o["oldest_waiting_head_age_seconds"])]
                for o in document["ordered_endpoints"]
            ],
            title="ordered endpoints",
        )
    counts = document["deliveries_by_status"]
    print_table(
        ("status", "deliveries"),
        [[status, count] for status, count in counts.items()] + [["total", sum(counts.values())]],
        title="deliveries",
    )
