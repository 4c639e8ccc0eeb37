"""The figures of the HTML report (:mod:`sparsest.report.html`): matplotlib rendered to SVG
text that the page embeds inline (text stays text, no file, nothing fetched).

Every function takes plain numbers (lists, dicts, DataFrames read from a run directory) and
returns the SVG markup of one figure; none reads files or knows a command's metrics.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

STYLE = {"svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
         "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": None}
DENSE_COLOUR, CHOSEN_COLOUR, OFF_COLOUR = "#7f7f7f", "#d62728", "#d62728"
PALETTE = plt.get_cmap("tab10").colors
BARS = [c for i, c in enumerate(PALETTE) if i != 7]  # tab10 without its grey (dense bars are grey)

_STRIP = (re.compile(r"<\?xml[^>]*\?>\s*"), re.compile(r"<!DOCTYPE[^>]*>\s*", re.S),
          re.compile(r"<metadata>.*?</metadata>\s*", re.S), re.compile(r"<style[^>]*>.*?</style>\s*", re.S))


def to_svg(fig) -> str:
    """The inline SVG markup of ``fig`` (closed afterwards): no XML prolog, DOCTYPE,
    metadata or global style, so it sits in an HTML page and references nothing."""
    buf = io.StringIO()
    try:
        with plt.rc_context(STYLE):  # svg.fonttype is read when saving
            fig.savefig(buf, format="svg", bbox_inches="tight", dpi=110)
    finally:
        plt.close(fig)
    text = buf.getvalue()
    for pattern in _STRIP:
        text = pattern.sub("", text)
    return text.strip()


def _figure(w: float, h: float, ncols: int = 1):
    with plt.rc_context(STYLE):
        return plt.subplots(1, ncols, figsize=(w, h), squeeze=False)


def _finite(v) -> bool:
    return v is not None and np.isfinite(float(v))


def accuracy_curve(series: dict[str, list[tuple[float, float]]], ylabel: str, xlabel: str, chosen: tuple[str, float, float] | None = None,
                   budget: float | None = None, budget_label: str = "budget", hlines: dict[str, float] | None = None,
                   point_labels: dict[tuple[float, float], str] | None = None, scatter: tuple[str, ...] = ()) -> str:
    """Error against sparsity: one line per entry of ``series`` (``(x, y)`` points; the
    series named in ``scatter`` as unconnected markers), the chosen point as a star
    (``(label, x, y)``), the budget as a vertical dashed line and reference errors (e.g.
    persistence) as horizontal dotted lines."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(8.4, 3.7)
        ax = ax[0, 0]
        for i, (name, pts) in enumerate(series.items()):
            pts = sorted((x, y) for x, y in pts if _finite(x) and _finite(y))
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, "o-" if len(pts) > 1 and name not in scatter else "o", color=PALETTE[i % 10], label=name, ms=5,
                        lw=1.4)
        for (x, y), text in (point_labels or {}).items():
            if _finite(x) and _finite(y):
                ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7, color="#444")
        for j, (name, y) in enumerate((hlines or {}).items()):
            if _finite(y):
                ax.axhline(y, color=("#555", "#999", "#bbb")[j % 3], ls=(":", "-.", (0, (1, 3)))[j % 3], lw=1.2,
                           label=f"{name} {y:.4g}")
        if budget is not None and _finite(budget):
            ax.axvline(budget, color="#1f77b4", ls="--", lw=1.2, label=f"{budget_label} {budget:g}")
        if chosen is not None and _finite(chosen[1]) and _finite(chosen[2]):
            ax.plot([chosen[1]], [chosen[2]], marker="*", ms=16, color=CHOSEN_COLOUR, mec="k", mew=0.6, ls="none",
                    label=chosen[0], zorder=5)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        lo, hi = ax.get_xlim()
        ax.set_xlim(min(lo, -0.02), max(hi, 0.05))
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.16), ncol=2, frameon=False)
        fig.tight_layout()
    return to_svg(fig)


