"""A local, durable holding place for attempt records the database refused.

When the attempt's log write still fails after its retries, the record is written here (one
file per record, written to a temporary name then renamed, so a file is either whole or absent)
and written to the database once it answers again. Never a reason to send again. Its PHI (the
request payload, the response body, the error a partner's answer shaped) is sealed with the
storage keys before it reaches the disk, as it would be in the database.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..store import AttemptRecord

SEALED_FIELDS = ("request_payload", "response_body", "error")


def _encode(record: AttemptRecord, worker: str, reason: str | None, seal: Callable[[str], str]) -> str:
    fields = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.__dict__.items()}
    for key in SEALED_FIELDS:
        if fields.get(key) is not None:
            fields[key] = seal(fields[key])
    return json.dumps({"record": fields, "worker": worker, "reason": reason})


def _decode(text: str) -> tuple[AttemptRecord, str, str | None]:
    raw = json.loads(text)
    fields = raw["record"]
    for key in ("next_attempt_at", "created_at"):
        if fields.get(key):
            fields[key] = datetime.fromisoformat(fields[key])
    return AttemptRecord(**fields), raw["worker"], raw["reason"]


def _as_is(text: str) -> str:
    return text


def hold(
    directory: str,
    record: AttemptRecord,
    worker: str,
    reason: str | None,
    seal: Callable[[str], str] = _as_is,
) -> Path:
    """Writes the record durably (fsync), its PHI sealed with ``seal``, and returns its file."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{record.created_at.strftime('%Y%m%dT%H%M%S%f')}-{record.request_id}-{record.attempt}.json"
    temp = folder / f".{name}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(_encode(record, worker, reason, seal))
        handle.flush()
        os.fsync(handle.fileno())
    final = folder / name
    os.replace(temp, final)
    return final


_FLUSHING = re.compile(r"^\.(.+\.json)\.(\d+)\.flushing$")


def pending(directory: str) -> list[Path]:
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


_NAME = re.compile(r"^\.?\d{8}T\d{12}-(.+)-\d+\.json")


def request_ids_held(directory: str) -> set[str]:
    """The request_ids whose attempt records wait here (held, or being flushed right now; not
    those set aside as rejected, which will never be written)."""
    folder = Path(directory)
    if not folder.is_dir():
        return set()
    held = set()
    for path in folder.iterdir():
        if path.name.endswith(".rejected"):
            continue
        match = _NAME.match(path.name)
        if match:
            held.add(match.group(1))
    return held


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def reclaim_abandoned(directory: str) -> list[Path]:
    """Puts back the files a flushing process died holding (``.<name>.<pid>.flushing`` whose
    process is gone), so the next flush writes them. Writing one again is harmless: a record
    whose claim is no longer held writes nothing."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    back = []
    for path in folder.iterdir():
        match = _FLUSHING.match(path.name)
        if not match or _alive(int(match.group(2))):
            continue
        original = path.with_name(match.group(1))
        try:
            os.rename(path, original)
        except FileNotFoundError:
            continue  # another process put it back first
        back.append(original)
    return back


def flush(
    directory: str,
    write: Callable[[AttemptRecord, str, str | None], object],
    retry_later: Callable[[Exception], bool] = lambda _exc: True,
    set_aside: Callable[[Path, Exception], object] = lambda _path, _exc: None,
) -> int:
    """Writes every held record with ``write``; returns how many were written.

    Each file is first renamed to a name only this process uses, so two flushing processes
    never write one record twice. A write that fails for a reason that may pass
    (``retry_later``, e.g. the database away) puts the file back and stops: the next flush tries
    again. One that never will (bad data) renames the file ``*.rejected`` (kept for an operator,
    reported to ``set_aside``) and the flush goes on with the others. A file whose flushing
    process died is put back first (:func:`reclaim_abandoned`).
    """
    reclaim_abandoned(directory)
    written = 0
    for path in pending(directory):
        claimed = path.with_name(f".{path.name}.{os.getpid()}.flushing")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            continue  # another process took it
        try:
            record, worker, reason = _decode(claimed.read_text(encoding="utf-8"))
            write(record, worker, reason)
        except Exception as exc:
            if retry_later(exc):
                os.rename(claimed, path)
                raise
            rejected = path.with_name(f"{path.name}.rejected")
            os.rename(claimed, rejected)
            set_aside(rejected, exc)
            continue
        claimed.unlink()
        written += 1
    return written
