"""Adding and editing an endpoint in the console (``dispatcher/console/endpoint_forms.py``): a
form whose body is the endpoint as the file's YAML, checked by the door (``ops.endpoint_admin``)
-- a mistake is one line naming the setting, the form kept as typed, nothing stored -- and
audited under the signed-in user's name. Editing shows the stored settings with every secret
masked; a secret left ``****`` keeps its stored value, and only what the operator changed is
written, so a change someone made meanwhile stays."""

from __future__ import annotations

import html
import re

from dispatcher import store
from dispatcher.console import endpoint_forms
from dispatcher.ops import audit
from dispatcher.ops import endpoint_admin as admin
from dispatcher.ops.door import Actor
from dispatcher.redaction import Masker
from dispatcher.store import endpoint_catalog

from .conftest import ENDPOINT_KEY, csrf_of

PHARMACY_YAML = (
    "name: northside\nurl: http://127.0.0.1:9/northside\nevents: [order_changed]\nmax_attempts: 4\n"
)
PASSWORD = "basic-auth-password-5521"


def textarea(page: str, name: str = "yaml") -> str:
    found = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, f"no {name} field"
    return html.unescape(found.group(1))


def post(client, path: str, page: str, text: str) -> object:
    data = {"csrf": csrf_of(page), "yaml": text}
    if 'name="shown"' in page:
        data["shown"] = textarea(page, "shown")
    return client.post(path, data=data)


def stored(runtime, name: str) -> dict:
    row = endpoint_catalog.stored(runtime.engine, name)
    return dict(row.definition) if row else {}


def test_an_operator_adds_an_endpoint_from_its_yaml(client_for, runtime):
    operator = client_for("olivia")
    form = operator.get("/endpoints/add")
    assert form.status_code == 200 and textarea(form.text) == "" and "name: pharmacy" in form.text
    done = operator.post(
        "/endpoints/add", data={"csrf": csrf_of(form.text), "yaml": PHARMACY_YAML}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/endpoints"
    assert stored(runtime, "northside") == {
        "name": "northside",
        "url": "http://127.0.0.1:9/northside",
        "events": ["order_changed"],
        "max_attempts": 4,
    }
    assert runtime.settings.require_endpoint("northside").delivery.max_attempts == 4
    assert 'id="endpoint-northside"' in operator.get("/endpoints").text
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.selection) == (
        "olivia",
        "endpoints add",
        {"endpoint": "northside", "settings": ["url", "events", "max_attempts"], "via": "console"},
    )


def test_a_mistake_is_one_line_naming_the_setting_and_the_form_is_kept(client_for, runtime):
    operator = client_for("olivia")
    form = operator.get("/endpoints/add").text
    cases = [
        ("name: x\nurl: [", "endpoint: not valid YAML at line"),
        ("- name: x\n", "endpoint: must be one mapping of settings"),
        ("   \n", "endpoint: type the endpoint&#39;s settings as YAML"),
        ("name: x\nurl: http://127.0.0.1:9/x\nevents: [no_such_event]\n", "events"),
        ("name: x\nurl: ftp://example.org/x\n", "url: "),
        ("name: x\nurl: http://127.0.0.1:9/x\nmax_attempts: 0\n", "max_attempts: "),
        ("name: lab\nurl: http://127.0.0.1:9/again\n", "name: an endpoint named &#39;lab&#39; exists"),
        ("name: x\nurl: http://127.0.0.1:9/x\nretries: 3\n", "retries"),
        ("a: &a [*a]\n", "endpoint: "),
    ]
    for text, said in cases:
        refused = post(operator, "/endpoints/add", form, text)
        assert refused.status_code == 400, text
        problem = re.search(r'<p class="problem" id="problem">([^<]*)</p>', refused.text).group(1)
        assert said in problem and "\n" not in problem and not problem.startswith("config:"), (text, problem)
        assert textarea(refused.text) == text, text  # the form is kept as typed
    assert [e.name for e in runtime.settings.endpoints] == ["pharmacy", "lab"]
    assert audit.entries(runtime.engine) == []


def test_editing_masks_secrets_and_a_secret_left_masked_keeps_its_value(client_for, runtime):
    operator = client_for("olivia")
    form = operator.get("/endpoints/pharmacy/edit")
    shown = textarea(form.text)
    assert ENDPOINT_KEY not in form.text and "key: '****'" in shown
    assert "keeps its stored value" in form.text and textarea(form.text, "shown") == shown
    edited = shown.replace("http://127.0.0.1:9/hook", "http://127.0.0.1:9/new-hook") + "timeout: 7\n"
    done = post(operator, "/endpoints/pharmacy/edit", form.text, edited)
    assert done.status_code == 200 and "changed pharmacy: url, timeout" in done.text
    assert stored(runtime, "pharmacy") == {
        "name": "pharmacy",
        "url": "http://127.0.0.1:9/new-hook",
        "key": ENDPOINT_KEY,
        "timeout": 7,
    }
    endpoint = runtime.settings.require_endpoint("pharmacy")
    assert (endpoint.url, endpoint.key, endpoint.delivery.timeout) == (
        "http://127.0.0.1:9/new-hook",
        ENDPOINT_KEY,
        7,
    )
    entry = audit.entries(runtime.engine)[-1]
    assert (entry.action, entry.selection["settings"]) == ("endpoints edit", ["url", "timeout"])
    again = operator.get("/endpoints/pharmacy/edit").text
    unset = post(operator, "/endpoints/pharmacy/edit", again, textarea(again).replace("timeout: 7\n", ""))
    assert "changed pharmacy: timeout" in unset.text and "timeout" not in stored(runtime, "pharmacy")


