"""Figures for the report: a check returns *specs* (plain data in its result); this
module draws them with matplotlib as SVG text to inline in the HTML.

A spec is a dict with ``"kind"`` and ``"title"`` plus the kind's fields:

``interval_bars``  horizontal bars of estimates with interval whiskers, one per label:
    ``labels``, ``estimate``, ``lo``, ``hi``; optional ``xlabel``, ``reference`` (a
    vertical line, e.g. a threshold) with ``reference_label``, ``highlight`` (bools:
    drawn grey), ``verdicts`` (one per label: each bar in its verdict's colour, with a key;
    other values grey, "not judged"), ``xlim``.
``scatter_ci``     points with vertical interval bars: ``x``, ``estimate``, ``lo``, ``hi``;
    optional ``color_by`` (one label per point; one colour per label, with legend),
    ``bands`` (list of ``{"x0", "x1", "label"}`` shaded spans), ``callouts`` (list of
    ``{"x", "y", "text"}``), ``xlabel``, ``ylabel``, ``line`` (``{"x": [...], "y": [...],
    "label": ...}`` drawn as a reference curve).
``heatmap``        one or more matrices side by side: ``matrices`` (list of 2-D lists),
    ``subtitles``, optional ``xlabel``, ``ylabel``, ``diverging`` (bool: centre the
    colour scale at 0), ``ylabels`` (one name per row, drawn as tick labels), ``x0``
    (the number of the first column, e.g. 1 for positions counted from the top),
    ``vmin``/``vmax`` (one colour scale for all matrices, e.g. 0 and 1 for probabilities).
    Axis ticks are whole numbers.
``ranges``         one horizontal segment per label from ``lo`` to ``hi``, with optional
    ``points`` (one list of values per label, drawn as dots on its row), ``xlabel``,
    ``reference`` (a vertical line) with ``reference_label``.
``grouped_bars``   bars per category for several series: ``categories``, ``series`` (list of
    ``{"label", "values"}``), optional ``ylabel``.
``lines``          several series: ``series`` (list of ``{"x", "y", "lo"?, "hi"?,
    "label"}``; ``lo``/``hi`` drawn as a band with whiskers), optional ``xlabel``, ``ylabel``,
    ``reference`` (a horizontal line) with ``reference_label``, ``xlog`` (log-scaled x, ticked
    at the series' x values), ``points`` (called-out ``{"x", "y", "label"?}``).
``compare_intervals`` one small panel per statistic, baseline and current interval on their
    own scale: ``rows`` (see :func:`_draw_compare_intervals`).

What every kind promises (tests/test_figures.py): a legend sits above the plot area, never on
the data; a reference line's label is written beside the line, outside the plot area; labels
are wrapped, not cut (only a name longer than a few lines is); every text lies inside the
figure; each bar's estimate is marked, so a bar of length 0 is seen; a heat map of at most
:data:`ANNOTATE_CELLS` cells has each cell's value written in it, and its colour scale is
fitted to the values of all its matrices (centred at 0 when ``diverging``).

Add a kind by writing ``_draw_<kind>(ax_or_fig, spec)`` and registering it in
``DRAWERS``; the report renders unknown kinds as a note instead of failing.
"""
from __future__ import annotations

import io
import math
import re
import warnings

import numpy as np

from .text import inert


#: matplotlib settings of every figure (applied in a context, not globally). ``text.parse_math``
#: off: a label is drawn as written, so ``$\\alpha$ M`` stays ``$\\alpha$ M`` and an unbalanced
#: ``$`` cannot make a figure fail (group names, titles and labels are user text).
RC = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
      "svg.hashsalt": "fairaudit", "text.parse_math": False, "text.usetex": False}


def _mpl():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


#: a tick label is wrapped onto lines of this many characters, at most LABEL_LINES of them;
#: only a label longer than that (a user's name of hundreds of characters) is cut with "…"
#: (the tables keep every name whole)
LABEL_CHARS = 46
LABEL_LINES = 4


def _wrap(text: str, width: int, lines: int) -> str:
    """``text`` wrapped at spaces (or, inside a very long word, anywhere) onto at most
    ``lines`` lines of ``width`` characters; cut with "…" only when it does not fit."""
    import textwrap
    # only width × lines characters can be shown: wrapping more is wasted (and textwrap
    # is quadratic in a long word — a 20 MB group name hung the report)
    text = text[: width * lines + 1]
    out = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1] + "…"
    return "\n".join(out)


