"""The one time grammar: durations, ISO 8601 and clock times, moments, range checks."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator

import pytest

from services.time_range import (
    TimeRange,
    check_range,
    duration_seconds,
    format_duration,
    format_local_time,
    iso_local,
    iso_utc,
    parse_clock,
    parse_duration,
    parse_moment,
    parse_time_point,
    resolve_range,
    zone_name,
)
from tests.helpers.zones import local_zone

NOW = datetime.datetime(2024, 5, 17, 14, 30, 15, 500_000).astimezone()  # local
NOW_S = NOW.timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("90m", 5400),
        ("2h30m", 9000),
        ("1d", 86400),
        ("45s", 45),
        ("1.5h", 5400),
        ("1d2h", 93600),
        ("1H30M", 5400),
        (" 2h 30m ", 9000),
        ("1w", 7 * 86400),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1h-5m", "-1h", "ten minutes", "1h30"])
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration: .*e\.g\. 45s, 90m, 2h30m, 1d"):
        parse_duration(text)


def test_a_duration_is_at_least_a_second() -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        parse_duration("0s")


def test_iso_times_with_and_without_offset() -> None:
    utc = datetime.datetime(2024, 5, 17, 12, 0, tzinfo=datetime.UTC).timestamp()
    assert parse_time_point("2024-05-17T12:00Z") == utc
    assert parse_time_point("2024-05-17T12:00:00z") == utc
    assert parse_time_point("2024-05-17T14:00:00+02:00") == utc
    assert parse_time_point("2024-05-17 12:00:00+00:00") == utc
    naive = datetime.datetime(2024, 5, 17, 12, 0).astimezone().timestamp()
    assert parse_time_point("2024-05-17T12:00") == naive  # local time without an offset
    midnight = datetime.datetime(2024, 5, 17).astimezone().timestamp()
    assert parse_time_point("2024-05-17") == midnight


def test_clock_times_mean_today_local() -> None:
    today = NOW.date()
    expected = datetime.datetime.combine(today, datetime.time(9, 5)).astimezone().timestamp()
    assert parse_time_point("09:05", now=NOW) == expected
    assert parse_time_point("9:05:30", now=NOW) == expected + 30


@pytest.mark.parametrize("text", ["25:00", "12:60", "12:00:61"])
def test_bad_clock_times(text: str) -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        parse_time_point(text, now=NOW)


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00", "12h", "17/05/2024"])
def test_bad_times_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a time: .*ISO 8601.*HH:MM"):
        parse_time_point(text)


def test_since_ends_at_the_last_whole_second() -> None:
    assert resolve_range(since="1h", now=NOW_S) == TimeRange(int(NOW_S) - 3600, int(NOW_S))
    assert resolve_range(now=NOW_S) == TimeRange(int(NOW_S) - 3600, int(NOW_S))  # default 1h
    assert resolve_range(since="2h30m", now=NOW_S).seconds == 9000


def test_from_and_to() -> None:
    r = resolve_range(from_text="13:00", to_text="14:00:00", now=NOW_S)
    assert r.seconds == 3600
    assert r.to_s == int(datetime.datetime.combine(NOW.date(), datetime.time(14)).timestamp())
    # --from alone runs to now; a --to after now is cut at now
    assert resolve_range(from_text="14:00", now=NOW_S).to_s == int(NOW_S)
    assert resolve_range(from_text="14:00", to_text="18:00", now=NOW_S).to_s == int(NOW_S)


def test_bad_combinations_and_empty_ranges() -> None:
    with pytest.raises(ValueError, match="either --since or --from/--to"):
        resolve_range(since="1h", from_text="13:00", now=NOW_S)
    with pytest.raises(ValueError, match="--to needs --from"):
        resolve_range(to_text="13:00", now=NOW_S)
    with pytest.raises(ValueError, match=r"empty range: --from .* is not before --to"):
        resolve_range(from_text="14:00", to_text="13:00", now=NOW_S)
    with pytest.raises(ValueError, match="empty range"):
        resolve_range(from_text="14:00", to_text="14:00", now=NOW_S)
    with pytest.raises(ValueError, match="starts in the future"):
        resolve_range(from_text="15:00", to_text="16:00", now=NOW_S)


def test_range_checks() -> None:
    now = int(NOW_S)
    check_range(TimeRange(now - 86400, now), now=NOW_S, retention_s=86400, max_s=7 * 86400)
    with pytest.raises(ValueError, match=r"before the retention window.*kept for 1 d"):
        check_range(TimeRange(now - 90000, now), now=NOW_S, retention_s=86400, max_s=7 * 86400)
    with pytest.raises(ValueError, match="at most 7 d"):
        check_range(
            TimeRange(now - 8 * 86400, now), now=NOW_S, retention_s=30 * 86400, max_s=7 * 86400
        )
    with pytest.raises(ValueError, match="empty range"):
        check_range(TimeRange(now, now), now=NOW_S, retention_s=86400, max_s=86400)


def test_formatting() -> None:
    assert format_duration(9000) == "2 h 30 min"
    assert format_duration(45) == "45 s"
    assert format_duration(0) == "0 s"
    assert format_duration(93600) == "1 d 2 h"
    assert iso_utc(1_715_947_200_123) == "2024-05-17T12:00:00.123Z"
    assert iso_utc(None) == ""


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local time zone is Europe/Berlin (UTC+02:00 in May)."""
    with local_zone(monkeypatch, "Europe/Berlin"):
        yield


