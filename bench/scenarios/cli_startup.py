"""Scenario 5, the ``dispatcher`` command's start-up with a warm bytecode cache.

``dispatcher --help``, ``dispatcher log show <request_id>`` and ``dispatcher log show
<request_id> --json``, each run once to warm up (it also writes the bytecode cache), then
:data:`RUNS` times, each timed from start to exit; the median and the minimum. The command is
``python -m dispatcher`` started in the code under test (``BENCH_CODE``, else this checkout)
with the workers' environment, so the ``dispatcher`` console script of the code under test is
what runs. The configuration is a throwaway one: a SQLite database in the temp dir holding one
delivery, queued by ``dispatcher send`` (nothing delivers it), and Redis DB 4.

Runs the command only in child processes, never imports ``dispatcher`` here: it also measures a
checkout from before the package's names were regrouped.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import CODE, EVENT, Sizes, say
from bench.harness.config import write_config
from bench.harness.processes import Processes, child_env
from bench.harness.services import flush_redis

RUNS = 15
WARMUP_RUNS = 1
NOWHERE = "http://127.0.0.1:9/hook"
"""The endpoint's URL: no worker runs, so nothing is sent to it."""
COMMANDS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    # (key in the results, the command's arguments, its target in seconds, on the median)
    ("help", ("--help",), 0.3),
    ("log_show", ("log", "show", "{request_id}"), 0.5),
    ("log_show_json", ("log", "show", "{request_id}", "--json"), 0.5),
)


def cli_env(config: Path) -> dict[str, str]:
    """The workers' environment, with bytecode writing allowed (the cache is to be warm)."""
    env = child_env(config)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``dispatcher ARGS`` of the code under test; raises unless it exits with 0."""
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        cwd=CODE,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`dispatcher {' '.join(args)}` exited with {done.returncode}:\n{done.stderr[-2000:]}"
        )
    return done


def check_code_under_test(env: dict[str, str]) -> None:
    """The child processes import ``dispatcher`` from the code under test."""
    done = subprocess.run(
        [sys.executable, "-c", "import dispatcher; print(dispatcher.__file__)"],
        cwd=CODE,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    where = Path(done.stdout.strip()).resolve().parent.parent
    if where != CODE:
        raise RuntimeError(f"`python -m dispatcher` would run {where}, not the code under test {CODE}")


def one_delivery(tmp: Path) -> tuple[dict[str, str], str]:
    """The throwaway configuration's environment, and the request id of its one delivery."""
    config, _raw = write_config(tmp, "cli", NOWHERE, f"sqlite:///{tmp}/cli.db")
    env = cli_env(config)
    check_code_under_test(env)
    ((request_id,),) = [
        [d["request_id"]]
        for d in json.loads(cli(["send", EVENT, "--sample", "--json"], env).stdout)["deliveries"]
    ]
    return env, request_id


def check_output(key: str, stdout: str, request_id: str) -> None:
    """What each command printed on its warm-up run is what it is meant to print."""
    if key == "help":
        ok = stdout.startswith("Usage:")
    elif key == "log_show_json":
        ok = json.loads(stdout).get("request_id") == request_id
    else:
        ok = request_id in stdout
    if not ok:
        raise RuntimeError(f"`dispatcher` ({key}) printed something unexpected:\n{stdout[:2000]}")


def timed(args: list[str], env: dict[str, str], runs: int) -> tuple[list[float], str]:
    """``WARMUP_RUNS`` untimed runs (the output of the last one is returned), then ``runs`` timed."""
    for _ in range(WARMUP_RUNS):
        stdout = cli(args, env).stdout
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        cli(args, env)
        times.append(time.perf_counter() - started)
    return times, stdout


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict:
    """The same number of runs with ``--quick`` (it is cheap); no receiver, no long-lived process."""
    say(f"5. CLI start-up, warm bytecode cache: {RUNS} runs of each command after {WARMUP_RUNS} warm-up")
    flush_redis()
    env, request_id = one_delivery(tmp)
    python_s = python_startup(env)
    commands = {}
    for key, template, target in COMMANDS:
        args = [a.format(request_id=request_id) for a in template]
        times, stdout = timed(args, env, RUNS)
        check_output(key, stdout, request_id)
        median = statistics.median(times)
        commands[key] = {
            "command": " ".join(["dispatcher", *template]).replace("{request_id}", "<request_id>"),
            "median_s": median,
            "min_s": min(times),
            "max_s": max(times),
            "times_s": times,
            "target_s": target,
            "met": median <= target,
        }
        say(f"   {commands[key]['command']}: median {median:.3f} s, min {min(times):.3f} s")
    flush_redis()
    return {
        "invocation": f"{Path(sys.executable).name} -m dispatcher",
        "cwd": str(CODE),
        "runs": RUNS,
        "warmup_runs": WARMUP_RUNS,
        "database": "SQLite in the temp dir, one delivery",
        "python_startup_s": python_s,
        "commands": commands,
    }


def python_startup(env: dict[str, str]) -> float:
    """The median of ``RUNS`` bare ``python -c pass`` (the interpreter's own share), for scale."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], cwd=CODE, env=env, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)
