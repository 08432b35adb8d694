"""``dispatcher config check`` and ``config schema`` in-process (click's runner): the effective
settings with every secret masked, a bad setting as one line naming it, and the file's JSON Schema."""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from dispatcher.cli import cli
from tests.cli.helpers import invoke
from tests.conftest import ROOT


def test_config_check_masks_keys(write_config, receiver, monkeypatch):
    from dispatcher.contract.signing import generate_secret

    secret = generate_secret()
    endpoint = {
        "name": "partner-a",
        "url": receiver.url,
        "key": "super-secret-key-9",
        "signing_secret": secret,
    }
    config = write_config(endpoints=[endpoint])
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = invoke("config", "check")
    assert result.exit_code == 0
    assert "partner-a" in result.output
    assert secret not in result.output and secret[6:] not in result.output
    assert "super-secret-key-9" not in result.output and '"key": "****"' in result.output


def test_config_check_fails_in_production_on_the_default_key(tmp_path, monkeypatch):
    config = tmp_path / "prod.yaml"
    config.write_text(
        "environment: production\nendpoints:\n  - name: p\n    url: https://p.example.com/hook\n"
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert "endpoints[0].key: endpoint 'p' uses the default key xxx" in result.output


def test_config_check_names_a_bad_setting(tmp_path, monkeypatch):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "environment: production\nendpoints:\n  - name: p\n    url: http://p.example.com/hook\n    key: k\n"
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))

    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1 and "error: config: endpoints[0].url" in result.output


