"""An endpoint's last 24 hours (``dispatcher/console/chart.py``): the hours, the SVG chart and
the health word, from the success rate per delivery. Pure."""

from __future__ import annotations

from dispatcher.console import chart


def test_the_day_and_its_chart():
    day = chart.endpoint_day([(0, 10, 5), (23, 4, 4), (24, 99, 99), (-1, 99, 99)])
    assert day.attempts[0] == 10 and day.attempts[23] == 4 and day.total == 14
    svg = str(chart.svg(day))
    assert svg.count('class="bad"') == 24 and "24 h ago: 10 attempts, 5 delivered" in svg
    assert f'height="{chart.HEIGHT - 4}"' in svg  # the busiest hour fills the chart


def test_the_health_word_reads_the_success_rate_per_delivery():
    assert chart.health(True, 1.0, 10) == "disabled"
    assert chart.health(False, None, 0) == "idle"
    assert chart.health(False, None, 7) == "failing"  # attempts, but every delivery still retrying
    assert chart.health(False, 0.49, 100) == "failing"
    assert chart.health(False, 0.94, 100) == "degraded"
    assert chart.health(False, 0.95, 1) == "healthy"  # however many attempts it took
