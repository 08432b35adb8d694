"""The README's quick start and "Using it for real", run word for word, in order, on a copy of
the checkout: a fresh virtualenv, the demo, a config copied from the example, a receiver and a
worker in the background (as the README's second and third terminals), sends, a failure, and
the re-send. The only thing the test adds is ``DISPATCHER_REDIS_URL``, so it uses the test
Redis database; everything else is what a newcomer types."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PENDING = {"queued", "in_flight", "retrying"}

pytestmark = pytest.mark.slow


def walkthrough_blocks(readme: str) -> list[list[str]]:
    """The ```sh blocks from "## Quick start" up to "## Python API", as command lists."""
    start, end = readme.index("## Quick start"), readme.index("## Python API")
    blocks = re.findall(r"```sh\n(.*?)```", readme[start:end], flags=re.S)
    return [
        [line for line in block.splitlines() if line.strip() and not line.startswith("#")] for block in blocks
    ]


def copy_checkout(target: Path) -> None:
    """What a clone would hold: the tracked files (as they are now) and new ones not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def production_environment(checkout: Path) -> dict[str, str]:
    """A value for every ``${NAME}`` the production example reads, of the kind it expects."""
    text = (checkout / "config.production.example.yaml").read_text()
    keys = subprocess.run(
        [str(checkout / ".venv/bin/dispatcher"), "keys", "generate", "--storage"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    secret = subprocess.run(
        [str(checkout / ".venv/bin/dispatcher"), "keys", "generate"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = {"DISPATCHER_STORAGE_KEYS": keys}
    for name in set(re.findall(r"\$\{([A-Z0-9_]+)\}", text)):
        if "STORAGE" in name:
            env[name] = keys
        elif "SIGNING" in name or "WHSEC" in name:
            env[name] = secret
        elif "DATABASE" in name:
            env[name] = "postgresql+psycopg://dispatcher:pw@db.internal:5432/webhooks"
        elif "REDIS" in name:
            env[name] = "redis+sentinel://sentinel.internal:26379/mymaster/0"
        else:
            env[name] = f"{name.lower()}-0123456789abcdef0123456789abcdef"
    return env


class Background:
    """The README's other terminals: a process started and later stopped with Ctrl-C."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Walkthrough:
    def __init__(self, checkout: Path, env: dict[str, str]) -> None:
        self.checkout, self.env = checkout, env
        self.terminals: dict[str, Background] = {}
        self.transcript: list[str] = []

    def run(self, command: str) -> str:
        env = {**self.env, **(production_environment(self.checkout) if "production" in command else {})}
        result = subprocess.run(
            ["bash", "-c", command], cwd=self.checkout, env=env, capture_output=True, text=True, timeout=600
        )
        self.transcript.append(f"$ {command}\n{result.stdout}{result.stderr}")
        assert result.returncode == 0, "\n".join(self.transcript)
        return result.stdout + result.stderr

    def start(self, kind: str, command: str) -> None:
        if kind in self.terminals:
            self.terminals[kind].stop()
        self.terminals[kind] = Background(command, self.checkout, self.env, self.checkout / f"{kind}.out")
        if kind == "receiver":
            wait_until(lambda: "receiving on" in self.terminals[kind].output(), what="the receiver to listen")
        else:
            wait_until(lambda: "worker started" in self.terminals[kind].output().lower(), what="the worker")

    def deliveries(self) -> list[dict]:
        listed = self.run(".venv/bin/dispatcher log list --json --limit 1000 2>/dev/null")
        return json.loads(listed)

    def settle(self) -> None:
        """What a person does by watching the worker's terminal: wait until nothing is pending."""
        wait_until(
            lambda: not {d["status"] for d in self.deliveries()} & PENDING, what="deliveries to settle"
        )

    def step(self, command: str) -> None:
        kind = next(
            (k for k in ("receiver", "worker") if re.search(rf"dispatcher {k}\b(?!.*--burst)", command)), None
        )
        if kind:
            self.start(kind, command)
            return
        self.run(command)
        if re.search(r"dispatcher (send|retry)\b", command):
            self.settle()

    def stop(self) -> None:
        for terminal in self.terminals.values():
            terminal.stop()


def wait_until(condition, *, what: str, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def walkthrough(tmp_path: Path, redis_url: str) -> Iterator[Walkthrough]:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    copy_checkout(checkout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISPATCHER_", "VIRTUAL_ENV"))}
    env.update(DISPATCHER_REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    session = Walkthrough(checkout, env)
    yield session
    session.stop()


def test_the_readme_works_word_for_word(walkthrough: Walkthrough) -> None:
    blocks = walkthrough_blocks((walkthrough.checkout / "README.md").read_text())
    assert blocks and blocks[0][0].startswith("python3 -m venv .venv"), blocks[:1]
    for block in blocks:
        for command in block:
            walkthrough.step(command)
    print("\n".join(walkthrough.transcript))  # what a newcomer sees, with -s
    print("$ worker\n" + walkthrough.terminals["worker"].output())
    print("$ receiver\n" + walkthrough.terminals["receiver"].output())
    demo = walkthrough.transcript[0]
    assert "6 of 6 delivered" in demo, demo
    deliveries = walkthrough.deliveries()
    assert deliveries and {d["status"] for d in deliveries} == {"delivered"}, deliveries
    assert {d["endpoint"] for d in deliveries} == {"local"}
    worker = walkthrough.terminals["worker"].output()
    assert "delivered 200" in worker and "failed 401" in worker, worker
    assert "Job OK" not in worker and "remaining" not in worker, worker
    receiver = walkthrough.terminals["receiver"].output()
    assert "order_changed" in receiver and "retry=true" in receiver, receiver
    assert "answered 401: the X-Webhook-Key is not the one this receiver accepts" in receiver, receiver
    failed_listing = next(t for t in walkthrough.transcript if "--status failed" in t.splitlines()[0])
    assert "order_changed" in failed_listing, failed_listing
    found = next(t for t in walkthrough.transcript if "--business-id ORDER123" in t.splitlines()[0])
    assert "order_changed" in found and "prescription_submitted" not in found, found
