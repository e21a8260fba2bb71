"""Texts of the detail pane's tables: times shown short, with the date when not today."""

from __future__ import annotations

import datetime

from widgets.workbench.detail_tables import short_time


def test_short_time_says_the_date_when_not_today():
    now = datetime.datetime(2024, 5, 3, 18, 0)
    same_day = int(datetime.datetime(2024, 5, 3, 14, 3).timestamp() * 1000)
    other_day = int(datetime.datetime(2024, 5, 1, 14, 3).timestamp() * 1000)
    assert short_time(same_day, now) == "14:03"
    assert short_time(other_day, now) == "2024-05-01 14:03"
    assert short_time(None) == ""
