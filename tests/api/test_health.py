"""``GET /v1/health`` without a token: 200 while Redis and the database answer (the workers
counted; none alive is still 200), 503 naming each part that does not answer by its error's
type, with no URL or password in the answer."""

from __future__ import annotations

from starlette.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.worker.liveness import beat, mark_dead

REDIS_PASSWORD = "redis-password-never-shown-5"
DB_PASSWORD = "db-password-never-shown-8"


def test_health_is_ok_without_a_token_and_counts_no_worker(make_api) -> None:
    api = make_api()
    answer = api.call("GET", "/v1/health", token=None)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ok",
        "redis": {"ok": True},
        "database": {"ok": True},
        "workers": {"alive": 0},
    }
    assert answer.headers["cache-control"] == "no-store"


def test_health_reads_postgresql(make_api, pg_url) -> None:
    api = make_api(database_url=pg_url)
    answer = api.call("GET", "/v1/health", token=None)
    assert answer.status_code == 200 and answer.json()["database"] == {"ok": True}


def test_health_counts_the_workers_alive(make_api, redis_client) -> None:
    api = make_api()
    beat(redis_client, "worker-a")
    beat(redis_client, "worker-b")
    assert api.call("GET", "/v1/health", token=None).json()["workers"] == {"alive": 2}
    mark_dead(redis_client, "worker-b")
    assert api.call("GET", "/v1/health", token=None).json()["workers"] == {"alive": 1}


def test_health_is_503_naming_what_does_not_answer_and_no_password(make_runtime) -> None:
    runtime = make_runtime(redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0")
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        answer = client.get("/v1/health")
    assert answer.status_code == 503, answer.text
    document = answer.json()
    assert document["status"] == "unavailable" and document["database"] == {"ok": True}
    assert document["redis"] == {"ok": False, "error": "ConnectionError"}
    assert document["workers"] == {"alive": None}
    assert REDIS_PASSWORD not in answer.text and "127.0.0.1:1" not in answer.text


def test_health_is_503_when_the_database_does_not_answer(make_runtime) -> None:
    runtime = make_runtime(database_url=f"postgresql+psycopg://postgres:{DB_PASSWORD}@127.0.0.1:1/nothing")
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        answer = client.get("/v1/health")
    assert answer.status_code == 503, answer.text
    document = answer.json()
    assert document["database"]["ok"] is False and document["database"]["error"]
    assert document["redis"] == {"ok": True} and document["workers"] == {"alive": 0}
    assert DB_PASSWORD not in answer.text
