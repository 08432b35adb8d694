"""OAuth2 tokens shared through Redis (dispatcher.sending.tokens), against the real token server
(tests/token_server.py) and the test Redis DB. Two TokenCaches on two Redis clients stand for two
worker processes. Races are made to happen: the fetch blocks on an Event until every other caller
is inside the cache (seen on its stack) and, where one must wait, until it has polled Redis."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher.config.partner_settings import OAuth2Client, OAuth2Method
from dispatcher.sending import attempt, oauth2, tokens
from dispatcher.sending.oauth2 import Token, TokenError
from dispatcher.sending.tokens import TokenCache, lock_key, token_key
from tests.conftest import wait_for
from tests.token_server import Answer, TokenServer

ENDPOINT = "pharmacy"
SECRET = "s3cr3t-for-tokens"


class Recording(redis.Redis):
    """A Redis client that records the commands it sends (not those of pipelines)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return super().execute_command(*args, **options)

    def gets(self) -> int:
        return self.commands.count("GET")


class Clock:
    """Epoch seconds a test moves by hand (starting now, so Redis TTLs stay sensible)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Gate:
    """A fetch that waits for the test's word: the caller holding the locks stays inside it."""

    def __init__(self, fetch: Callable[[], Token]) -> None:
        self.fetch = fetch
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Token:
        with self._lock:
            self.calls += 1
        self.entered.set()
        assert self.release.wait(20), "the test never opened the gate"
        return self.fetch()


@pytest.fixture
def server() -> Iterator[TokenServer]:
    token_server = TokenServer(expires_in=3600)
    token_server.register_secret("clinic-17", SECRET)
    yield token_server
    token_server.close()


@pytest.fixture
def client(server: TokenServer) -> OAuth2Client:
    return OAuth2Client(server.token_url, "clinic-17", client_secret=SECRET)


@pytest.fixture
def fetch(server: TokenServer, client: OAuth2Client) -> Iterator[Callable[[], Token]]:
    """A real fetch from the token server, on the process's clock."""
    session = attempt.new_session(["127.0.0.0/8"], pool_maxsize=20)

    def fetch_token(clock: Callable[[], float] = time.time) -> Token:
        return oauth2.fetch_token(
            session, client, verify=True, proxies={}, timeout=5, connect_timeout=2, clock=clock
        )

    yield fetch_token
    session.close()


@pytest.fixture
def processes(redis_url: str) -> Iterator[Callable[[], Recording]]:
    """Redis clients, one per pretend process."""
    made: list[Recording] = []

    def make() -> Recording:
        made.append(Recording.from_url(redis_url))
        return made[-1]

    yield make
    for made_client in made:
        made_client.close()


def never() -> Token:
    raise AssertionError("fetched when a token was at hand")


def inside_the_cache(threads: list[threading.Thread]) -> bool:
    """Every thread is inside TokenCache now (blocked on a lock, polling, or fetching)."""
    frames = sys._current_frames()
    for thread in threads:
        frame = frames.get(thread.ident or -1)
        while frame is not None and frame.f_code.co_filename != tokens.__file__:
            frame = frame.f_back
        if frame is None:
            return False
    return True


def run_all(calls: list[Callable[[], Token]]) -> tuple[list[threading.Thread], list[Token | BaseException]]:
    results: list[Token | BaseException] = []

    def run(call: Callable[[], Token]) -> None:
        try:
            results.append(call())
        except BaseException as exc:  # noqa: BLE001 - the test asserts on it
            results.append(exc)

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    return threads, results


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- one fetch for everyone -------------------------------------------------------------------


