"""Figures for the report: a check returns *specs* (plain data in its result); this
module draws them with matplotlib as SVG text to inline in the HTML.

A spec is a dict with ``"kind"`` and ``"title"`` plus the kind's fields:

``interval_bars``  horizontal bars of estimates with interval whiskers, one per label:
    ``labels``, ``estimate``, ``lo``, ``hi``; optional ``xlabel``, ``reference`` (a
    vertical line, e.g. a threshold) with ``reference_label``, ``highlight`` (bools:
    drawn hatched/grey), ``xlim``.
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
    "label"}``), optional ``xlabel``, ``ylabel``, ``reference``.

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


#: longest tick label drawn in full; longer names are cut with "…" (the tables keep them whole)
LABEL_CHARS = 48


def _short(label, limit: int = LABEL_CHARS) -> str:
    """A label as drawn: control and bidi characters shown escaped (see ``text.inert``),
    cut at ``limit`` characters with "…"; a leading "_" (which matplotlib's legend would
    hide) kept visible."""
    text = inert(label)
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return "\u2009" + text if text.startswith("_") else text


def _label(text) -> str:
    """A title, axis label or legend entry: like :func:`_short` with room for a sentence."""
    return "" if text is None else _short(text, 200)


def _arr(x):
    return np.array([np.nan if v is None else v for v in x], dtype=float)


def _draw_interval_bars(plt, spec):
    labels = [_short(v) for v in spec["labels"]]
    est, lo, hi = _arr(spec["estimate"]), _arr(spec["lo"]), _arr(spec["hi"])
    hl = spec.get("highlight") or [False] * len(labels)
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(labels) + 1.1))
    y = np.arange(len(labels))[::-1]
    colors = ["#bbbbbb" if h else "#4477aa" for h in hl]
    ax.barh(y, np.nan_to_num(est), color=colors, height=0.6)
    err = np.vstack([np.clip(est - lo, 0, None), np.clip(hi - est, 0, None)])
    ax.errorbar(np.nan_to_num(est), y, xerr=np.nan_to_num(err), fmt="none", ecolor="#222222", capsize=3, lw=1)
    ax.set_yticks(y, labels)
    if spec.get("reference") is not None:
        ax.axvline(spec["reference"], color="#cc3311", ls="--", lw=1,
                   label=_label(spec["reference_label"]) if spec.get("reference_label") else None)
        if spec.get("reference_label"):
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False, fontsize=8)
    if spec.get("xlim"):
        ax.set_xlim(*spec["xlim"])
    ax.set_xlabel(_label(spec.get("xlabel", "")))
    return fig


def _draw_scatter_ci(plt, spec):
    x, est, lo, hi = _arr(spec["x"]), _arr(spec["estimate"]), _arr(spec["lo"]), _arr(spec["hi"])
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for b in spec.get("bands", []) or []:
        ax.axvspan(b["x0"], b["x1"], alpha=0.12, color=b.get("color", "#228833"),
                   label=_label(b["label"]) if b.get("label") else None)
    groups = spec.get("color_by")
    palette = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]
    keys = sorted(set(groups)) if groups else [None]
    for j, g in enumerate(keys):
        m = np.ones(len(x), bool) if g is None else np.array([v == g for v in groups])
        err = np.vstack([np.clip(est[m] - lo[m], 0, None), np.clip(hi[m] - est[m], 0, None)])
        ax.errorbar(x[m], est[m], yerr=err, fmt="o", ms=2.5, lw=0.6, color=palette[j % len(palette)],
                    label=None if g is None else _label(g))
    if spec.get("line"):
        ln = spec["line"]
        ax.plot(_arr(ln["x"]), _arr(ln["y"]), color="#222222", lw=1, ls="--",
                label=_label(ln["label"]) if ln.get("label") else None)
    for c in spec.get("callouts", []) or []:
        ax.annotate(_label(c["text"]), (c["x"], c["y"]), xytext=(10, 10), textcoords="offset points",
                    arrowprops={"arrowstyle": "->", "color": "#cc3311"}, color="#cc3311")
    ax.set_xlabel(_label(spec.get("xlabel", "")))
    ax.set_ylabel(_label(spec.get("ylabel", "")))
    if groups or spec.get("bands") or (spec.get("line") or {}).get("label"):
        ax.legend(frameon=False, fontsize=8)
    return fig


def _draw_heatmap(plt, spec):
    from matplotlib.ticker import MaxNLocator
    mats = [np.array(m, dtype=float) for m in spec["matrices"]]
    subs = spec.get("subtitles") or [""] * len(mats)
    ylabels = spec.get("ylabels")
    x0 = spec.get("x0", 0)
    if ylabels:
        # room for the row names on the left, and rows tall enough to read them
        ylabels = [_short(v) for v in ylabels]
        pad = min(3.5, 0.065 * max(len(v) for v in ylabels))
        height = max(3.2, 0.22 * len(ylabels) + 1.4)
        fig, axes = plt.subplots(1, len(mats), figsize=(4.2 * len(mats) + 0.6 + pad, height), squeeze=False)
    else:
        fig, axes = plt.subplots(1, len(mats), figsize=(3.2 * len(mats) + 0.6, 3.2), squeeze=False)
    for ax, m, t in zip(axes[0], mats, subs):
        ext = None if not x0 else (x0 - 0.5, x0 - 0.5 + m.shape[1], m.shape[0] - 0.5, -0.5)
        if spec.get("diverging"):
            v = np.nanmax(np.abs(m)) or 1.0
            im = ax.imshow(m, cmap="RdBu_r", vmin=-v, vmax=v, aspect="auto", extent=ext)
        else:
            im = ax.imshow(m, cmap="viridis", aspect="auto", extent=ext, vmin=spec.get("vmin"), vmax=spec.get("vmax"))
        # rows and columns are individuals/positions: whole numbers only (no "0.5" ticks on small matrices)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if ylabels:
            ax.set_yticks(range(len(ylabels)))
            ax.set_yticklabels(ylabels, fontsize=8)
        else:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_title(_label(t), fontsize=9)
        ax.set_xlabel(_label(spec.get("xlabel", "")))
        ax.set_ylabel(_label(spec.get("ylabel", "")))
        fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


def _draw_lines(plt, spec):
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for s in spec["series"]:
        x, y = _arr(s["x"]), _arr(s["y"])
        (l,) = ax.plot(x, y, marker="o", ms=3, lw=1, label=_label(s["label"]) if s.get("label") else None)
        if s.get("lo") is not None:
            ax.fill_between(x, _arr(s["lo"]), _arr(s["hi"]), alpha=0.2, color=l.get_color())
    if spec.get("reference") is not None:
        ax.axhline(spec["reference"], color="#cc3311", ls="--", lw=1)
    for p in spec.get("points") or []:     # called-out points (e.g. the two sides of a violation)
        ax.plot([p["x"]], [p["y"]], marker="o", ms=10, mfc="none", mec="#cc3311", mew=1.5, ls="none")
        if p.get("label"):
            ax.annotate(_short(p["label"]), (p["x"], p["y"]), xytext=(6, 6), textcoords="offset points",
                        fontsize=7, color="#cc3311")
    ax.set_xlabel(_label(spec.get("xlabel", "")))
    ax.set_ylabel(_label(spec.get("ylabel", "")))
    ax.legend(frameon=False, fontsize=8)
    return fig


def _draw_ranges(plt, spec):
    labels = [_short(v) for v in spec["labels"]]
    lo, hi = _arr(spec["lo"]), _arr(spec["hi"])
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(labels) + 1.2))
    y = np.arange(len(labels))[::-1]
    for yi, a, b, pts in zip(y, lo, hi, spec.get("points") or [[]] * len(labels)):
        ax.plot([a, b], [yi, yi], color="#4477aa", lw=6, alpha=0.35, solid_capstyle="butt")
        ax.plot([a, b], [yi, yi], "|", color="#4477aa", ms=12)
        p = _arr(pts or [])
        p = p[np.isfinite(p)]
        if p.size:
            jitter = (np.arange(p.size) % 7 - 3) * 0.04
            ax.plot(p, yi + jitter, "o", ms=2, color="#222222", alpha=0.5)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    if spec.get("reference") is not None:
        ax.axvline(spec["reference"], color="#cc3311", ls="--", lw=1, label=spec.get("reference_label"))
        if spec.get("reference_label"):
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False, fontsize=8)
    ax.set_xlabel(spec.get("xlabel", ""))
    return fig


def _draw_grouped_bars(plt, spec):
    cats = [_short(c) for c in spec["categories"]]
    series = spec["series"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    x = np.arange(len(cats))
    w = 0.8 / max(len(series), 1)
    for j, s in enumerate(series):
        ax.bar(x - 0.4 + w * (j + 0.5), np.nan_to_num(_arr(s["values"])), width=w, label=s.get("label"))
    ax.set_xticks(x, cats)
    ax.set_ylabel(spec.get("ylabel", ""))
    ax.legend(frameon=False, fontsize=8)
    return fig


DRAWERS = {"interval_bars": _draw_interval_bars, "scatter_ci": _draw_scatter_ci, "heatmap": _draw_heatmap,
           "lines": _draw_lines, "ranges": _draw_ranges, "grouped_bars": _draw_grouped_bars}


def render_svg(spec: dict) -> str:
    """SVG text of a figure spec (deterministic: fixed hash salt, no dates)."""
    plt = _mpl()
    drawer = DRAWERS.get(spec.get("kind"))
    if drawer is None:
        raise ValueError(f"unknown figure kind {inert(repr(spec.get('kind')), 100)}")
    with plt.rc_context(RC), warnings.catch_warnings():
        # a label in a script the font lacks is drawn as boxes; not worth a terminal warning
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
        fig = drawer(plt, spec)
        try:
            if spec.get("title"):
                fig.suptitle(_label(spec["title"]), fontsize=10)
            fig.tight_layout()
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "fairaudit"})
        finally:
            plt.close(fig)
    svg = buf.getvalue()
    # Drop the XML prolog and DOCTYPE so the SVG can be inlined in HTML.
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    return svg