def _short(label, width: int = LABEL_CHARS, lines: int = LABEL_LINES) -> str:
    """A label as drawn: control and bidi characters shown escaped (see ``text.inert``),
    wrapped (see :func:`_wrap`); a leading "_" (which matplotlib's legend would hide)
    kept visible."""
    text = _wrap(inert(label, width * lines * 2), width, lines)     # capped before escaping and wrapping
    return "\u2009" + text if text.startswith("_") else text


def _label(text, width: int = 80) -> str:
    """A title, axis label or legend entry: like :func:`_short` with room for a sentence."""
    return "" if text is None else _short(text, width, 4)


def _arr(x):
    return np.array([np.nan if v is None else v for v in x], dtype=float)


#: colours of the figures (Paul Tol's bright scheme, colour-blind safe)
PALETTE = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]
REF_COLOR = "#cc3311"
#: bars of a row judged on its own (``verdicts`` of an interval_bars spec)
VERDICT_COLORS = {"fail": "#cc6677", "inconclusive": "#ddcc77", "pass": "#44aa99"}


def _legend_above(ax, handles=None, labels=None):
    """The legend in a row above the plot area (below the title), never on the data."""
    h, lab = ax.get_legend_handles_labels() if handles is None else (handles, labels)
    if not h:
        return None
    ncol = 1 if max(len(x) for x in lab) > 40 else min(len(h), 3)
    return ax.legend(h, lab, loc="lower left", bbox_to_anchor=(0.0, 1.01), frameon=False, fontsize=8,
                     ncol=ncol, borderaxespad=0.0, handlelength=1.6)


def _vline_label(ax, x, text):
    """A vertical reference line's label, written at the line's top, outside the plot area."""
    if not text:
        return
    ax.annotate(_label(text, 30), (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                textcoords="offset points", ha="center", va="bottom", fontsize=8, color=REF_COLOR)


def _hline_label(ax, y, text):
    """A horizontal reference line's label, written just right of the plot area at its height."""
    if not text:
        return
    ax.annotate(_label(text, 18), (1.0, y), xycoords=("axes fraction", "data"), xytext=(3, 0),
                textcoords="offset points", ha="left", va="center", fontsize=8, color=REF_COLOR)


def _draw_interval_bars(plt, spec):
    labels = [_short(v) for v in spec["labels"]]
    est, lo, hi = _arr(spec["estimate"]), _arr(spec["lo"]), _arr(spec["hi"])
    hl = spec.get("highlight") or [False] * len(labels)
    verdicts = spec.get("verdicts")
    rows = sum(1 + v.count("\n") * 0.6 for v in labels)
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * rows + 1.3))
    y = np.arange(len(labels))[::-1]
    if verdicts:
        # each bar in its row's own verdict colour (as the table), with a key above the plot
        colors = [VERDICT_COLORS.get(v, "#bbbbbb") for v in verdicts]
    else:
        colors = ["#bbbbbb" if h else PALETTE[0] for h in hl]
    ax.barh(y, np.nan_to_num(est), color=colors, height=0.6)
    if verdicts:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        seen = [v for v in ("fail", "inconclusive", "pass") if v in verdicts]
        others = any(v not in VERDICT_COLORS for v in verdicts)
        handles = [Patch(color=VERDICT_COLORS[v]) for v in seen] + ([Patch(color="#bbbbbb")] if others else [])
        names = seen + (["not judged"] if others else [])
        if spec.get("reference") is not None and spec.get("reference_label"):
            # the reference line's label joins the key (written above the line it could run into the key)
            handles.append(Line2D([], [], color=REF_COLOR, ls="--", lw=1))
            names.append(_label(spec["reference_label"], 30))
        _legend_above(ax, handles, names)
    # the estimate as a mark on every bar, so a bar of (nearly) zero length is still seen
    ax.plot(est, y, "|", color="#222222", ms=9, mew=1.5)
    err = np.vstack([np.clip(est - lo, 0, None), np.clip(hi - est, 0, None)])
    ax.errorbar(np.nan_to_num(est), y, xerr=np.nan_to_num(err), fmt="none", ecolor="#222222", capsize=3, lw=1)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))    # long labels leave a narrow plot: fewer, readable ticks
    if spec.get("xlim"):
        ax.set_xlim(*spec["xlim"])
    if spec.get("reference") is not None:
        ax.axvline(spec["reference"], color=REF_COLOR, ls="--", lw=1)
        if not verdicts:
            _vline_label(ax, spec["reference"], spec.get("reference_label"))
    ax.set_xlabel(_label(spec.get("xlabel", "")))
    return fig


