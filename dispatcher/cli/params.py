"""The command line's own value types: moments, durations, rates, ``--data``, event names."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..times import parse_duration, parse_moment
from ..vocabulary import EVENT_NAMES

EVENT = click.Choice(EVENT_NAMES)

if TYPE_CHECKING:  # click 8.2+ types ParamType by the value it makes; older clicks are not generic
    MomentBase = click.ParamType[datetime, Any]
    SecondsBase = click.ParamType[float, Any]
else:
    MomentBase = SecondsBase = click.ParamType


class MomentType(MomentBase):
    """An ISO 8601 time (``Z``/offset; naive is UTC) or an age before now: ``30m``, ``2h``, ``7d``."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        try:
            return parse_moment(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(SecondsBase):
    """Seconds: ``60s``, ``2m``, ``1h``, ``1m30s`` or a plain number."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class RateType(SecondsBase):
    """Events per second: ``5/s``, ``5``, ``300/m``, ``100/h``."""

    name = "RATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        from ..ops.simulate import parse_rate

        try:
            return parse_rate(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


MOMENT = MomentType()
DURATION = DurationType()
RATE = RateType()


def read_data_option(value: str) -> Any:
    """``--data`` takes JSON text or ``@file.json``."""
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--data") from None
        except UnicodeDecodeError as exc:
            raise click.BadParameter(
                f"{path} is not UTF-8 text (byte {exc.start})", param_hint="--data"
            ) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise click.BadParameter("not readable: nested too deeply", param_hint="--data") from None
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--data") from None


def check_range(since: datetime | None, until: datetime | None) -> None:
    """``--since`` before ``--until``, or a usage error naming both."""
    from ..times import format_utc

    if since is not None and until is not None and since >= until:
        raise click.UsageError(f"--since ({format_utc(since)}) must be before --until ({format_utc(until)})")
