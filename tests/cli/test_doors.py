""":func:`~dispatcher.cli.doors.run_door`, the one way a command runs an ``ops`` door, called from
a small click command in-process (click's runner) with the real :class:`~dispatcher.ops.prune.Prune`
door against the real Redis and SQLite: a dry run and a plan with nothing to do are previewed
without asking; otherwise the plan is said, asked about unless ``--yes``, carried out and audited
once; ``--json`` keeps stdout to the report alone. Each command's use of it is tested with the
command."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import click
from click.testing import CliRunner

from dispatcher.cli.doors import Asked, preview_line, run_door
from dispatcher.ops import audit
from dispatcher.ops.door import Plan
from dispatcher.ops.prune import Prune
from dispatcher.runtime import get_runtime
from dispatcher.times import utcnow
from dispatcher.vocabulary import FINAL_STATUSES, AuditAction, DeliveryStatus
from tests.ops.test_resend import HOURS, NOW, endpoints, seed, statuses

NOTE = "a note for the operator"


def pruning(asked: Asked, heading: str | None = None) -> click.Command:
    """A command that prunes what was last updated over 30 days ago through :func:`run_door`."""

    @click.command()
    def command() -> None:
        runtime = get_runtime()
        door = Prune(FINAL_STATUSES, utcnow() - timedelta(days=30))
        plan = dataclasses.replace(door.plan(runtime), notes=(NOTE,))
        report = run_door(
            runtime,
            door,
            plan,
            asked,
            bar="pruning",
            question="Delete them?",
            heading=heading,
            previewed=lambda r: f"previewed {r.matched}, dry run {r.dry_run}",
            done=lambda r: f"deleted {r.deleted} and {r.attempts_deleted} attempts",
        )
        click.echo(f"returned deleted={report.deleted}", err=True)

    return command


def run(asked: Asked, input: str | None = None, heading: str | None = None):
    return CliRunner().invoke(pruning(asked, heading), [], input=input, catch_exceptions=False)


def old_rows(runtime) -> list[str]:
    return seed(
        runtime.engine,
        1,
        3,
        status=DeliveryStatus.DELIVERED,
        created_at=NOW - 40 * 24 * HOURS,
        attempt_rows=True,
    )


def test_a_dry_run_is_previewed_without_asking_and_changes_nothing(make_runtime) -> None:
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    ids = old_rows(runtime)

    result = run(Asked(dry_run=True))

    assert result.exit_code == 0
    assert result.stdout == "previewed 3, dry run True\n"
    assert result.stderr == f"{NOTE}\nreturned deleted=0\n"
    assert set(statuses(runtime)) == set(ids) and audit.entries(runtime.engine) == []


def test_the_plan_is_said_and_asked_about_and_a_no_changes_nothing(make_runtime) -> None:
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    ids = old_rows(runtime)

    declined = run(Asked(), input="n\n")

    assert declined.exit_code == 1
    assert declined.stdout.startswith("3 deliveries (delivered: 3, failed: 0) last updated before ")
    assert "Delete them?" in declined.stderr and "aborted; nothing was changed" in declined.stderr
    assert set(statuses(runtime)) == set(ids) and audit.entries(runtime.engine) == []

    agreed = run(Asked(), input="y\n", heading="about to prune")
    assert agreed.exit_code == 0
    assert agreed.stdout == "about to prune\ndeleted 3 and 3 attempts\n"
    assert statuses(runtime) == {}
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action) == (audit.os_actor(), "prune") and entry.counts["deleted"] == 3


def test_yes_and_json_run_without_asking_and_print_only_the_report(make_runtime) -> None:
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    old_rows(runtime)

    result = run(Asked(yes=True, as_json=True))

    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["matched"], report["deleted"], report["attempts_deleted"], report["dry_run"]) == (
        3,
        3,
        3,
        False,
    )
    assert NOTE not in result.stderr and "Delete them?" not in result.stderr
    assert result.stderr.startswith("3 deliveries (delivered: 3, failed: 0)")
    assert len(audit.entries(runtime.engine)) == 1


def test_a_plan_with_nothing_to_do_is_previewed_without_asking(make_runtime) -> None:
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))

    result = run(Asked())  # no --yes and no answer: it would abort if it asked

    assert result.exit_code == 0
    assert result.stdout == "previewed 0, dry run False\n"
    assert "Delete them?" not in result.stderr
    assert audit.entries(runtime.engine) == []  # a prune preview is not audited


def test_a_previews_first_line_is_the_plan_then_what_became_of_it() -> None:
    plan = Plan(action=AuditAction.PRUNE, count=2, description="2 deliveries match", selection={})
    assert preview_line(plan, dry_run=True) == "2 deliveries match; dry run, nothing was changed"
    assert (
        preview_line(plan, dry_run=True, changed="erased")
        == "2 deliveries match; dry run, nothing was erased"
    )
    assert preview_line(plan, dry_run=False) == "2 deliveries match; nothing to do"
    assert preview_line(plan, dry_run=False, idle="all sealed") == "2 deliveries match; all sealed"