def _draw_scatter_ci(plt, spec):
    x, est, lo, hi = _arr(spec["x"]), _arr(spec["estimate"]), _arr(spec["lo"]), _arr(spec["hi"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for b in spec.get("bands", []) or []:
        ax.axvspan(b["x0"], b["x1"], alpha=0.12, color=b.get("color", "#228833"),
                   label=_label(b["label"]) if b.get("label") else None)
    groups = spec.get("color_by")
    keys = sorted(set(groups)) if groups else [None]
    for j, g in enumerate(keys):
        m = np.ones(len(x), bool) if g is None else np.array([v == g for v in groups])
        err = np.vstack([np.clip(est[m] - lo[m], 0, None), np.clip(hi[m] - est[m], 0, None)])
        ax.errorbar(x[m], est[m], yerr=err, fmt="o", ms=2.5, lw=0.6, color=PALETTE[j % len(PALETTE)],
                    label=None if g is None else _label(g, 30))
    if spec.get("line"):
        ln = spec["line"]
        ax.plot(_arr(ln["x"]), _arr(ln["y"]), color="#222222", lw=1, ls="--",
                label=_label(ln["label"]) if ln.get("label") else None)
    both = np.concatenate([lo, hi, est])
    both = both[np.isfinite(both)]
    mid = float((both.min() + both.max()) / 2) if both.size else 0.0
    for i, c in enumerate(spec.get("callouts", []) or []):
        # towards the middle of the plot (never over the axis' tick labels), the second of a pair further out
        up = c["y"] <= mid
        dy = (14 + 14 * (i % 2)) * (1 if up else -1)
        ax.annotate(_label(c["text"], 30), (c["x"], c["y"]), xytext=(12, dy),
                    textcoords="offset points", fontsize=8, arrowprops={"arrowstyle": "->", "color": REF_COLOR},
                    color=REF_COLOR, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
    ax.set_xlabel(_label(spec.get("xlabel", "")))
    ax.set_ylabel(_label(spec.get("ylabel", ""), 40))
    _legend_above(ax)
    return fig


#: heat maps with at most this many cells get each cell's value written in it
ANNOTATE_CELLS = 120


def _draw_heatmap(plt, spec):
    from matplotlib.ticker import MaxNLocator
    mats = [np.array(m, dtype=float) for m in spec["matrices"]]
    subs = spec.get("subtitles") or [""] * len(mats)
    ylabels = spec.get("ylabels")
    x0 = spec.get("x0", 0)
    cols = max(m.shape[1] for m in mats)
    annotate = all(m.size <= ANNOTATE_CELLS for m in mats)
    # wide enough for a value per cell when they are written in
    per = max(3.2 if not ylabels else 4.2, 0.42 * cols + 1.0 if annotate else 0)
    if ylabels:
        # room for the row names on the left, and rows tall enough to read them
        ylabels = [_short(v, 30, 2) for v in ylabels]
        pad = min(2.4, 0.065 * max(len(line) for v in ylabels for line in v.split("\n")))
        height = max(3.2, 0.3 * len(ylabels) + 1.6)
        fig, axes = plt.subplots(1, len(mats), figsize=(per * len(mats) + 0.6 + pad, height), squeeze=False)
    else:
        rows = max(m.shape[0] for m in mats)
        height = max(3.2, 0.3 * rows + 1.4) if annotate else 3.4
        fig, axes = plt.subplots(1, len(mats), figsize=(per * len(mats) + 0.6, height), squeeze=False)
    finite = np.concatenate([m[np.isfinite(m)] for m in mats]) if mats else np.array([])
    for ax, m, t in zip(axes[0], mats, subs):
        ext = None if not x0 else (x0 - 0.5, x0 - 0.5 + m.shape[1], m.shape[0] - 0.5, -0.5)
        if spec.get("diverging"):
            # centred at 0 and fitted to the largest |value| of all the matrices
            v = float(np.max(np.abs(finite))) if finite.size else 1.0
            v = v or 1.0
            vmin, vmax, cmap = -v, v, "RdBu_r"
        else:
            # one scale for all the matrices, fitted to their values unless the spec fixes it
            vmin = spec.get("vmin", float(finite.min()) if finite.size else 0.0)
            vmax = spec.get("vmax", float(finite.max()) if finite.size else 1.0)
            if vmax <= vmin:
                vmax = vmin + (abs(vmin) or 1.0) * 1e-6
            cmap = "viridis"
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", extent=ext)
        if annotate:
            _annotate_cells(ax, im, m, x0)
        # rows and columns are individuals/positions: whole numbers only (no "0.5" ticks on small matrices)
        if annotate:
            ax.set_xticks(range(x0, x0 + m.shape[1]))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if ylabels:
            ax.set_yticks(range(len(ylabels)))
            ax.set_yticklabels(ylabels, fontsize=8)
        elif annotate:
            ax.set_yticks(range(m.shape[0]))
        else:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_title(_label(t, 45), fontsize=9)
        ax.set_xlabel(_label(spec.get("xlabel", ""), 45))
        ax.set_ylabel(_label(spec.get("ylabel", ""), 30))
        fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


def _annotate_cells(ax, im, m, x0):
    """Each cell's value written in it, dark on light colours and light on dark ones."""
    digits = 2 if np.nanmax(np.abs(m)) >= 0.1 or not np.isfinite(np.nanmax(np.abs(m))) else 3
    fs = 7 if m.shape[1] <= 10 else 6
    for (i, j), v in np.ndenumerate(m):
        if not np.isfinite(v):
            continue
        r, g, b, _ = im.cmap(im.norm(v))
        light = 0.299 * r + 0.587 * g + 0.114 * b > 0.55
        text = f"{v:.{digits}f}".replace("-", "−")
        ax.text(j + x0, i, "0" if text.strip("−0.") == "" else text, ha="center", va="center", fontsize=fs,
                color="#111111" if light else "white")


def _draw_lines(plt, spec):
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for j, s in enumerate(spec["series"]):
        x, y = _arr(s["x"]), _arr(s["y"])
        color = PALETTE[j % len(PALETTE)]
        ax.plot(x, y, marker="o", ms=3, lw=1, color=color, label=_label(s["label"], 30) if s.get("label") else None)
        if s.get("lo") is not None:
            lo, hi = _arr(s["lo"]), _arr(s["hi"])
            ax.fill_between(x, lo, hi, alpha=0.2, color=color, lw=0)
            if len(x) <= 12:
                # the ends as whiskers too: a band between two or three points is easy to miss (on many
                # points the band alone reads better)
                ax.errorbar(x, y, yerr=np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)]),
                            fmt="none", ecolor=color, capsize=3, lw=0.8)
    xs_all = np.concatenate([_arr(s["x"]) for s in spec["series"]]) if spec["series"] else np.array([])
    xs_all = xs_all[np.isfinite(xs_all)]
    if not spec.get("xlog") and xs_all.size and np.all(xs_all == np.round(xs_all)) and xs_all.min() >= 1:
        # counted things (positions 1 = top): whole-number ticks, none at 0
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(xs_all.min() - 0.5, xs_all.max() + 0.5)
    if spec.get("xlog"):
        ax.set_xscale("log")
        xs = sorted({float(v) for s in spec["series"] for v in s["x"] if v is not None})
        if xs:
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
            ax.minorticks_off()
    if spec.get("reference") is not None:
        ax.axhline(spec["reference"], color=REF_COLOR, ls="--", lw=1)
        _hline_label(ax, spec["reference"], spec.get("reference_label"))
    for p in spec.get("points") or []:     # called-out points (e.g. the two sides of a violation)
        ax.plot([p["x"]], [p["y"]], marker="o", ms=10, mfc="none", mec=REF_COLOR, mew=1.5, ls="none")
        if p.get("label"):
            ax.annotate(_short(p["label"], 30, 2), (p["x"], p["y"]), xytext=(6, 6), textcoords="offset points",
                        fontsize=7, color=REF_COLOR)
    ax.set_xlabel(_label(spec.get("xlabel", "")))
    ax.set_ylabel(_label(spec.get("ylabel", ""), 40))
    _legend_above(ax)
    return fig