def test_eight_threads_in_each_of_two_processes_cause_one_token_request(
    server, client, fetch, processes
) -> None:
    first, second = processes(), processes()
    caches = [TokenCache(first), TokenCache(second)]
    gate = Gate(fetch)
    calls = [lambda c=cache: c.token(ENDPOINT, client, gate) for cache in caches for _ in range(8)]
    threads, results = run_all(calls)
    assert gate.entered.wait(10)
    wait_for(lambda: inside_the_cache(threads), 10, 0.01, "every caller inside the cache")
    # the fetching process read Redis twice (before and after taking the lock); the other polls
    wait_for(lambda: first.gets() + second.gets() >= 5, 10, 0.01, "the other process polling")
    assert results == []
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 16 and all(isinstance(r, Token) for r in results), results
    assert len({r.access_token for r in results}) == 1  # type: ignore[union-attr]
    assert (server.token_requests, gate.calls) == (1, 1)
    assert requests.post(
        server.partner_url, headers={"Authorization": f"Bearer {results[0].access_token}"}
    ).ok  # type: ignore[union-attr]


def test_no_redis_round_trip_while_the_token_is_not_due(client, fetch, processes) -> None:
    connection = processes()
    cache = TokenCache(connection)
    token = cache.token(ENDPOINT, client, fetch)
    sent = list(connection.commands)
    assert [cache.token(ENDPOINT, client, never) for _ in range(2000)] == [token] * 2000
    assert connection.commands == sent


def test_a_caller_holding_a_valid_token_uses_it_while_another_process_fetches(
    server, client, fetch, processes
) -> None:
    clock = Clock()
    fetching, other = TokenCache(processes(), clock=clock), TokenCache(processes(), clock=clock)
    old = fetching.token(ENDPOINT, client, lambda: fetch(clock))
    assert other.token(ENDPOINT, client, never) == old
    clock.now = old.refresh_at + 1  # due, not expired
    gate = Gate(lambda: fetch(clock))
    threads, results = run_all([lambda: fetching.token(ENDPOINT, client, gate)])
    assert gate.entered.wait(10)
    assert other.token(ENDPOINT, client, never) == old
    gate.release.set()
    threads[0].join(10)
    (new,) = results
    assert isinstance(new, Token) and new.access_token != old.access_token
    assert other.token(ENDPOINT, client, never) == new  # due here: Redis has the new one
    assert server.token_requests == 2


def test_a_thread_holding_a_valid_token_uses_it_while_a_sibling_fetches(client, fetch, processes) -> None:
    clock = Clock()
    cache = TokenCache(processes(), clock=clock)
    old = cache.token(ENDPOINT, client, lambda: fetch(clock))
    clock.now = old.refresh_at
    gate = Gate(lambda: fetch(clock))
    threads, results = run_all([lambda: cache.token(ENDPOINT, client, gate)])
    assert gate.entered.wait(10)
    assert cache.token(ENDPOINT, client, never) == old
    gate.release.set()
    threads[0].join(10)
    assert cache.token(ENDPOINT, client, never) == results[0] != old


def test_a_token_near_refresh_is_refetched_once(server, client, fetch, processes) -> None:
    clock = Clock()
    one, two = TokenCache(processes(), clock=clock), TokenCache(processes(), clock=clock)
    first = one.token(ENDPOINT, client, lambda: fetch(clock))
    assert first.expires_at - first.refresh_at == 60
    clock.now = first.refresh_at - 1
    assert {one.token(ENDPOINT, client, never), two.token(ENDPOINT, client, never)} == {first}
    clock.now = first.refresh_at
    again = [c.token(ENDPOINT, client, lambda: fetch(clock)) for c in (one, two, one, two)]
    assert len(set(again)) == 1 and again[0] != first
    assert server.token_requests == 2


def test_a_short_lived_token_is_refreshed_a_tenth_of_its_life_early(server, client, fetch, processes) -> None:
    server.expires_in = 60
    clock = Clock()
    token = TokenCache(processes(), clock=clock).token(ENDPOINT, client, lambda: fetch(clock))
    assert token.refresh_at == pytest.approx(clock.now + 54)
    assert token.expires_at == pytest.approx(clock.now + 60)


# --- after a partner's 401 --------------------------------------------------------------------


