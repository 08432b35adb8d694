"""``dispatcher endpoints add|edit|show|pause|resume|rotate-key|rotate-secret|remove|import``
in-process (click's runner) against the real Redis and SQLite: each change said in one line and
taken at once; a bad setting one line naming it, exit 2, nothing changed; secrets read from the
environment or stdin, masked in ``show``, printed once by ``rotate-secret``, never in the audit;
``remove`` refused while deliveries are pending unless ``--force``, asked with the count;
``import --replace`` shows the plan and asks first."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.ops import audit
from dispatcher.store import endpoint_catalog
from tests.cli.helpers import invoke

ORDER = events.CATALOGUE["order_changed"].example()
PARTNERS = [{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-endpoints-a-123"}]
KEY = "cli-key-never-shown-123"
TOKEN = "cli-token-never-shown-456"


@pytest.fixture
def runtime(make_runtime):
    return make_runtime(endpoints=PARTNERS)


def audit_text(runtime) -> str:
    with runtime.engine.connect() as conn:
        return " ".join(str(v) for row in conn.execute(sa.select(store.AUDIT)).all() for v in row)


def test_add_takes_every_kind_of_option_and_show_masks_the_secrets(runtime, monkeypatch) -> None:
    monkeypatch.setenv("PARTNER_KEY", KEY)
    monkeypatch.setenv("PARTNER_TOKEN", TOKEN)
    result = invoke(
        "endpoints", "add", "partner-b", "--url", "http://127.0.0.1:9/b", "--events", "order_changed,message_created",
        "--ordered", "--key-env", "PARTNER_KEY", "--max-attempts", "3", "--timeout", "7.5", "--backoff", "[5, 60]",
        "--rate-per-second", "2", "--ordering-fields", "order_number", "--set", "auth={bearer: ${PARTNER_TOKEN}}",
        "--set", "headers.X-Partner-Account=clinic-17",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "partner-b: added; running workers take it within seconds\n"
    endpoint = runtime.settings.require_endpoint("partner-b")
    assert (endpoint.key, endpoint.events, endpoint.ordered, endpoint.rate_per_second) == (
        KEY,
        ("order_changed", "message_created"),
        True,
        2.0,
    )
    assert endpoint.auth.token == TOKEN and endpoint.headers == (("X-Partner-Account", "clinic-17"),)
    assert (endpoint.delivery.max_attempts, endpoint.delivery.timeout) == (3, 7.5)

    shown = json.loads(invoke("endpoints", "show", "partner-b", "--json").stdout)
    assert shown["settings"]["key"] == "****" and shown["settings"]["auth"] == {"bearer": "****"}
    assert shown["settings"]["backoff"] == [5, 60] and shown["paused"] is False and shown["pending"] == 0
    table = invoke("endpoints", "show", "partner-b").stdout
    assert "max_attempts" in table and "enabled" in table
    for text in (json.dumps(shown), table, audit_text(runtime)):
        assert KEY not in text and TOKEN not in text
    assert audit.entries(runtime.engine)[-1].selection["settings"] == [
        "url", "ordered", "events", "ordering_fields", "max_attempts", "timeout", "backoff", "rate_per_second",
        "auth", "headers", "key",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--url", "ftp://127.0.0.1/b"), "error: url: must be an http:// or https:// URL with a host, got 'ftp://127.0.0.1/b'\n"),
        (("--url", "http://h/b", "--events", "order_changed,nope"), "error: events[1]: unknown event 'nope'; expected"),
        (("--url", "http://h/b", "--max-attempts", "0"), "error: max_attempts: must be greater than 0, got 0\n"),
        (("--url", "http://h/b", "--set", "auth={bearer: ${NOT_SET_ANYWHERE}}"), "error: auth.bearer: environment variable NOT_SET_ANYWHERE is not set\n"),
        (("--url", "http://h/b", "--backoff", "[1, "), "error: backoff: not valid YAML"),
        (("--url", "http://h/b", "--key-env", "NOT_SET_ANYWHERE"), "error: key: environment variable NOT_SET_ANYWHERE is not set\n"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_one_line_naming_it_exit_2_and_nothing_changed(runtime, args, error) -> None:
    runtime.adopt_file_endpoints()
    before = endpoint_catalog.catalog(runtime.engine)
    result = invoke("endpoints", "add", "partner-b", *args)
    assert result.exit_code == 2 and result.stderr.startswith(error) and result.stderr.count("\n") == 1
    assert endpoint_catalog.catalog(runtime.engine) == before and audit.entries(runtime.engine) == []


def test_a_duplicate_name_is_one_line_exit_2(runtime) -> None:
    result = invoke("endpoints", "add", "partner-a", "--url", "http://127.0.0.1:9/x")
    assert result.exit_code == 2
    assert (
        result.stderr == "error: name: an endpoint named 'partner-a' exists; choose another name or edit it\n"
    )
    assert runtime.settings.require_endpoint("partner-a").url == "http://127.0.0.1:9/a"


def test_edit_changes_the_settings_given_and_says_which(runtime) -> None:
    result = invoke(
        "endpoints", "edit", "partner-a", "--url", "http://127.0.0.1:9/new", "--no-ordered", "--unset", "key"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "partner-a: changed url, key; running workers take it within seconds\n"
    assert runtime.settings.require_endpoint("partner-a").key_configured is False
    again = invoke("endpoints", "edit", "partner-a", "--url", "http://127.0.0.1:9/new")
    assert again.stdout == "partner-a: nothing changed (the values given are those stored)\n"
    bad = invoke("endpoints", "edit", "partner-a", "--timeout", "5s")
    assert (bad.exit_code, bad.stderr) == (2, "error: timeout: expected a number, got str '5s'\n")
    bare = invoke("endpoints", "edit", "partner-a")
    assert bare.exit_code == 2 and "name a setting to change" in bare.stderr


def test_pause_and_resume_say_what_waits_and_list_shows_it(runtime) -> None:
    runtime.adopt_file_endpoints()
    dispatch("order_changed", ORDER)
    assert invoke("endpoints", "pause", "partner-a").stdout == (
        "partner-a: paused; its deliveries wait (1 pending) until `dispatcher endpoints resume partner-a`\n"
    )
    assert invoke("endpoints", "pause", "partner-a").stdout == "partner-a: already paused\n"
    listed = json.loads(invoke("endpoints", "list", "--json").stdout)
    assert listed[0]["paused"] is True and "paused" in invoke("endpoints", "list").stdout
    assert invoke("endpoints", "resume", "partner-a").stdout == (
        "partner-a: resumed; 1 waiting delivery sent to the queue\n"
    )
    assert invoke("endpoints", "resume", "partner-a").stdout.startswith("partner-a: was not paused;")


def test_rotate_key_reads_stdin_and_says_the_key_is_sent_at_once(runtime) -> None:
    result = invoke("endpoints", "rotate-key", "partner-a", "--key-stdin", "--grace", "24h", input=KEY + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "partner-a: key rotated; X-Webhook-Key carries one value, so the new key is sent at once "
        "(the grace does not apply to it)\n"
    )
    assert runtime.settings.require_endpoint("partner-a").key == KEY and KEY not in audit_text(runtime)
    empty = invoke("endpoints", "rotate-key", "partner-a", "--key-stdin", input="")
    assert (empty.exit_code, empty.stderr) == (2, "error: key: nothing was read from stdin\n")
    assert invoke("endpoints", "rotate-key", "partner-a").exit_code == 2


def test_rotate_secret_prints_the_new_secret_once(runtime) -> None:
    first = json.loads(invoke("endpoints", "rotate-secret", "partner-a", "--grace", "0", "--json").stdout)
    assert first["retiring_until"] is None and first["signing_secret"].startswith("whsec_")
    assert runtime.settings.require_endpoint("partner-a").signing_secrets == (first["signing_secret"],)

    result = invoke("endpoints", "rotate-secret", "partner-a", "--grace", "30m")

    assert result.exit_code == 0, result.output
    said, until = result.stdout.splitlines()
    secret = said.rsplit(" ", 1)[1]
    assert said.startswith("new signing secret of partner-a (shown once") and secret.startswith("whsec_")
    assert until.startswith("the old secret signs beside it until") and "two v1 signatures" in until
    assert runtime.settings.require_endpoint("partner-a").signing_secrets == (secret, first["signing_secret"])
    assert secret not in audit_text(runtime) and first["signing_secret"] not in audit_text(runtime)
    bad = invoke("endpoints", "rotate-secret", "partner-a", "--grace", "soon")
    assert bad.exit_code == 2 and "--grace" in bad.stderr


def test_remove_is_refused_while_pending_and_force_asks_with_the_count(runtime) -> None:
    runtime.adopt_file_endpoints()
    ids = dispatch("order_changed", ORDER) + dispatch("order_changed", ORDER)
    refused = invoke("endpoints", "remove", "partner-a")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: endpoint partner-a has 2 pending deliveries; nothing was removed "
        "(--force fails them, reason endpoint_removed, and removes it)\n"
    )
    declined = invoke("endpoints", "remove", "partner-a", "--force", input="n\n")
    assert "remove endpoint partner-a and fail its 2 pending deliveries? [y/N]" in declined.stderr
    assert declined.exit_code == 1 and endpoint_catalog.stored(runtime.engine, "partner-a") is not None

    done = invoke("endpoints", "remove", "partner-a", "--force", input="y\n")

    assert done.exit_code == 0, done.output
    assert done.stdout.endswith(
        "partner-a: removed; 2 pending deliveries failed (endpoint_removed); its deliveries stay in the log\n"
    )
    assert [store.get_delivery(runtime.engine, r)["reason"] for r in ids] == ["endpoint_removed"] * 2
    assert invoke("endpoints", "list", "--json").stdout.strip() == "[]"


def test_import_replace_shows_the_plan_and_asks_first(runtime, tmp_path) -> None:
    runtime.adopt_file_endpoints()
    invoke("endpoints", "add", "partner-b", "--url", "http://127.0.0.1:9/b")
    invoke("endpoints", "edit", "partner-a", "--max-attempts", "2")
    plain = invoke("endpoints", "import")
    assert plain.stdout == (
        "differs, kept: partner-a\nin the database only, kept: partner-b\n"
        "nothing to import: the database already holds these endpoints\n"
    )
    assert "note: partner-a: the file's differs from the database's" in plain.stderr

    declined = invoke("endpoints", "import", "--replace", input="n\n")
    assert declined.stdout == "rewrite: partner-a\nremove: partner-b\n"
    assert (
        "make the database's endpoints match the file? [y/N]" in declined.stderr and declined.exit_code == 1
    )
    assert [e.name for e in runtime.settings.endpoints] == ["partner-a", "partner-b"]

    done = invoke("endpoints", "import", "--replace", "--yes", "--json")
    assert json.loads(done.stdout) == {
        "plan": {"added": [], "changed": ["partner-a"], "removed": ["partner-b"], "unchanged": []},
        "done": {"added": [], "changed": ["partner-a"], "removed": ["partner-b"], "failed": 0},
    }
    assert [e.name for e in runtime.settings.endpoints] == ["partner-a"]
    assert runtime.settings.require_endpoint("partner-a").delivery is None


def test_import_reads_another_configuration_file(runtime, write_config, tmp_path) -> None:
    other = write_config(endpoints=[*PARTNERS, {"name": "partner-c", "url": "http://127.0.0.1:9/c"}])
    result = invoke("endpoints", "import", str(other))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "add: partner-c"
    assert [e.name for e in runtime.settings.endpoints] == ["partner-a", "partner-c"]
    assert audit.entries(runtime.engine)[-1].selection == {"source": str(other), "added": ["partner-c"]}
    missing = invoke("endpoints", "import", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and missing.stderr.startswith("error: config file:")