def test_config_check_masks_the_redis_and_database_passwords(write_config, monkeypatch):
    config = write_config(
        redis_url="redis://default:redis-pw-31337@127.0.0.1:6379/13",
        database_url="postgresql+psycopg://hooks:db-pw-31337@127.0.0.1:5432/hooks",
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    monkeypatch.setenv("DISPATCHER_REDIS_URL", "rediss://u:env-pw-31337@cache.internal:6380/2")
    result = invoke("config", "check")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "31337" not in result.output
    assert document["redis_url"] == "rediss://u:****@cache.internal:6380/2"
    assert document["database_url"] == "postgresql+psycopg://hooks:****@127.0.0.1:5432/hooks"


def test_config_check_refuses_credentials_in_an_endpoint_url_without_showing_them(tmp_path, monkeypatch):
    config = tmp_path / "creds.yaml"
    config.write_text(
        "environment: staging\nendpoints:\n  - name: p\n    url: https://user:url-pw-31337@p.example.com/hook\n"
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert "31337" not in result.output
    assert "error: config: endpoints[0].url: must not carry credentials (user:password@)" in result.output


def test_config_check_on_a_yaml_bomb_is_one_line(tmp_path, monkeypatch):
    lines = ['l0: &l0 ["lol"]'] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "more than 100000 values" in result.output


def test_config_schema_prints_the_files_json_schema_without_reading_the_file(tmp_path, monkeypatch):
    broken = tmp_path / "broken.yaml"
    broken.write_text("delivery: {timeout: thirty}\n")
    monkeypatch.setenv("DISPATCHER_CONFIG", str(broken))  # the schema does not depend on it
    result = CliRunner().invoke(cli, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["worker"]["$ref"] == "#/$defs/WorkerFile"


def test_config_check_names_settings_as_the_file_does(write_config, receiver, monkeypatch):
    endpoint = {"name": "partner-a", "url": receiver.url, "key": "k-1", "timeout": 3}
    config = write_config(endpoints=[endpoint], worker={"threads": 4}, search_key="s" * 40)
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = invoke("config", "check")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["worker"] == {"threads": 4} and "worker_threads" not in document
    assert document["delivery"]["timeout"] == 5.0 and document["endpoints"][0]["timeout"] == 3.0
    assert (
        document["endpoints"][0]["signing_secret"] == [] and "key_configured" not in document["endpoints"][0]
    )
    assert document["idempotency_ttl"] == 86400 and document["search_key"] == "****"
    assert "s" * 40 not in result.output
    assert result.stderr == "config ok (1 endpoint, environment test)\n"  # loopback is allowed there


def _write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


LOOPBACK = """environment: development
endpoints:
  - name: local
    url: http://127.0.0.1:8787/webhooks/patient-77
    key: local-key
"""


def test_config_check_warns_about_an_endpoint_the_sender_will_refuse(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPATCHER_CONFIG", str(_write(tmp_path, LOOPBACK)))
    result = invoke("config", "check")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["endpoints"][0]["name"] == "local"
    assert result.stderr.splitlines() == [
        "warning: endpoint local (http://127.0.0.1:8787): 127.0.0.1 is not allowed (loopback): "
        'add it to allow_networks, e.g. allow_networks: ["127.0.0.0/8"]',
        "config ok (1 endpoint, environment development; 1 warning)",
    ]
    assert "patient-77" not in result.stderr

    strict = invoke("config", "check", "--strict")
    assert strict.exit_code == 1
    assert strict.stderr.splitlines()[-1] == "error: 1 warning (--strict)"

    allowed = _write(tmp_path, LOOPBACK + 'allow_networks: ["127.0.0.0/8"]\n')
    monkeypatch.setenv("DISPATCHER_CONFIG", str(allowed))
    assert invoke("config", "check", "--strict").exit_code == 0


def test_config_check_strict_refuses_the_default_key_in_any_environment(tmp_path, monkeypatch):
    text = LOOPBACK.replace("    key: local-key\n", "") + 'allow_networks: ["127.0.0.0/8"]\n'
    monkeypatch.setenv("DISPATCHER_CONFIG", str(_write(tmp_path, text)))
    warned = "warning: endpoints[0].key: endpoint 'local' uses the default key xxx; configure a unique key"
    lenient = invoke("config", "check")
    assert lenient.exit_code == 0 and warned in lenient.stderr.splitlines()
    strict = invoke("config", "check", "--strict")
    assert strict.exit_code == 1 and strict.stderr.splitlines() == [warned, "error: 1 warning (--strict)"]


def test_config_check_names_an_unset_variable_without_a_traceback(tmp_path, monkeypatch):
    text = LOOPBACK.replace("key: local-key", "key: ${LOCAL_KEY}")
    monkeypatch.setenv("DISPATCHER_CONFIG", str(_write(tmp_path, text)))
    monkeypatch.delenv("LOCAL_KEY", raising=False)
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert result.output == "error: config: endpoints[0].key: environment variable LOCAL_KEY is not set\n"
    monkeypatch.setenv("LOCAL_KEY", "from-the-environment-31337")
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 0 and "31337" not in result.output


def test_the_development_example_passes_strict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISPATCHER_CONFIG", str(ROOT / "config.example.yaml"))
    for name in (
        "DISPATCHER_REDIS_URL",
        "DISPATCHER_DATABASE_URL",
        "DISPATCHER_STORAGE_KEYS",
        "DISPATCHER_SEARCH_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    result = invoke("config", "check", "--strict")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "config ok (1 endpoint, environment development)\n"
    assert json.loads(result.stdout)["endpoints"][0]["url"] == "http://127.0.0.1:8787/webhooks"


def production_environment() -> dict[str, str]:
    """Every variable config.production.example.yaml names, set as a deploy would."""
    from dispatcher.contract.signing import generate_secret

    return {
        "DATABASE_URL": "postgresql+psycopg://webhooks:db-pw-31337@db.internal:5432/webhooks",
        "PARTNER_A_KEY": "partner-a-key-31337",
        "PARTNER_A_SIGNING_SECRET": generate_secret(),
        "PHARMACY_KEY": "pharmacy-key-31337",
        "PHARMACY_CLIENT_SECRET": "pharmacy-client-secret-31337",
        "CONSOLE_SESSION_SECRET": "console-session-secret-31337-" + "x" * 10,
        "DISPATCHER_STORAGE_KEYS": "KlJtPQ3RtJK714n-i00gwv9-5KxcybK_I0X4uBgY56Q=",
        "DISPATCHER_SEARCH_KEY": "search-key-31337-" + "y" * 20,
        "ALERT_SIGNING_SECRET": generate_secret(),
        "SMTP_PASSWORD": "smtp-password-31337",
    }


def test_the_production_example_passes_once_its_variables_are_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISPATCHER_CONFIG", str(ROOT / "config.production.example.yaml"))
    monkeypatch.delenv("DISPATCHER_REDIS_URL", raising=False)
    monkeypatch.delenv("DISPATCHER_DATABASE_URL", raising=False)
    unset = CliRunner().invoke(cli, ["config", "check"])
    assert unset.exit_code == 1 and "environment variable" in unset.output and "is not set" in unset.output

    environment = production_environment()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = invoke("config", "check")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["environment"] == "production" and document["storage_keys"] == ["****"]
    assert document["redis_url"].startswith("redis+sentinel://sentinel-1.internal:26379,")
    assert document["database_url"] == "postgresql+psycopg://webhooks:****@db.internal:5432/webhooks"
    assert [e["url"].split("/")[2] for e in document["endpoints"]] == [
        "partner-a.example.com",
        "pharmacy.example.com",
    ]
    assert document["console"]["session_secret"] == "****" and document["search_key"] == "****"
    assert document["endpoints"][1]["auth"]["oauth2"]["client_secret"] == "****"
    for value in environment.values():
        assert value not in result.output
    # Where the example hosts do not resolve (no DNS here), that is a warning, never an error;
    # so is the database not answering (its endpoints are not compared: one note).
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [] or notes[0].startswith("note: endpoints not compared with the database: ")
    for line in [line for line in result.stderr.splitlines()[:-1] if line not in notes]:
        assert line.startswith("warning: endpoint ") and ": could not resolve " in line
    assert result.stderr.splitlines()[-1].startswith("config ok (2 endpoints, environment production")


def _credential_files(tmp_path):
    """A client certificate expiring in 10 or 11 days, its encrypted key, a key of another
    certificate, and an EC P-384 key (real PEM files)."""
    import datetime as dt

    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.sending.test_credentials import cert_pem, key_pem, rsa_key, write

    key = rsa_key()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10, hours=12)
    return {
        "cert": write(tmp_path, "client.crt", cert_pem(key, soon)),
        "locked": write(tmp_path, "client.key", key_pem(key, "the-passphrase-31337")),
        "other": write(tmp_path, "other.key", key_pem(rsa_key())),
        "ec": write(tmp_path, "jwt.pem", key_pem(ec.generate_private_key(ec.SECP384R1()))),
        "expires": soon.date().isoformat(),
        "soon": soon,
    }


def _expiring(files) -> str:
    """How config check words the certificate's expiry today."""
    import datetime as dt

    days = (files["soon"].date() - dt.datetime.now(dt.UTC).date()).days
    return f"expires on {files['expires']} (in {days} days)"


def _pharmacy(files) -> dict:
    """An endpoint with the client certificate and its encrypted key, the passphrase from
    PHARMACY_KEY_PASSWORD."""
    return {
        "name": "pharmacy",
        "url": "http://127.0.0.1:9/hooks",
        "key": "k-pharmacy",
        "tls_client_cert": {
            "cert": files["cert"],
            "key": files["locked"],
            "key_password": "${PHARMACY_KEY_PASSWORD}",
        },
    }


def test_config_check_fails_on_credentials_that_cannot_be_used(write_config, tmp_path, monkeypatch):
    files = _credential_files(tmp_path)
    monkeypatch.setenv("PHARMACY_KEY_PASSWORD", "not-the-passphrase-31337")
    pharmacy = _pharmacy(files)
    lab = {
        "name": "lab",
        "url": "http://127.0.0.1:9/lab",
        "key": "k-lab",
        "tls_client_cert": {"cert": files["cert"], "key": files["other"]},
        "auth": {
            "oauth2": {
                "token_url": "http://127.0.0.1:9/token",
                "client_id": "clinic-17",
                "method": "private_key_jwt",
                "private_key": files["ec"],
                "key_id": "k1",
            }
        },
    }
    monkeypatch.setenv("DISPATCHER_CONFIG", str(write_config(endpoints=[pharmacy, lab])))
    result = invoke("config", "check")
    assert result.exit_code == 1
    json.loads(result.stdout)  # the settings are still shown
    expiring = _expiring(files)
    assert result.stderr.splitlines() == [
        f"warning: endpoint pharmacy: tls_client_cert.cert: {expiring}",
        f"warning: endpoint lab: tls_client_cert.cert: {expiring}",
        "error: endpoint pharmacy: tls_client_cert.key: the passphrase (key_password) does not open it",
        "error: endpoint lab: tls_client_cert: the certificate and the key do not match",
        "error: endpoint lab: auth.oauth2.private_key: an EC key cannot sign RS384; set algorithm: ES384",
    ]
    assert "31337" not in result.output


def test_config_check_counts_an_expiring_certificate_as_a_warning(write_config, tmp_path, monkeypatch):
    files = _credential_files(tmp_path)
    monkeypatch.setenv("PHARMACY_KEY_PASSWORD", "the-passphrase-31337")
    pharmacy = _pharmacy(files)
    monkeypatch.setenv("DISPATCHER_CONFIG", str(write_config(endpoints=[pharmacy])))
    lenient = invoke("config", "check")
    warned = f"warning: endpoint pharmacy: tls_client_cert.cert: {_expiring(files)}"
    assert lenient.exit_code == 0
    assert lenient.stderr.splitlines() == [warned, "config ok (1 endpoint, environment test; 1 warning)"]
    strict = invoke("config", "check", "--strict")
    assert strict.exit_code == 1 and strict.stderr.splitlines() == [warned, "error: 1 warning (--strict)"]
    assert "31337" not in lenient.output + strict.output


def test_config_check_warns_when_telemetry_is_asked_for_without_opentelemetry(tmp_path, monkeypatch):
    text = LOOPBACK + 'allow_networks: ["127.0.0.0/8"]\ntelemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n'
    monkeypatch.setenv("DISPATCHER_CONFIG", str(_write(tmp_path, text)))
    assert invoke("config", "check", "--strict").exit_code == 0  # installed here: nothing to say
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)  # as if not installed
    result = invoke("config", "check", "--strict")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "warning: telemetry: otlp_endpoint is set but OpenTelemetry is not installed; "
        "pip install 'baremeds-webhook-dispatcher[otel]'",
        "error: 1 warning (--strict)",
    ]


def test_a_host_application_s_sampler_is_no_concern_while_telemetry_is_off(tmp_path, monkeypatch):
    """A host's own OTEL_TRACES_SAMPLER=xray: not read while the dispatcher's telemetry is off
    (nothing said); with telemetry on, one warning naming it and the sampler used instead, and
    the check still passes (telemetry never stops dispatching)."""
    text = LOOPBACK + 'allow_networks: ["127.0.0.0/8"]\n'
    monkeypatch.setenv("DISPATCHER_CONFIG", str(_write(tmp_path, text)))
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "xray")
    off = invoke("config", "check", "--strict")
    assert off.exit_code == 0, off.stderr
    assert off.stderr == "config ok (1 endpoint, environment development)\n"
    assert json.loads(off.stdout)["telemetry"]["otlp_endpoint"] is None

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    on = invoke("config", "check")
    assert on.exit_code == 0, on.stderr
    assert on.stderr.splitlines() == [
        "warning: OTEL_TRACES_SAMPLER: xray is not supported here; using parentbased_always_on",
        "config ok (1 endpoint, environment development; 1 warning)",
    ]
    telemetry = json.loads(on.stdout)["telemetry"]
    assert telemetry == {
        "otlp_endpoint": "http://127.0.0.1:4318",
        "service_name": "dispatcher",
        "sample_ratio": 1.0,
    }
