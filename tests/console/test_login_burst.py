"""The login throttle under a burst (issue 21 #2): sixteen guesses for one name sent at once
against a real uvicorn console, with every password check held until all sixteen are either
being checked or answered. At most five passwords are checked; the others get 429 with
Retry-After, the right password among them."""

from __future__ import annotations

import threading

import httpx

from dispatcher.console import login
from dispatcher.console.app import create_app

from .conftest import PASSWORDS, csrf_of
from .served import served

GUESSES = 15
TIMEOUT = 30


class Held:
    """Stands in for ``login.password_matches``: notes each check, then waits for release."""

    def __init__(self, real) -> None:
        self.real = real
        self.changed = threading.Condition()
        self.checked: list[str] = []
        self.answers: list[tuple[str, int, str | None]] = []
        self.release = threading.Event()

    def __call__(self, stored, password):
        with self.changed:
            self.checked.append(password)
            self.changed.notify_all()
        assert self.release.wait(TIMEOUT)
        return self.real(stored, password)

    def answered(self, password: str, response: httpx.Response) -> None:
        with self.changed:
            self.answers.append((password, response.status_code, response.headers.get("retry-after")))
            self.changed.notify_all()

    def wait_until_settled(self, sent: int) -> None:
        """Until each of ``sent`` attempts is being checked (held) or answered."""
        with self.changed:
            settled = self.changed.wait_for(lambda: len(self.checked) + len(self.answers) >= sent, TIMEOUT)
        assert settled, f"{len(self.checked)} checked + {len(self.answers)} answered of {sent}"


def test_a_burst_of_guesses_checks_at_most_five_passwords_and_the_right_one_gets_429(runtime, monkeypatch):
    held = Held(login.password_matches)
    monkeypatch.setattr(login, "password_matches", held)
    with served(create_app(runtime)) as base:
        clients = [httpx.Client(base_url=base, timeout=TIMEOUT) for _ in range(GUESSES + 1)]
        tokens = [csrf_of(client.get("/login").text) for client in clients]

        def attempt(i: int, password: str) -> None:
            response = clients[i].post(
                "/login", data={"name": "olivia", "password": password, "csrf": tokens[i]}
            )
            held.answered(password, response)

        guesses = [threading.Thread(target=attempt, args=(i, f"guess-{i}")) for i in range(GUESSES)]
        for thread in guesses:
            thread.start()
        held.wait_until_settled(GUESSES)
        right = threading.Thread(target=attempt, args=(GUESSES, PASSWORDS["olivia"]))
        right.start()
        held.wait_until_settled(GUESSES + 1)
        held.release.set()
        for thread in [*guesses, right]:
            thread.join(TIMEOUT)
        for client in clients:
            client.close()
    assert len(held.checked) == 5, f"{len(held.checked)} passwords were checked"
    assert PASSWORDS["olivia"] not in held.checked
    statuses = sorted(status for _, status, _ in held.answers)
    assert statuses == [401] * 5 + [429] * 11
    for password, status, retry_after in held.answers:
        assert status == 401 or (retry_after is not None and 0 < int(retry_after) <= 60), password
    (right_answer,) = [a for a in held.answers if a[0] == PASSWORDS["olivia"]]
    assert right_answer[1] == 429
