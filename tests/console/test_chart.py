"""An endpoint's last 24 hours (``dispatcher/console/chart.py``): the hours, the SVG chart and
the health word. Pure."""

from __future__ import annotations

from dispatcher.console import chart


def test_the_day_and_its_chart():
    day = chart.endpoint_day([(0, 10, 5), (23, 4, 4), (24, 99, 99), (-1, 99, 99)])
    assert day.attempts[0] == 10 and day.attempts[23] == 4 and day.total == 14
    assert day.success_rate == 9 / 14
    svg = str(chart.svg(day))
    assert svg.count('class="bad"') == 24 and "24 h ago: 10 attempts, 5 delivered" in svg
    assert f'height="{chart.HEIGHT - 4}"' in svg  # the busiest hour fills the chart
    assert chart.health(True, day) == "disabled"
    assert chart.health(False, chart.endpoint_day([])) == "idle"
    assert chart.health(False, chart.endpoint_day([(1, 10, 4)])) == "failing"
    assert chart.health(False, chart.endpoint_day([(1, 100, 94)])) == "degraded"
    assert chart.health(False, chart.endpoint_day([(1, 100, 95)])) == "healthy"