def test_a_nested_secret_left_masked_is_kept_and_a_mask_in_a_changed_value_is_refused(client_for, runtime):
    operator = client_for("olivia")
    admin.Add(
        {
            "name": "clinic",
            "url": "http://127.0.0.1:9/clinic",
            "auth": {"basic": {"username": "baremeds", "password": PASSWORD}},
            "headers": {"X-Account": "acct-secret-991"},
        }
    ).carry_out(runtime, Actor.cli())
    form = operator.get("/endpoints/clinic/edit")
    shown = textarea(form.text)
    assert PASSWORD not in form.text and "acct-secret-991" not in form.text and shown.count("'****'") == 2
    renamed = post(operator, "/endpoints/clinic/edit", form.text, shown.replace("baremeds", "bm-portal"))
    assert "changed clinic: auth" in renamed.text
    assert stored(runtime, "clinic")["auth"] == {"basic": {"username": "bm-portal", "password": PASSWORD}}
    assert stored(runtime, "clinic")["headers"] == {"X-Account": "acct-secret-991"}
    form = operator.get("/endpoints/clinic/edit")
    for text, said in (
        (
            textarea(form.text).replace("X-Account: '****'", "X-Account: '****-2'"),
            "headers.X-Account: still holds ****",
        ),
        (textarea(form.text).replace("name: clinic", "name: clinic2"), "name: an endpoint keeps its name"),
        (textarea(form.text).replace("username: bm-portal\n", ""), "auth.basic.username: is required"),
    ):
        refused = post(operator, "/endpoints/clinic/edit", form.text, text)
        assert refused.status_code == 400 and said in html.unescape(refused.text), said
        assert textarea(refused.text) == text
    assert stored(runtime, "clinic")["headers"] == {"X-Account": "acct-secret-991"}
    same = post(operator, "/endpoints/clinic/edit", form.text, textarea(form.text))
    assert same.status_code == 200 and "Nothing changed" in same.text


def test_a_change_made_meanwhile_to_another_setting_stays(client_for, runtime):
    operator = client_for("olivia")
    form = operator.get("/endpoints/lab/edit")
    admin.Edit("lab", {"events": ["order_changed"]}).carry_out(
        runtime, Actor.cli()
    )  # someone else, meanwhile
    done = post(operator, "/endpoints/lab/edit", form.text, textarea(form.text) + "max_attempts: 3\n")
    assert "changed lab: max_attempts" in done.text
    assert stored(runtime, "lab") == {
        "name": "lab",
        "url": "http://127.0.0.1:9/lab",
        "events": ["order_changed"],
        "max_attempts": 3,
    }
    assert operator.get("/endpoints/nowhere/edit").status_code == 404
    assert store.disabled_endpoints(runtime.engine) == {}


def test_changes_between_names_each_change_by_its_path():
    shown = {
        "name": "a",
        "url": "u",
        "key": "****",
        "auth": {"basic": {"username": "x", "password": "****"}},
        "x": 1,
    }
    edited = {
        "name": "a",
        "url": "v",
        "key": "****",
        "auth": {"basic": {"username": "y", "password": "****"}},
        "events": ["*"],
    }
    assert endpoint_forms.changes_between(shown, edited) == (
        {"url": "v", "auth.basic.username": "y", "events": ["*"]},
        ("x",),
    )
    assert endpoint_forms.changes_between(shown, {**shown, "url": None}) == ({}, ("url",))


def test_masked_like_masks_where_show_masks_and_any_known_secret():
    stored_definition = {
        "name": "a",
        "url": "https://u:pw@h/x",
        "key": "k-1",
        "signing_secret": "whsec_abc",
        "headers": {"X-A": "v1"},
        "note_of": "has k-1 inside",
    }
    shown = {
        "url": "https://u:****@h/x",
        "key": "****",
        "signing_secret": ["whsec_****"],
        "headers": {"X-A": "****"},
    }
    masked = endpoint_forms.masked_like(stored_definition, shown, Masker(["k-1"]))
    assert masked == {
        "name": "a",
        "url": "https://u:****@h/x",
        "key": "****",
        "signing_secret": "whsec_****",
        "headers": {"X-A": "****"},
        "note_of": "has **** inside",
    }