def test_many_callers_turned_away_with_the_same_token_cause_one_fetch(
    server, client, fetch, processes
) -> None:
    first, second = processes(), processes()
    caches = [TokenCache(first), TokenCache(second)]
    old = caches[0].token(ENDPOINT, client, fetch)
    assert caches[1].token(ENDPOINT, client, never) == old
    server.expire_all()
    gate = Gate(fetch)

    def turned_away(cache: TokenCache) -> Token:
        answer = requests.post(server.partner_url, headers={"Authorization": f"Bearer {old.access_token}"})
        assert answer.status_code == 401
        return cache.refresh(ENDPOINT, client, old, gate)

    threads, results = run_all([lambda c=cache: turned_away(c) for cache in caches for _ in range(4)])
    assert gate.entered.wait(10)
    wait_for(lambda: inside_the_cache(threads), 10, 0.01, "every caller inside refresh")
    polled = first.gets() + second.gets()
    wait_for(lambda: first.gets() + second.gets() >= polled + 2, 10, 0.01, "the other process polling")
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert all(isinstance(r, Token) for r in results) and len(results) == 8, results
    assert {r.access_token for r in results} != {old.access_token}  # type: ignore[union-attr]
    assert len({r.access_token for r in results}) == 1  # type: ignore[union-attr]
    assert (server.token_requests, gate.calls) == (2, 1)
    new = results[0]
    assert requests.post(server.partner_url, headers={"Authorization": f"Bearer {new.access_token}"}).ok  # type: ignore[union-attr]


def test_a_late_401_with_an_old_token_leaves_the_new_one(server, client, fetch, processes, redis_url) -> None:
    connection = processes()
    one, two = TokenCache(connection), TokenCache(processes())
    old = one.token(ENDPOINT, client, fetch)
    new = two.refresh(ENDPOINT, client, old, fetch)
    assert new != old and server.token_requests == 2
    assert one.refresh(ENDPOINT, client, old, never) == new
    assert json.loads(connection.get(token_key(ENDPOINT, client)))["access_token"] == new.access_token
    assert server.token_requests == 2