def sensor_map(table, edges=None, title: str = "", score_label: str = "importance |m|") -> str:
    """Sensors on their coordinates: kept ones coloured by importance, switched-off ones as
    red crosses, the graph's edges as grey lines (``edges``: integer ``[E, 2]`` rows into
    ``table``). ``table`` has ``latitude, longitude, importance, kept``; without
    coordinates the sensors are drawn by index against importance."""
    lat = table["latitude"].to_numpy(float)
    lon = table["longitude"].to_numpy(float)
    imp = table["importance"].to_numpy(float)
    kept = table["kept"].to_numpy(int).astype(bool)
    has_xy = len(lat) > 0 and np.isfinite(lat).all() and np.isfinite(lon).all()
    x, y = (lon, lat) if has_xy else (np.arange(len(imp)), np.nan_to_num(imp))
    varies = np.isfinite(imp[kept]).all() and kept.any() and np.ptp(imp[kept]) > 1e-12
    with plt.rc_context(STYLE):
        fig, ax = _figure(8.4, 6.2)
        ax = ax[0, 0]
        if edges is not None and len(edges) and has_xy:
            segs = np.stack([np.column_stack([x[edges[:, 0]], y[edges[:, 0]]]), np.column_stack([x[edges[:, 1]], y[edges[:, 1]]])], 1)
            ax.add_collection(LineCollection(segs, colors="#9a9a9a", linewidths=0.5, alpha=0.55, zorder=1,
                                             label=f"graph edges ({len(edges)})"))
        if varies:
            sc = ax.scatter(x[kept], y[kept], c=imp[kept], cmap="viridis", s=30, edgecolors="k", linewidths=0.3, zorder=3,
                            label=f"kept ({int(kept.sum())})")
            fig.colorbar(sc, ax=ax, label=f"{score_label} (kept sensors)", shrink=0.8)
        else:
            ax.scatter(x[kept], y[kept], color="#2ca02c", s=30, edgecolors="k", linewidths=0.3, zorder=3,
                       label=f"kept ({int(kept.sum())}; no importance score varies)")
        ax.scatter(x[~kept], y[~kept], color=OFF_COLOUR, marker="x", s=30, linewidths=1.2, zorder=4,
                   label=f"switched off ({int((~kept).sum())})")
        if has_xy:
            ax.set_xlabel("longitude [°]")
            ax.set_ylabel("latitude [°]")
            ax.set_aspect(1 / max(np.cos(np.deg2rad(np.nanmean(lat))), 0.1), adjustable="datalim")
            ax.grid(False)
        else:
            ax.set_xlabel("sensor index (no coordinates in sensors.csv)")
            ax.set_ylabel("importance |m|")
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.1), ncol=3, frameon=False)
        ax.set_title(title)
        fig.tight_layout()
    return to_svg(fig)


def patch_map(rows: np.ndarray, cols: np.ndarray, table, title: str = "", score_label: str = "importance |m|") -> str:
    """Grid sensors (patches ``r{row}c{col}``): the kept patches over the field coloured by
    importance, switched-off patches grey and hatched; on the patches' latitude/longitude
    when ``table`` has them."""
    imp = table["importance"].to_numpy(float)
    kept = table["kept"].to_numpy(int).astype(bool)
    nr, nc = int(rows.max()) + 1, int(cols.max()) + 1
    field = np.full((nr, nc), np.nan)
    on = np.zeros((nr, nc), bool)
    field[rows, cols] = imp
    on[rows, cols] = kept
    lat, lon = table["latitude"].to_numpy(float), table["longitude"].to_numpy(float)
    extent, origin, xl, yl = None, "upper", "patch column", "patch row"
    if len(lat) and np.isfinite(lat).all() and np.isfinite(lon).all() and nr > 1 and nc > 1:
        glat = np.full(nr, np.nan)
        glon = np.full(nc, np.nan)
        glat[rows], glon[cols] = lat, lon
        dy, dx = abs(glat[1] - glat[0]) / 2, abs(glon[1] - glon[0]) / 2
        extent = [glon.min() - dx, glon.max() + dx, glat.min() - dy, glat.max() + dy]
        degrees = np.abs(lat).max() <= 90 and np.abs(lon).max() <= 180  # else projected (radar: km on the radar's grid)
        origin = "upper" if glat[0] > glat[-1] else "lower"
        xl, yl = ("longitude [°]", "latitude [°]") if degrees else ("x (projected coordinates)", "y (projected coordinates)")
    varies = np.isfinite(imp[kept]).all() and kept.any() and np.ptp(imp[kept]) > 1e-12
    with plt.rc_context(STYLE):
        fig, ax = _figure(8.4, 6.0)
        ax = ax[0, 0]
        shown = np.ma.masked_where(~on, field if varies else np.ones_like(field))
        im = ax.imshow(shown, cmap="viridis" if varies else "Greens", vmin=None if varies else 0, vmax=None if varies else 1.6,
                       extent=extent, origin=origin, aspect="auto", interpolation="nearest")
        ax.imshow(np.ma.masked_where(on, np.ones_like(field)), cmap="Greys", vmin=0, vmax=2.5, extent=extent, origin=origin,
                  aspect="auto", interpolation="nearest", alpha=0.85)
        if varies:
            fig.colorbar(im, ax=ax, label=f"{score_label} (kept patches)", shrink=0.8)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(False)
        ax.set_title(title + f"  (green/colour: kept {int(kept.sum())}, grey: switched off {int((~kept).sum())})", fontsize=9)
        fig.tight_layout()
    return to_svg(fig)