def _draw_ranges(plt, spec):
    labels = [_short(v) for v in spec["labels"]]
    lo, hi = _arr(spec["lo"]), _arr(spec["hi"])
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(labels) + 1.3))
    y = np.arange(len(labels))[::-1]
    for yi, a, b, pts in zip(y, lo, hi, spec.get("points") or [[]] * len(labels)):
        ax.plot([a, b], [yi, yi], color=PALETTE[0], lw=6, alpha=0.35, solid_capstyle="butt")
        ax.plot([a, b], [yi, yi], "|", color=PALETTE[0], ms=12)
        p = _arr(pts or [])
        p = p[np.isfinite(p)]
        if p.size:
            jitter = (np.arange(p.size) % 7 - 3) * 0.04
            ax.plot(p, yi + jitter, "o", ms=2, color="#222222", alpha=0.5)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    if spec.get("reference") is not None:
        ax.axvline(spec["reference"], color=REF_COLOR, ls="--", lw=1)
        _vline_label(ax, spec["reference"], spec.get("reference_label"))
    ax.set_xlabel(_label(spec.get("xlabel", "")))
    return fig


def _draw_grouped_bars(plt, spec):
    cats = [_short(c, 16, 3) for c in spec["categories"]]
    series = spec["series"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    x = np.arange(len(cats))
    w = 0.8 / max(len(series), 1)
    for j, s in enumerate(series):
        xs, v = x - 0.4 + w * (j + 0.5), _arr(s["values"])
        color = PALETTE[j % len(PALETTE)]
        ax.bar(xs, np.nan_to_num(v), width=w, color=color, label=_label(s.get("label"), 30) or None)
        ax.plot(xs, v, "_", color="#222222", ms=max(4, 60 * w / max(len(cats), 1)), mew=1.5)   # zero bars seen
    ax.set_xticks(x, cats)
    ax.set_ylabel(_label(spec.get("ylabel", ""), 40))
    _legend_above(ax)
    return fig


def _draw_compare_intervals(plt, spec):
    """Baseline and current interval of each statistic on its own row, each row on its own
    scale (statistics have different units): ``rows`` (list of ``{"label", "baseline",
    "baseline_ci", "current", "current_ci", "status", "tolerance"?, "violation"}``)."""
    rows = spec["rows"]
    n = len(rows)
    fig, axes = plt.subplots(n, 1, figsize=(6.4, 0.62 * n + 1.0), squeeze=False)
    status_color = {"regression": REF_COLOR, "improved": "#228833"}
    for ax, r in zip(axes[:, 0], rows):
        for yy, key, color, name in ((1, "baseline", "#888888", "baseline"), (0, "current", PALETTE[0], "current")):
            est = r.get(key)
            lo, hi = (r.get(key + "_ci") or [None, None])
            if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
                ax.plot([lo, hi], [yy, yy], color=color, lw=2.5, solid_capstyle="butt")
                ax.plot([lo, hi], [yy, yy], "|", color=color, ms=8)
            if est is not None and math.isfinite(est):
                ax.plot([est], [yy], "o", color=color, ms=4, label=name)
        ax.set_yticks([1, 0], ["baseline", "current"], fontsize=7)
        ax.set_ylim(-0.6, 1.6)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(_label(f"{r['label']} — {r.get('status', '')}", 70), fontsize=8, loc="left",
                     color=status_color.get(r.get("status"), "#222222"))
    return fig


DRAWERS = {"interval_bars": _draw_interval_bars, "scatter_ci": _draw_scatter_ci, "heatmap": _draw_heatmap,
           "lines": _draw_lines, "ranges": _draw_ranges, "grouped_bars": _draw_grouped_bars,
           "compare_intervals": _draw_compare_intervals}


def figure(spec: dict):
    """The matplotlib figure of a spec, laid out (title included), inside the figure rc
    context. The caller closes it; :func:`render_svg` is what the report uses."""
    plt = _mpl()
    drawer = DRAWERS.get(spec.get("kind"))
    if drawer is None:
        raise ValueError(f"unknown figure kind {inert(repr(spec.get('kind')), 100)}")
    # constrained layout (from creation on, so colour bars take their space from it) places
    # the title, legends above the axes and labels outside the plot area without overlaps,
    # and keeps every text inside the figure
    with plt.rc_context({**RC, "figure.constrained_layout.use": True}):
        fig = drawer(plt, spec)
    try:
        if spec.get("title"):
            fig.suptitle(_label(spec["title"], int(fig.get_figwidth() * 12)), fontsize=10)
        fig.canvas.draw()
    except Exception:
        plt.close(fig)
        raise
    return fig


def render_svg(spec: dict) -> str:
    """SVG text of a figure spec (deterministic: fixed hash salt, no dates)."""
    plt = _mpl()
    with plt.rc_context(RC), warnings.catch_warnings():
        # a label in a script the font lacks is drawn as boxes; not worth a terminal warning
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
        fig = figure(spec)
        try:
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "fairaudit"})
        finally:
            plt.close(fig)
    svg = buf.getvalue()
    # Drop the XML prolog and DOCTYPE so the SVG can be inlined in HTML.
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    return svg