class PausingGet(Recording):
    """A pretend process whose first GET of a token key stops, with Redis's answer in hand,
    until the test opens ``release``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holding = threading.Event()
        self.release = threading.Event()
        self._paused = False

    def execute_command(self, *args: Any, **options: Any) -> Any:
        answer = super().execute_command(*args, **options)
        if str(args[0]).upper() == "GET" and not self._paused:
            self._paused = True
            self.holding.set()
            assert self.release.wait(20), "the test never let the GET go on"
        return answer


def test_a_refresh_is_never_handed_back_the_token_a_sibling_read_just_before_the_drop(
    server, client, fetch, processes, redis_url
) -> None:
    first = TokenCache(processes())
    old = first.token(ENDPOINT, client, fetch)
    server.expire_all()
    pausing = PausingGet.from_url(redis_url)
    cache = TokenCache(pausing)
    try:
        # A sibling thread reads the old token from Redis and stops before keeping it ...
        sibling, sibling_got = run_all([lambda: cache.token(ENDPOINT, client, never)])
        assert pausing.holding.wait(10)
        # ... while a thread turned away with it refreshes: it drops the old token everywhere,
        # then waits for the sibling's lock.
        turned_away, refreshed = run_all([lambda: cache.refresh(ENDPOINT, client, old, fetch)])
        key = token_key(ENDPOINT, client)
        watcher = processes()
        wait_for(lambda: watcher.get(key) is None, 10, 0.01, "the refresh dropping the old token")
        wait_for(lambda: inside_the_cache(turned_away), 10, 0.01, "the refresh waiting")
        pausing.release.set()
        for thread in sibling + turned_away:
            thread.join(10)
    finally:
        pausing.release.set()
        pausing.close()
    assert sibling_got == [old]  # what it read before the drop: its send will be refused in turn
    assert len(refreshed) == 1 and isinstance(refreshed[0], Token), refreshed
    assert refreshed[0].access_token != old.access_token and server.token_requests == 2
    assert server.is_live(refreshed[0].access_token)
    assert cache.token(ENDPOINT, client, never) == refreshed[0]  # the refused token was not kept


# --- what Redis keeps -------------------------------------------------------------------------


def test_the_value_in_redis_is_sealed_and_lives_until_the_token_expires(
    server, client, fetch, processes
) -> None:
    key, other_key = Fernet(Fernet.generate_key()), Fernet(Fernet.generate_key())
    connection = processes()

    def sealing(fernet: Fernet) -> dict[str, Callable[[str], str]]:
        return {
            "seal": lambda text: "sealed:" + fernet.encrypt(text.encode()).decode(),
            "unseal": lambda text: fernet.decrypt(text.removeprefix("sealed:").encode()).decode(),
        }

    token = TokenCache(connection, **sealing(key)).token(ENDPOINT, client, fetch)
    stored = connection.get(token_key(ENDPOINT, client)).decode()
    assert stored.startswith("sealed:") and token.access_token not in stored
    assert 3_500_000 < connection.pttl(token_key(ENDPOINT, client)) <= 3_600_000
    assert TokenCache(processes(), **sealing(key)).token(ENDPOINT, client, never) == token
    assert TokenCache(processes(), **sealing(other_key)).token(ENDPOINT, client, fetch) != token
    assert server.token_requests == 2


def test_an_unreadable_value_is_no_token(server, client, fetch, processes) -> None:
    connection = processes()
    connection.set(token_key(ENDPOINT, client), "garbage", px=60_000)
    assert TokenCache(connection).token(ENDPOINT, client, fetch).access_token in server.issued
    assert server.token_requests == 1


def test_a_changed_setting_is_another_token(server, client, fetch, processes) -> None:
    # The secret is not part of the key: a key name must not let anyone test guesses of it.
    rotated = OAuth2Client(client.token_url, "clinic-17", client_secret="another")
    assert token_key(ENDPOINT, rotated) == token_key(ENDPOINT, client)
    variants = [
        OAuth2Client(client.token_url, "clinic-18", client_secret=SECRET),
        OAuth2Client(client.token_url, "clinic-17", client_secret=SECRET, scope="system/*.write"),
        OAuth2Client(client.token_url, "clinic-17", client_secret=SECRET, audience="https://x.example"),
        OAuth2Client(client.token_url, "clinic-17", OAuth2Method.CLIENT_SECRET_POST, client_secret=SECRET),
        OAuth2Client(client.token_url + "2", "clinic-17", client_secret=SECRET),
        OAuth2Client(
            client.token_url, "clinic-17", OAuth2Method.PRIVATE_KEY_JWT, private_key="/k.pem", key_id="a"
        ),
        OAuth2Client(
            client.token_url, "clinic-17", OAuth2Method.PRIVATE_KEY_JWT, private_key="/k.pem", key_id="b"
        ),
    ]
    keys = {token_key(ENDPOINT, c) for c in [client, *variants]}
    assert len(keys) == 8 and token_key(ENDPOINT, client) == token_key(ENDPOINT, OAuth2Client(**vars(client)))
    assert all(k.startswith("dispatcher:oauth2-token:pharmacy:") and SECRET not in k for k in keys)
    cache = TokenCache(processes())
    cache.token(ENDPOINT, client, fetch)
    cache.token(ENDPOINT, variants[2], fetch)
    assert server.token_requests == 2


# --- the lock holder --------------------------------------------------------------------------


def test_a_waiter_takes_the_token_the_lock_holder_stores(client, processes) -> None:
    connection = processes()
    key = token_key(ENDPOINT, client)
    connection.set(lock_key(key), "another-process", px=60_000)
    threads, results = run_all([lambda: TokenCache(connection).token(ENDPOINT, client, never)])
    wait_for(lambda: connection.gets() >= 3, 10, 0.01, "the waiter polling")
    now = time.time()
    stored = Token("from-the-holder", now + 3600, now + 3540)
    connection.set(key, json.dumps(vars(stored)), px=3_600_000)
    connection.delete(lock_key(key))
    threads[0].join(10)
    assert results == [stored]


def test_a_waiter_fetches_when_the_lock_holder_vanishes(server, client, fetch, processes) -> None:
    connection = processes()
    connection.set(lock_key(token_key(ENDPOINT, client)), "died-while-fetching", px=300)
    token = TokenCache(connection).token(ENDPOINT, client, fetch)
    assert token.access_token in server.issued and server.token_requests == 1
    assert connection.get(lock_key(token_key(ENDPOINT, client))) is None


def test_a_stuck_lock_holder_is_waited_for_at_most_wait_limit(server, client, fetch, processes) -> None:
    connection = processes()
    connection.set(lock_key(token_key(ENDPOINT, client)), "stuck", px=60_000)
    token = TokenCache(connection, wait_limit=0.3).token(ENDPOINT, client, fetch)
    assert token.access_token in server.issued and server.token_requests == 1
    assert connection.get(lock_key(token_key(ENDPOINT, client))) == b"stuck"


def test_a_stuck_sibling_thread_is_waited_for_at_most_wait_limit(server, client, fetch, processes) -> None:
    cache = TokenCache(processes(), wait_limit=0.3)
    gate = Gate(fetch)
    threads, results = run_all([lambda: cache.token(ENDPOINT, client, gate)])
    assert gate.entered.wait(10)
    own = cache.token(ENDPOINT, client, fetch)
    gate.release.set()
    threads[0].join(10)
    assert own.access_token in server.issued and isinstance(results[0], Token)
    assert server.token_requests == 2


def test_a_token_error_reaches_the_caller_and_frees_the_lock(server, client, fetch, processes) -> None:
    connection = processes()
    cache = TokenCache(connection)
    server.script(Answer(401, {"error": "invalid_client"}))
    with pytest.raises(TokenError) as caught:
        cache.token(ENDPOINT, client, fetch)
    assert str(caught.value) == "oauth2: token endpoint answered 401 invalid_client"
    assert connection.get(lock_key(token_key(ENDPOINT, client))) is None
    assert cache.token(ENDPOINT, client, fetch).access_token in server.issued


# --- Redis down -------------------------------------------------------------------------------


def redis_down(**options: Any) -> Recording:
    """A client of a closed port, without redis-py's retries (seconds of backoff per command)."""
    return Recording(
        host="127.0.0.1", port=closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def test_with_redis_down_each_process_still_fetches_once(server, client, fetch) -> None:
    cache = TokenCache(redis_down())
    gate = Gate(fetch)
    threads, results = run_all([lambda: cache.token(ENDPOINT, client, gate) for _ in range(8)])
    assert gate.entered.wait(10)
    wait_for(lambda: inside_the_cache(threads), 10, 0.01, "every caller inside the cache")
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert len({r.access_token for r in results}) == 1 and server.token_requests == 1  # type: ignore[union-attr]
    old = results[0]
    assert isinstance(old, Token)
    server.expire_all()
    new = cache.refresh(ENDPOINT, client, old, fetch)
    assert new != old and server.is_live(new.access_token) and server.token_requests == 2


def test_after_a_redis_error_redis_is_left_alone_for_a_while(server, client, fetch) -> None:
    down, clock = redis_down(), Clock()
    cache = TokenCache(down, clock=clock)
    first = cache.token(ENDPOINT, client, lambda: fetch(clock))
    tried = len(down.commands)
    assert tried >= 1
    clock.now = first.refresh_at
    second = cache.refresh(ENDPOINT, client, cache.token(ENDPOINT, client, lambda: fetch(clock)), fetch)
    assert first != second and server.token_requests == 3
    assert len(down.commands) == tried