def curves(lines: list[tuple[str, list[float], list[float]]], xlabel: str, ylabel: str, logy: bool = False,
           integer_x: bool = False, dashed: tuple[str, ...] = (), from_zero: bool = False) -> str:
    """One line per ``(label, x, y)`` (markers at every point; the labels in ``dashed``
    dashed, e.g. reference forecasts), e.g. validation error against wall-clock time per
    training phase; ``from_zero``: the x axis starts at 0."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(8.4, 3.5)
        ax = ax[0, 0]
        for i, (label, x, y) in enumerate(lines):
            ax.plot(x, y, marker="o", ms=3.5, lw=1.3, label=label, color=PALETTE[i % 10],
                    ls="--" if label in dashed or i >= 10 else "-", alpha=0.75 if label in dashed else 1.0)
        if from_zero:
            ax.set_xlim(left=0)
        if logy and all(v > 0 for _, _, ys in lines for v in ys if np.isfinite(v)):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if integer_x:
            xs = sorted({float(v) for _, x, _ in lines for v in x})
            if len(xs) <= 12:
                ax.set_xticks(xs)
                ax.set_xlim(xs[0] - 0.5, xs[-1] + 0.5) if len(xs) == 1 else None
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.16), ncol=3 if len(lines) > 2 else 2, frameon=False)
        fig.tight_layout()
    return to_svg(fig)


def bar_panels(panels: list[tuple[str, str, dict[str, float]]], note: str = "") -> str:
    """Side-by-side bar charts, one per ``(title, ylabel, {label: value})``, the value
    written above each bar; bars named ``dense`` are grey."""
    panels = [(t, yl, {k: v for k, v in vals.items() if _finite(v)}) for t, yl, vals in panels]
    panels = [p for p in panels if p[2]]
    n = max(1, len(panels))
    with plt.rc_context(STYLE):
        fig, axes = _figure(min(3.6 * n + 0.6, 12.0), 3.5, ncols=n)
        for ax, (title, ylabel, vals) in zip(axes[0], panels):
            names, values = list(vals), [float(v) for v in vals.values()]
            colours = [DENSE_COLOUR if k.lower().startswith("dense") else BARS[i % len(BARS)] for i, k in enumerate(names)]
            pos = np.arange(len(names))
            ax.bar(pos, values, color=colours, width=0.65)
            top = max(values) if values else 1
            for p, v in zip(pos, values):
                ax.text(p, v + 0.02 * top, f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}", ha="center", va="bottom", fontsize=7)
            ax.set_ylim(0, top * 1.18 if top > 0 else 1)
            ax.set_xticks(pos)
            ax.set_xticklabels(names, rotation=25 if len(names) > 2 else 0, ha="right" if len(names) > 2 else "center")
            ax.set_title(title)
            ax.set_ylabel(ylabel)
            ax.grid(axis="x", visible=False)
        if note:
            fig.text(0.01, 0.0, note, fontsize=7, color="#555", va="bottom")
        fig.tight_layout(rect=(0, 0.05 if note else 0, 1, 1))
    return to_svg(fig)


__all__ = ["to_svg", "accuracy_curve", "sensor_map", "patch_map", "curves", "bar_panels"]
