"""The snapshot's charts: drawn offscreen to PNG, bucketed for long ranges, alerts shaded."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from services.flow.types import FlowFrame
from tests.helpers.frames import make_frame, realistic_frame
from tests.helpers.zones import local_zone
from widgets.snapshot import charts
from widgets.snapshot.chart_process import ChartProcess
from widgets.snapshot.charts import (
    CHART_NAMES,
    MAX_POINTS,
    bucket_size,
    downsample,
    on_paper,
    render_snapshot_charts,
)


def _image(png: bytes) -> QImage:
    image = QImage()
    assert image.loadFromData(png, "PNG")
    return image


def _tinted_columns(image: QImage, row: int) -> int:
    """How many pixels of one row are tinted (neither white nor grey): the shading."""
    tinted = 0
    for x in range(image.width()):
        colour = QColor(image.pixel(x, row))
        if colour.red() - colour.blue() > 12:
            tinted += 1
    return tinted


def test_four_charts_as_png_of_the_asked_size() -> None:
    frame = realistic_frame(600)
    charts = render_snapshot_charts(frame, width=1000, height=300)
    assert tuple(charts) == CHART_NAMES
    for name, png in charts.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), name
        image = _image(png)
        assert (image.width(), image.height()) == (1000, 300), name
        corner = QColor(image.pixel(2, image.height() - 2))
        assert corner.lightness() > 240, f"{name}: a white page for print"


def test_alert_spans_are_shaded() -> None:
    frame = realistic_frame(600)
    t0 = float(frame.t[0])
    spans = [(t0 + 300, t0 + 420, "failure_rate", "critical")]
    plain = _image(render_snapshot_charts(frame)["latency"])
    shaded = _image(render_snapshot_charts(frame, spans)["latency"])
    row = plain.height() // 2
    assert _tinted_columns(shaded, row) > _tinted_columns(plain, row) + 50
    # spans reaching outside the range are clipped, tuples of the service's kind work too
    render_snapshot_charts(frame, [(t0 - 900, t0 + 30, "flow_stopped", "warning")])


def test_alert_spans_are_two_items_however_many() -> None:
    # A LinearRegionItem and a TextItem per span took 1.2 s of CPU for 100 spans of a day
    # (four charts); two items draw all of them, the spans outside the range left out.
    t0, t1 = 1_700_000_000.0, 1_700_086_400.0
    spans = [(t0 + 800 * i, t0 + 800 * i + 300, f"rule{i}", "critical") for i in range(100)]
    spans.append((t0 - 900, t0 - 10, "before the range", "warning"))
    chart = charts._Chart("Latency", "ms", 600, 200)
    before = len(chart.plot.items)
    chart.finish(t0, t1, spans, empty_text=None)
    added = chart.plot.items[before:]
    assert len(added) == 2
    shades = [s for item in added for s in item._shades]
    assert len(shades) == 2 * 100  # each span once in each item, the one outside in none
    assert {s.label for s in shades} == {f" rule{i} " for i in range(100)}


def test_alert_labels_are_written_in_front_of_the_curves() -> None:
    frame = realistic_frame(600)
    t0 = float(frame.t[0])
    spans = [(t0 + 60, t0 + 500, "failure_rate", "critical")]
    plain = _image(render_snapshot_charts(frame)["throughput"])
    shaded = _image(render_snapshot_charts(frame, spans)["throughput"])

    def labelled(image: QImage) -> int:
        """Strongly red pixels in the top third but for long red columns (the span's
        edges): the label's text (a line of 8 pt), in the span's colour."""
        rows = image.height() // 3
        reds = 0
        for x in range(image.width()):
            column = 0
            for y in range(rows):
                colour = QColor(image.pixel(x, y))
                column += colour.red() > 150 and colour.green() < 90
            reds += column if column <= 14 else 0
        return reds

    assert labelled(shaded) > labelled(plain) + 40


def test_frames_without_data_still_render() -> None:
    empty = make_frame(np.arange(1000.0, 1060.0), {})
    charts = render_snapshot_charts(empty)
    assert set(charts) == set(CHART_NAMES)
    nothing = FlowFrame(
        t=np.zeros(0),
        status_names=(),
        status_counts=np.zeros((0, 0)),
        dead_letters=np.zeros(0),
        latency_ms=np.full((3, 0), np.nan),
        queue_names=(),
        queue_depths=np.zeros((0, 0)),
        headline=empty.headline,
    )
    assert set(render_snapshot_charts(nothing)) == set(CHART_NAMES)


def test_long_ranges_are_bucketed_without_losing_totals_or_peaks() -> None:
    assert bucket_size(600) == 1
    assert bucket_size(3600) == 5
    assert bucket_size(86400) == 60
    assert bucket_size(7 * 86400) == 600
    for seconds in (1, 1500, 3600, 86400, 7 * 86400):
        assert seconds / bucket_size(seconds) <= MAX_POINTS

    n = 7201
    t = np.arange(1_700_000_000.0, 1_700_000_000.0 + n)
    counts = np.ones(n)
    latency = np.full(n, np.nan)
    latency[100] = 950.0
    latency[101] = 20.0
    depth = np.full(n, np.nan)
    depth[5000:5010] = [3, 9, 4, 1, 1, 1, 1, 1, 1, 1]
    frame = make_frame(
        t, {"captured": counts}, latency=[latency, latency, latency], queues={"q": depth}
    )
    series = downsample(frame)
    assert series.bucket_s == 5 and series.rate_unit == "per 5 s"
    assert series.t.shape[0] == 1441 and series.t[1] - series.t[0] == 5
    assert series.status_counts.sum() == n  # counts summed, none lost (the last bucket is short)
    assert series.latency_ms[2, 20] == 950.0  # the bucket's maximum
    assert np.isnan(series.latency_ms[2, 0])  # no sample in the bucket: a gap, not 0
    assert series.queue_depths[0, 1000] == 9.0
    minutes = downsample(frame, 60)
    assert minutes.rate_unit == "per minute" and minutes.status_counts[0, 0] == 60


def test_light_colours_are_darkened_for_paper() -> None:
    assert QColor(on_paper("#e3b341")).lightness() < QColor("#e3b341").lightness()
    assert on_paper("#1f4f8f") == "#1f4f8f"


def test_needs_a_qapplication_only_not_redis() -> None:
    code = (
        "import sys, widgets.snapshot.charts\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('redis', 'aio_pika')], "
        "'redis loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("seconds", [3600 * 6])
def test_a_long_range_renders_quickly_enough(seconds: int) -> None:
    frame = realistic_frame(seconds)
    charts = render_snapshot_charts(frame, [(float(frame.t[100]), float(frame.t[900]), "a", "b")])
    assert all(len(png) > 5000 for png in charts.values())


def test_the_time_axis_names_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The axis says "local time (CET)", the zone of the charted range, not an offset."""
    winter = 1_733_234_400.0  # 2024-12-03 14:00 UTC
    with local_zone(monkeypatch, "Europe/Berlin"):
        chart = charts._Chart("Throughput", "events/s", 600, 200)
        chart.finish(winter, winter + 60, (), empty_text=None)
    assert chart.plot.getAxis("bottom").labelText == "local time (CET)"


def test_a_child_process_draws_the_very_same_charts() -> None:
    """ChartProcess (the console's renderer: the GUI thread never waits) draws what
    render_snapshot_charts draws, pixel for pixel, in the application's font."""
    frame = realistic_frame(3600)
    t0 = float(frame.t[0])
    spans = [(t0 + 300, t0 + 420, "failure_rate", "critical")]
    here = render_snapshot_charts(frame, spans)
    there = asyncio.run(ChartProcess()(frame, spans))
    assert tuple(there) == CHART_NAMES
    for name in CHART_NAMES:
        assert _image(there[name]) == _image(here[name]), name
