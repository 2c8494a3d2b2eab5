"""The report's figures without the defects seen in screenshots (issue 19): legends off
the data, labels wrapped rather than cut, every text inside the figure, reference lines
labelled, intervals on line charts, heat maps annotated when small with positions counted
from 1 and colour scales fitted to the values, bars of length 0 still visible.

Checked on the drawn matplotlib figure (text and legend extents in display pixels) and on
the SVG the report inlines (its ``<text>`` elements)."""
import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fairaudit.figures import ANNOTATE_CELLS, figure, render_svg  # noqa: E402

#: labels as the checks write them (min_requirement's scenario label was cut at "(OPT's 8.8…")
LONG = ["antagonistic: price of fairness 8.8% (OPT's 8.8%)", "collaborative: price of fairness 0.0% (OPT's 0.0%)",
        "sex × age_band × race = F × 40_plus × hispanic or latino"]

SPECS = {
    "interval_bars": {"kind": "interval_bars", "title": "Global regret and price of fairness per scenario, "
                      "with a title long enough to need a second line in a figure of this width",
                      "labels": LONG, "estimate": [0.0, 0.0004, 0.05], "lo": [-0.001, 0.0, 0.04],
                      "hi": [0.001, 0.001, 0.06], "xlabel": "OPT (proportional) − ALG per arrival",
                      "reference": 0.0, "reference_label": "ε = 0.02"},
    "scatter_ci": {"kind": "scatter_ci", "title": "Chance against claim", "x": list(np.linspace(0, 1, 50)),
                   "estimate": list(np.linspace(0, 1, 50)), "lo": list(np.linspace(0, 1, 50) - 0.05),
                   "hi": list(np.linspace(0, 1, 50) + 0.05), "color_by": ["population A", "population B"] * 25,
                   "bands": [{"x0": 0, "x1": 0.5, "label": "(almost) never selected: below min_chance of Broome's"}],
                   "line": {"x": [0, 1], "y": [0, 1], "label": "Broome lottery (w ∝ c)"},
                   "callouts": [{"x": 0.5, "y": 0.5, "text": "worse (q=0.61)"}]},
    "lines": {"kind": "lines", "title": "Worst-group regret as T grows",
              "series": [{"x": [125, 250, 500], "y": [0.03, 0.02, 0.01], "lo": [0.0, 0.01, 0.005],
                          "hi": [0.06, 0.03, 0.015], "label": "antagonistic"},
                         {"x": [125, 250, 500], "y": [0.05, 0.045, 0.04], "lo": [0.04, 0.04, 0.035],
                          "hi": [0.06, 0.05, 0.045], "label": "unequal"}],
              "xlabel": "arrivals per year T", "ylabel": "mean max_g R_g", "reference": 0.02,
              "reference_label": "ε = 0.02", "xlog": True},
    "heatmap": {"kind": "heatmap", "title": "Position marginals", "matrices": [[[0.7, 0.2, 0.1], [0.2, 0.5, 0.3],
                                                                               [0.1, 0.3, 0.6]]] * 2,
                "subtitles": ["audited ranker (estimated)", "exact UA"], "xlabel": "position (1 = top)",
                "ylabel": "individual", "x0": 1},
    "ranges": {"kind": "ranges", "title": "Least discriminatory allocation", "labels": LONG[:2], "lo": [0.1, 0.2],
               "hi": [0.3, 0.4], "reference": 0.25, "reference_label": "parity"},
    "grouped_bars": {"kind": "grouped_bars", "title": "Feature homogenisation", "categories": ["18-24", "75+"],
                     "series": [{"label": "ensemble", "values": [0.0, 0.5]}, {"label": "reference", "values": [0.5, 0.5]}]},
}


def _drawn(spec):
    fig = figure(spec)
    fig.canvas.draw()
    return fig


