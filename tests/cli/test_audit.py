"""``dispatcher audit list`` in-process (click's runner) against the real Redis, on SQLite and
PostgreSQL: every operator action the CLI takes is one row, listed oldest first as JSON or a
table, with no PHI; the options narrow it."""

from __future__ import annotations

import json

from dispatcher import dispatch
from tests.cli.helpers import invoke
from tests.ops.test_phi_lifecycle import MESSAGE, finished, message


def test_every_operator_action_is_audited_and_listed(runtime) -> None:
    engine = runtime.engine
    request_id = dispatch("message_created", message())[0]
    finished(engine, request_id, "failed", days_ago=2)
    assert invoke("retry", request_id).exit_code == 0
    finished(engine, request_id, "failed", days_ago=2)
    assert invoke("retry", "--failed", "--yes").exit_code == 0
    finished(engine, request_id, "failed", days_ago=2)
    assert invoke("replay", "--since", "1d", "--endpoint", "pharmacy", "--yes").exit_code == 0
    assert invoke("endpoints", "disable", "pharmacy").exit_code == 0
    assert invoke("endpoints", "enable", "pharmacy", "--no-resend").exit_code == 0
    assert invoke("prune", "--older-than", "1d", "--yes").exit_code == 0
    assert invoke("log", "export", "--rows", "deliveries").exit_code == 0
    listed = json.loads(invoke("audit", "list", "--json").stdout)
    assert [e["action"] for e in listed] == [
        "retry",
        "retry",
        "replay",
        "endpoints disable",
        "endpoints enable",
        "prune",
        "log export",
    ]
    assert {e["actor"] for e in listed} == {listed[0]["actor"]} and listed[0]["actor"]
    assert listed[0]["selection"] == {"request_ids": [request_id]}
    assert listed[5]["counts"]["deleted"] == 1
    assert MESSAGE not in json.dumps(listed)
    table = invoke("audit", "list", "--since", "1h")
    assert "endpoints disable" in table.stdout and "who" in table.stdout


def test_an_empty_trail_and_the_options_that_narrow_it(runtime) -> None:
    assert invoke("audit", "list", "--json").stdout == "[]\n"
    assert invoke("audit", "list").stdout == "no audit entries\n"
    assert invoke("audit", "list", "--since", "1h").stdout == "no audit entries in that time\n"
    for _ in range(2):
        assert invoke("endpoints", "disable", "pharmacy").exit_code == 0
        assert invoke("endpoints", "enable", "pharmacy", "--no-resend").exit_code == 0

    newest = json.loads(invoke("audit", "list", "--limit", "3", "--json").stdout)
    assert [e["action"] for e in newest] == ["endpoints enable", "endpoints disable", "endpoints enable"]
    everything = json.loads(invoke("audit", "list", "--json").stdout)
    assert everything[1:] == newest and len(everything) == 4
    assert (
        invoke("audit", "list", "--since", "2099-01-01T00:00:00Z").stdout == "no audit entries in that time\n"
    )

    for args in (("--limit", "0"), ("--since", "yesterday")):
        refused = invoke("audit", "list", *args)
        assert refused.exit_code == 2 and f"'{args[0]}'" in refused.stderr
