"""Exporting the log: the :class:`Export` door (``dispatcher log export``, audited) and the
:class:`RowWriter` it streams rows through, as JSON Lines or CSV. No click here. The rows come
from :func:`dispatcher.store.export_rows`."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from .. import store
from ..logs import visible
from ..redaction import Masker, mask_url
from ..runtime import Runtime
from ..store import TIME_COLUMNS
from ..times import format_utc
from ..vocabulary import AuditAction
from . import audit
from .bulk import Progress
from .documents import MASKED_COLUMNS
from .door import Door, Plan


class RowWriter:
    """Writes rows as JSON Lines (one object per line) or CSV (a header row, then one line per row).

    A row is a sequence of values in the order of ``columns``. Times are UTC
    ``YYYY-MM-DDTHH:MM:SSZ``; JSON text columns (``request_headers``, ``request_payload``,
    ``payload``) are written as stored, as strings, in both formats. In CSV a null is an empty
    field and a boolean is ``true``/``false``. URLs never show credentials, and with a
    ``masker`` no secret shows in an error or an answer (rows an older version stored).
    ``for_terminal`` CSV (stdout is a terminal) shows control characters as escapes, as the
    tables do, so a partner's answer cannot drive the terminal; a file or a pipe gets the bytes.
    """

    def __init__(
        self,
        stream: IO[str],
        fmt: str,
        columns: Sequence[str],
        masker: Masker | None = None,
        for_terminal: bool = False,
    ) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError("format must be jsonl or csv")
        self.stream = stream
        self.fmt = fmt
        self.columns = tuple(columns)
        self.count = 0
        self._times = [i for i, name in enumerate(self.columns) if name in TIME_COLUMNS]
        self._mask = masker if masker else None
        self._masked = [i for i, name in enumerate(self.columns) if name in MASKED_COLUMNS]
        self._urls = [i for i, name in enumerate(self.columns) if name == "url"]
        self._encode = json.JSONEncoder(ensure_ascii=False).encode
        self._visible = for_terminal and fmt == "csv"
        self._csv = csv.writer(stream) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(self.columns)

    def write(self, row: Sequence[Any]) -> None:
        values = list(row)
        for i in self._times:
            if values[i] is not None:
                values[i] = format_utc(values[i])
        for i in self._urls:
            values[i] = mask_url(values[i])
        if self._mask is not None:
            for i in self._masked:
                values[i] = self._mask(values[i])
        if self._csv is not None:
            cells = [_csv_value(value) for value in values]
            if self._visible:
                cells = [visible(c, keep_lines=True) if isinstance(c, str) else c for c in cells]
            self._csv.writerow(cells)
        else:
            self.stream.write(self._encode(dict(zip(self.columns, values, strict=True))) + "\n")
        self.count += 1


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@dataclass(frozen=True)
class Exported:
    """What :class:`Export` wrote: how many rows, and whether the reader went away first (a
    pipe closed early, as ``| head`` does: the rows it took are counted)."""

    rows: int
    reader_left: bool = False

    def counts(self) -> Mapping[str, Any]:
        return {"rows": self.rows}


@dataclass(frozen=True)
class Export(Door[Exported]):
    """The ``rows`` (:class:`~dispatcher.vocabulary.ExportRows`) of ``selection``, oldest first,
    written to ``stream`` as ``fmt`` (``jsonl`` or ``csv``), however large the log.

    ``counted``: the plan counts the rows first (for a progress bar); without, its count is
    None and the rows start flowing at once. A ``stream`` that is a terminal gets CSV with
    control characters shown as escapes (:class:`RowWriter`).
    """

    action: ClassVar[AuditAction] = AuditAction.LOG_EXPORT
    selection: store.Selection
    rows: str
    fmt: str
    stream: IO[str]
    counted: bool = False

    def plan(self, runtime: Runtime) -> Plan:
        count = store.count_rows(runtime.engine, self.rows, self.selection) if self.counted else None
        how_many = "the" if count is None else f"{count:,}"
        return Plan(
            self.action,
            count,
            f"Export {how_many} {self.rows} rows of the log as {self.fmt}.",
            audit.described(self.selection, rows=self.rows, format=self.fmt),
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        """Never: no rows is still an export (a CSV header), audited."""
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Exported:
        writer = RowWriter(
            self.stream,
            self.fmt,
            store.ROW_KINDS[self.rows],
            runtime.masker,
            for_terminal=self.stream.isatty(),
        )
        try:
            for row in store.export_rows(runtime.engine, self.rows, self.selection):
                writer.write(row)
                if progress and writer.count % store.PAGE_SIZE == 0:
                    progress(store.PAGE_SIZE)
            self.stream.flush()
        except BrokenPipeError:
            return Exported(writer.count, reader_left=True)
        if progress:
            progress(writer.count % store.PAGE_SIZE)
        return Exported(writer.count)
