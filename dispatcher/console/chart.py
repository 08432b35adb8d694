"""An endpoint's last 24 hours as an inline SVG bar chart: attempts per hour, the delivered share
of each bar filled darker; and the word for its health. Server-rendered, no script (the
console's CSP allows none). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

HOURS = 24
WIDTH = 288
HEIGHT = 64
BAR = WIDTH // HOURS


@dataclass(frozen=True)
class EndpointDay:
    """One endpoint's attempts and delivered attempts per hour, oldest hour first."""

    attempts: tuple[int, ...]
    delivered: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.attempts)


def endpoint_day(hours: Sequence[tuple[int, int, int]]) -> EndpointDay:
    """From (hour, attempts, delivered) rows, hour 0 the oldest, any hour absent."""
    attempts, delivered = [0] * HOURS, [0] * HOURS
    for hour, made, ok in hours:
        if 0 <= hour < HOURS:
            attempts[hour] += made
            delivered[hour] += ok
    return EndpointDay(tuple(attempts), tuple(delivered))


def svg(day: EndpointDay) -> Markup:
    """The chart: one bar per hour scaled to the busiest hour, with a title per bar."""
    peak = max(day.attempts) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 12}" width="{WIDTH}" height="{HEIGHT + 12}" '
        f'role="img" aria-label="attempts per hour, last 24 hours (busiest hour: {peak})">',
        f'<line class="axis" x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}"/>',
    ]
    for hour, (made, ok) in enumerate(zip(day.attempts, day.delivered, strict=True)):
        x = hour * BAR + 1
        height = round(made / peak * (HEIGHT - 4))
        good = round(ok / peak * (HEIGHT - 4))
        ago = HOURS - hour
        parts.append(f"<g><title>{ago} h ago: {made} attempts, {ok} delivered</title>")
        parts.append(f'<rect class="bad" x="{x}" y="{HEIGHT - height}" width="{BAR - 2}" height="{height}"/>')
        parts.append(f'<rect class="ok" x="{x}" y="{HEIGHT - good}" width="{BAR - 2}" height="{good}"/></g>')
    parts.append(f'<text x="0" y="{HEIGHT + 11}">-24 h</text>')
    parts.append(f'<text x="{WIDTH}" y="{HEIGHT + 11}" text-anchor="end">now</text></svg>')
    return Markup("".join(parts))


def health(disabled: bool, success_rate: float | None, attempts: int) -> str:
    """A word for an endpoint's state from its success rate per delivery (delivered over the
    deliveries that ended) and its attempts: disabled; idle (nothing ended, no attempt); failing
    (under half delivered, or attempts but none ended: every one is still retrying); degraded
    (under 95 %); or healthy."""
    if disabled:
        return "disabled"
    if success_rate is None:
        return "failing" if attempts else "idle"
    return "failing" if success_rate < 0.5 else "degraded" if success_rate < 0.95 else "healthy"
