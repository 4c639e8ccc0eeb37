"""Signals and other CSVs: date-part time columns, rows with too few / too many fields, and
timestamps that must strictly increase."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparsest.data.readers import read_adjacency, read_locations, read_signals

from .test_readers import raises_about, write

STATIONS = [f"USW000{i:05d}" for i in range(12)]

# ----------------------------------------------------------------------------- date parts


def test_year_month_day_are_the_time_index(tmp_path):
    days = pd.date_range("2025-01-30", periods=5, freq="D")  # crosses a month end
    values = np.arange(5 * 12, dtype=float).reshape(5, 12)
    table = pd.DataFrame(values, columns=STATIONS)
    table.insert(0, "DAY", days.day)
    table.insert(0, "Month", days.month)
    table.insert(0, "year", days.year)
    path = tmp_path / "daily.csv"
    table.to_csv(path, index=False)
    out, ids, times = read_signals(path)
    assert ids == STATIONS and out.shape == (5, 12, 1)
    np.testing.assert_array_equal(out[:, :, 0], values.astype(np.float32))
    assert times.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(times, days.values.astype("datetime64[ns]"))


def test_hour_minute_parts_anywhere_in_the_header(tmp_path):
    path = write(
        tmp_path / "s.csv",
        "s1,YEAR,month,day,Hour,minute,s2\n"
        "1.5,2024,2,29,23,45,2.5\n"
        "3.5,2024,3,1,0,0,\n",
    )
    values, ids, times = read_signals(path)
    assert ids == ["s1", "s2"]
    expected = np.array(["2024-02-29T23:45", "2024-03-01T00:00"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(times, expected)
    assert values[:, 0, 0].tolist() == [1.5, 3.5] and values[0, 1, 0] == 2.5 and np.isnan(values[1, 1, 0])


def test_date_parts_after_an_unnamed_row_index(tmp_path):
    table = pd.DataFrame({"year": [2020, 2020], "month": [1, 1], "day": [1, 2], "a": [1.0, 2.0]})
    path = tmp_path / "s.csv"
    table.to_csv(path)  # writes the pandas row index as an unnamed first column
    values, ids, times = read_signals(path)
    assert ids == ["a"] and values.shape == (2, 1, 1)
    assert times[1] - times[0] == np.timedelta64(1, "D")


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("2025,13,1", ["month 13", "month must be 1..12"]),
        ("2025,2,29", ["day 29", "day must be 1..28 in 2025-02"]),
        ("2025,0,1", ["month 0"]),
    ],
)
def test_invalid_date_parts_name_the_line(tmp_path, row, words):
    path = write(tmp_path / "d.csv", f"year,month,day,s1\n2025,1,1,0.5\n{row},1.0\n")
    with raises_about(path, "line 3", "not a valid date", *words):
        read_signals(path)


def test_invalid_hour_and_non_whole_parts(tmp_path):
    hour = write(tmp_path / "h.csv", "year,month,day,hour,s1\n2025,1,1,24,0.5\n")
    with raises_about(hour, "line 2", "hour 24", "hour must be 0..23"):
        read_signals(hour)
    half = write(tmp_path / "x.csv", "year,month,day,s1\n2025,1,1,0.5\n2025,1.5,2,0.5\n")
    with raises_about(half, "'month'", "1.5", "not a whole number", "line 3"):
        read_signals(half)
    empty = write(tmp_path / "e.csv", "year,month,day,s1\n2025,1,1,0.5\n2025,1,,0.5\n")
    with raises_about(empty, "'day'", "is empty", "line 3"):
        read_signals(empty)


def test_time_column_and_date_parts_together_are_refused(tmp_path):
    path = write(tmp_path / "s.csv", "date,year,month,day,s1\n2025-01-01,2025,1,1,0.5\n")
    with raises_about(path, "time column 'date'", "date-part columns"):
        read_signals(path)


def test_only_date_parts_is_no_sensor(tmp_path):
    path = write(tmp_path / "s.csv", "year,month,day\n2025,1,1\n")
    with raises_about(path, "no sensor columns"):
        read_signals(path)


# ----------------------------------------------------------------------------- field counts


def test_short_row_names_the_line(tmp_path):
    path = write(tmp_path / "s.csv", "s1,s2,s3\n1,2,3\n4,5\n7,8,9\n")
    with raises_about(path, "malformed CSV", "line 3 has 2 fields", "line 1 has 3"):
        read_signals(path)


def test_short_row_line_counts_blank_lines(tmp_path):
    path = write(tmp_path / "s.csv", "s1,s2\n1,2\n\n3\n")
    with raises_about(path, "line 4 has 1 fields"):
        read_signals(path)


def test_empty_trailing_cells_are_not_a_short_row(tmp_path):
    path = write(tmp_path / "s.csv", "s1,s2,s3\n1,,\n,,\n")
    values, _, _ = read_signals(path)
    assert values.shape == (2, 3, 1) and np.isnan(values[1]).all() and values[0, 0, 0] == 1


def test_long_first_data_row_is_refused(tmp_path):
    # pandas would silently drop the extra field of every row here
    path = write(tmp_path / "s.csv", "s1,s2\n1,2,3\n4,5,6\n")
    with raises_about(path, "malformed CSV", "line 2 has 3 fields"):
        read_signals(path)


def test_short_rows_in_other_csvs(tmp_path):
    dense = write(tmp_path / "adj.csv", "1,0,0\n0,1,0\n0,1\n")
    with raises_about(dense, "line 3 has 2 fields"):
        read_adjacency(dense)
    edges = write(tmp_path / "edges.csv", "from,to,cost\n0,1,5\n1,2\n")
    with raises_about(edges, "line 3 has 2 fields"):
        read_adjacency(edges)
    locations = write(tmp_path / "loc.csv", "sensor_id,latitude,longitude\n5,1.5,2.5\n6,3.0\n")
    with raises_about(locations, "line 3 has 2 fields"):
        read_locations(locations, None)


def test_non_numeric_cell_line_counts_blank_lines(tmp_path):
    path = write(tmp_path / "s.csv", "s1,s2\n1,2\n\n3,oops\n")
    with raises_about(path, "'s2'", "oops", "line 4"):
        read_signals(path)


# ----------------------------------------------------------------------------- increasing time


def test_decreasing_time_column_names_the_row(tmp_path):
    path = write(
        tmp_path / "s.csv",
        "time,s1\n2020-01-01 00:00,1\n2020-01-01 00:10,2\n2020-01-01 00:05,3\n",
    )
    with raises_about(path, "column 'time'", "strictly increasing", "'2020-01-01 00:05' on line 4", "line 3"):
        read_signals(path)


def test_repeated_timestamp_is_refused(tmp_path):
    path = write(tmp_path / "s.csv", ",s1\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n")
    with raises_about(path, "strictly increasing", "'2020-01-02' on line 4"):
        read_signals(path)


def test_decreasing_date_parts_name_the_row(tmp_path):
    path = write(tmp_path / "s.csv", "year,month,day,s1\n2025,1,1,1\n2025,1,3,2\n\n2025,1,2,3\n")
    words = ("date-part columns", "strictly increasing", "'2025-01-02' on line 5", "'2025-01-03' on line 3")
    with raises_about(path, *words):
        read_signals(path)