def _texts(fig):
    """The texts drawn (tick labels of ticks outside the axis' view are kept but not drawn)."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick, loc in zip(axis.get_major_ticks(), axis.get_majorticklocs()):
                if not lo - 1e-9 * max(1, abs(hi)) <= loc <= hi + 1e-9 * max(1, abs(hi)):
                    hidden |= {id(tick.label1), id(tick.label2)}
    return [t for t in fig.findobj(matplotlib.text.Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_text_is_whole_and_inside_the_figure(kind):
    fig = _drawn(SPECS[kind])
    try:
        r = fig.canvas.get_renderer()
        W, H = fig.bbox.width, fig.bbox.height
        for t in _texts(fig):
            assert "…" not in t.get_text(), t.get_text()
            bb = t.get_window_extent(r)
            assert bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= W + 1 and bb.y1 <= H + 1, (t.get_text(), bb, W, H)
        # the long labels are all there, wrapped at spaces
        drawn = " ".join(t.get_text().replace("\n", " ") for t in _texts(fig))
        for lab in SPECS[kind].get("labels", []):
            assert lab in drawn
    finally:
        plt.close(fig)


@pytest.mark.parametrize("kind", ["scatter_ci", "lines", "grouped_bars"])
def test_legend_is_off_the_plot_area(kind):
    fig = _drawn(SPECS[kind])
    try:
        r = fig.canvas.get_renderer()
        ax = fig.axes[0]
        leg = ax.get_legend()
        assert leg is not None and len(leg.get_texts()) >= 2
        lb, ab = leg.get_window_extent(r), ax.get_window_extent(r)
        assert lb.y0 >= ab.y1 - 1, (lb, ab)            # above the plot area: on no data point
        if fig._suptitle is not None:                   # and below the title
            assert lb.y1 <= fig._suptitle.get_window_extent(r).y0 + 1
    finally:
        plt.close(fig)


@pytest.mark.parametrize("kind", ["interval_bars", "lines", "ranges"])
def test_reference_line_is_labelled_outside_the_plot_area(kind):
    fig = _drawn(SPECS[kind])
    try:
        r = fig.canvas.get_renderer()
        ax = fig.axes[0]
        want = SPECS[kind]["reference_label"]
        (t,) = [t for t in _texts(fig) if t.get_text() == want]
        tb, ab = t.get_window_extent(r), ax.get_window_extent(r)
        assert tb.y0 >= ab.y1 - 1 or tb.x0 >= ab.x1 - 1, (tb, ab)
    finally:
        plt.close(fig)


def test_line_chart_draws_the_intervals():
    fig = _drawn(SPECS["lines"])
    try:
        ax = fig.axes[0]
        bands = [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)
                 or type(c).__name__ == "FillBetweenPolyCollection"]
        assert len(bands) == 2
        ys = np.concatenate([p.vertices[:, 1] for b in bands for p in b.get_paths()])
        assert ys.min() == pytest.approx(0.0) and ys.max() == pytest.approx(0.06)
        # log-scaled T, ticked at the audited T values
        assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["125", "250", "500"]
    finally:
        plt.close(fig)


def test_bars_of_length_zero_are_marked():
    fig = _drawn(SPECS["interval_bars"])
    try:
        ax = fig.axes[0]
        marks = [ln for ln in ax.get_lines() if ln.get_marker() == "|"]
        assert marks and list(marks[0].get_xdata()) == [0.0, 0.0004, 0.05]
    finally:
        plt.close(fig)


def test_small_heat_map_is_annotated_numbered_from_one_and_fitted():
    spec = dict(SPECS["heatmap"], matrices=[[[0.10, 0.20], [0.30, 0.40]], [[0.15, 0.25], [0.35, 0.38]]])
    fig = _drawn(spec)
    try:
        ax0 = fig.axes[0]
        cells = sorted(t.get_text() for t in ax0.texts)
        assert cells == ["0.10", "0.20", "0.30", "0.40"]
        assert [t.get_text() for t in ax0.get_xticklabels()] == ["1", "2"]   # position 1 = top
        # one colour scale for both, fitted to their values (not 0..1)
        im = ax0.images[0]
        assert im.get_clim() == (pytest.approx(0.10), pytest.approx(0.40))
        assert fig.axes[1].images[0].get_clim() == im.get_clim()
    finally:
        plt.close(fig)
    big = {"kind": "heatmap", "title": "big", "matrices": [np.eye(12).tolist()]}
    assert 144 > ANNOTATE_CELLS
    fig = _drawn(big)
    try:
        assert not fig.axes[0].texts
    finally:
        plt.close(fig)
    # a diverging scale is centred at 0 and fitted to the largest |value|
    fig = _drawn({"kind": "heatmap", "title": "d", "matrices": [[[0.02, -0.05], [0.01, 0.0]]], "diverging": True})
    try:
        assert fig.axes[0].images[0].get_clim() == (pytest.approx(-0.05), pytest.approx(0.05))
        assert "−0.050" in [t.get_text() for t in fig.axes[0].texts]
    finally:
        plt.close(fig)


def test_svg_texts_are_not_cut():
    for spec in SPECS.values():
        svg = render_svg(spec)
        texts = re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)
        assert texts and not any("…" in t for t in texts), spec["kind"]
        if spec["kind"] == "interval_bars":       # the whole label, over its lines
            from xml.sax.saxutils import unescape
            assert LONG[0] in " ".join(unescape(t, {"&#39;": "'"}).strip() for t in texts)


def test_compare_intervals_figure():
    spec = {"kind": "compare_intervals", "title": "Baseline vs current",
            "rows": [{"label": "selection_rates · lowest impact ratio", "baseline": 0.9, "baseline_ci": [0.85, 0.95],
                      "current": 0.6, "current_ci": [0.5, 0.7], "status": "regression", "violation": "below",
                      "tolerance": 0.0},
                     {"label": "broome · gain", "baseline": 0.5, "baseline_ci": [0.2, float("inf")],
                      "current": None, "current_ci": [None, None], "status": "no significant change"}]}
    svg = render_svg(spec)
    assert "regression" in svg and "baseline" in svg and "current" in svg


def test_bars_take_their_rows_verdict_colour_with_a_key():
    from matplotlib.colors import to_hex

    from fairaudit.figures import VERDICT_COLORS
    spec = {"kind": "interval_bars", "title": "Impact ratio by group", "labels": ["F", "M", "tiny"],
            "estimate": [0.4, 1.0, 0.9], "lo": [0.3, 0.75, 0.0], "hi": [0.7, 1.0, 1.0], "reference": 0.8,
            "reference_label": "threshold 0.8", "verdicts": ["fail", "inconclusive", "not judged (too small)"]}
    fig = _drawn(spec)
    try:
        ax = fig.axes[0]
        bars = [to_hex(p.get_facecolor()) for p in ax.patches[:3]]
        assert bars == [VERDICT_COLORS["fail"], VERDICT_COLORS["inconclusive"], "#bbbbbb"]
        leg = ax.get_legend()
        assert [t.get_text() for t in leg.get_texts()] == ["fail", "inconclusive", "not judged", "threshold 0.8"]
        r = fig.canvas.get_renderer()
        assert leg.get_window_extent(r).y0 >= ax.get_window_extent(r).y1 - 1
    finally:
        plt.close(fig)
