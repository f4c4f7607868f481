"""How values are read and shown: durations (windows, cooldowns, intervals)."""

import datetime as dt

import pytest

from nbmlops._display import duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("5min", 300),
        ("1h30m", 5400),
        ("6h", 21600),
        ("7d", 604800),
        ("2w", 1209600),
        (" 1H ", 3600),
        ("0.5h", 1800),
        (42, 42),
        (dt.timedelta(minutes=2), 120),
    ],
)
def test_durations_read_as_written(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5x", "-5m", "5m-", "1h 2", "abc", "m5"])
def test_text_that_is_no_duration_is_refused_with_the_setting_named(text):
    with pytest.raises(ValueError, match=r"cooldown=.* is not a duration: write it like '90s'"):
        parse_duration(text, what="cooldown")


@pytest.mark.parametrize("text", ["0s", 0, -3, float("inf"), dt.timedelta(0)])
def test_a_duration_must_be_positive_and_finite(text):
    with pytest.raises(ValueError, match=r"window=.* must be a positive, finite duration"):
        parse_duration(text, what="window")


def test_a_bool_is_not_a_number_of_seconds():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(True)


def test_a_parsed_duration_shows_as_people_read_it():
    assert duration(parse_duration("1h30m")) == "1 h 30 min"