@pytest.mark.usefixtures("berlin")
def test_local_time_is_the_local_zone() -> None:
    utc = datetime.datetime(2024, 5, 17, 12, 0, tzinfo=datetime.UTC).timestamp()
    assert parse_time_point("2024-05-17T14:00") == utc
    assert parse_time_point("2024-05-17T12:00Z") == utc
    assert format_local_time(utc) == "2024-05-17 14:00:00 CEST"
    now = datetime.datetime(2024, 5, 17, 15, 0).astimezone()
    assert parse_time_point("14:00", now=now) == utc


# --------------------------------------------------------------------------- one grammar


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2h30m", 9000),
        ("1d2h30m15s", 95415),
        ("1w1d", 8 * 86400),
        ("2h 30m", 9000),
        ("1 h 30 m", 5400),
        ("1.1m", 66),
        ("0s", 0),
    ],
)
def test_compound_durations_are_exact(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["30m2h", "1m1m", "1 0m", "1h30", "90"])
def test_compound_durations_go_from_the_largest_unit_down_each_once(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds(text)


def test_bare_seconds_where_a_number_means_seconds() -> None:
    assert duration_seconds("90", bare_seconds=True) == 90
    assert duration_seconds("2.5", bare_seconds=True) == 2.5
    assert duration_seconds("1m30s", bare_seconds=True) == 90
    for text in ("inf", "nan", "-5", "1e3"):
        with pytest.raises(ValueError, match="not a duration"):
            duration_seconds(text, bare_seconds=True)


def test_clock_times() -> None:
    assert parse_clock("09:05") == datetime.time(9, 5)
    assert parse_clock(" 9:05:30 ") == datetime.time(9, 5, 30)
    for text in ("25:00", "12:60", "9:5", "noon", ""):
        with pytest.raises(ValueError, match="not a time of day"):
            parse_clock(text)


def test_a_moment_is_a_duration_ago_or_a_point_in_time() -> None:
    assert parse_moment("2h30m", now=NOW) == NOW_S - 9000
    assert parse_moment("1 h", now=NOW) == NOW_S - 3600
    for point in ("09:05", "2024-05-17T12:00Z", "2024-05-17 12:00", "2024-05-17"):
        assert parse_moment(point, now=NOW) == parse_time_point(point, now=NOW)
    with pytest.raises(ValueError, match=r"not a time: 'yesterday' \(a duration ago .*ISO 8601"):
        parse_moment("yesterday", now=NOW)
    with pytest.raises(ValueError, match="not a time of day"):
        parse_moment("25:00", now=NOW)


@pytest.mark.parametrize("text", ["2h30m", "90m", "1d"])
def test_since_a_duration_is_the_same_range_as_from_that_long_ago(text: str) -> None:
    """``snapshot --since 2h30m`` = ``snapshot --from 2h30m`` = ``dlq --since 2h30m``."""
    since = resolve_range(since=text, now=NOW_S)
    assert resolve_range(from_text=text, now=NOW_S) == since
    assert since.from_s == math.floor(parse_moment(text, now=NOW))
    assert since.seconds == parse_duration(text)


@pytest.mark.parametrize("text", ["13:00", "2024-05-17T13:00", "2024-05-17T11:00Z"])
def test_from_a_point_in_time_is_the_same_moment_as_since_it(text: str) -> None:
    """``snapshot --from 13:00`` starts where ``dlq --since 13:00`` does."""
    moment = parse_moment(text, now=NOW)
    assert resolve_range(from_text=text, now=NOW_S).from_s == math.floor(moment)


def test_from_and_to_durations_ago() -> None:
    expected = TimeRange(math.floor(NOW_S - 3 * 3600), math.ceil(NOW_S - 2 * 3600))
    assert resolve_range(from_text="3h", to_text="2h", now=NOW_S) == expected


@pytest.mark.usefixtures("berlin")
def test_one_rule_for_times_shown_to_people_local_with_the_zone_named() -> None:
    summer = datetime.datetime(2024, 5, 17, 12, 0, 5, tzinfo=datetime.UTC).timestamp()
    winter = datetime.datetime(2026, 12, 3, 13, 5, 31, tzinfo=datetime.UTC).timestamp()
    assert format_local_time(summer) == "2024-05-17 14:00:05 CEST"
    assert format_local_time(winter) == "2026-12-03 14:05:31 CET"
    assert format_local_time(winter, date=False) == "14:05:31 CET"
    assert iso_local(int(winter * 1000) + 7) == "2026-12-03T14:05:31.007+01:00"
    assert iso_local(None) is None


def test_a_zone_without_an_abbreviation_is_shown_as_an_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with local_zone(monkeypatch, "Asia/Dubai"):  # its tzname is "+04"
        moment = datetime.datetime(2026, 12, 3, 10, 0, tzinfo=datetime.UTC).timestamp()
        assert format_local_time(moment) == "2026-12-03 14:00:00 UTC+04:00"
        assert zone_name() == "UTC+04:00"


def test_there_is_one_way_to_show_a_moment() -> None:
    """The offset formatter is retired; UTC is shown only where it is meant (format_utc)."""
    import services.time_range as time_range

    assert not hasattr(time_range, "format_local")
    assert "only where UTC is shown on purpose" in (time_range.format_utc.__doc__ or "")


@pytest.mark.usefixtures("berlin")
def test_range_errors_name_the_zone() -> None:
    now = datetime.datetime(2024, 5, 17, 15, 0).astimezone().timestamp()
    with pytest.raises(ValueError, match=r"--from 2024-05-17 14:30:00 CEST is not before"):
        resolve_range(from_text="2024-05-17T14:30", to_text="2024-05-17T14:00", now=now)
