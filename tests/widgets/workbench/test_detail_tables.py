"""Texts of the detail pane's tables: times shown short, with the date when not today."""

from __future__ import annotations

import datetime

import pytest

from tests.helpers.zones import local_zone
from widgets.workbench.detail_tables import short_time


def test_short_time_says_the_date_when_not_today():
    now = datetime.datetime(2024, 5, 3, 18, 0)
    same_day = int(datetime.datetime(2024, 5, 3, 14, 3).timestamp() * 1000)
    other_day = int(datetime.datetime(2024, 5, 1, 14, 3).timestamp() * 1000)
    assert short_time(same_day, now).startswith("14:03 ")
    assert short_time(other_day, now).startswith("2024-05-01 14:03 ")
    assert short_time(None) == ""


def test_short_time_names_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    with local_zone(monkeypatch, "Europe/Berlin"):
        now = datetime.datetime(2024, 5, 3, 18, 0)
        summer = int(datetime.datetime(2024, 5, 3, 14, 3, 9).timestamp() * 1000)
        winter = int(datetime.datetime(2024, 1, 3, 14, 3).timestamp() * 1000)
        assert short_time(summer, now) == "14:03 CEST"
        assert short_time(summer, now, seconds=True) == "14:03:09 CEST"
        assert short_time(winter, now) == "2024-01-03 14:03 CET"
