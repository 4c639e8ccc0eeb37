"""``report.html``: one self-contained page per run directory, and a page comparing runs.

The page is built from the run directory's files only (:mod:`sparsest.report.rundir`) and
opens offline: every figure is matplotlib SVG inline in the HTML (:mod:`.figures`), the
style sheet and the few lines of script are inline too, and a Content-Security-Policy
forbids the browser to load anything (no ``src``/``href`` points outside the page, except
relative links to the run's own files). Sections appear only where the run has their data:

==================  =================================================  =====================================
section (id)        shows                                              from
==================  =================================================  =====================================
``sec-summary``     facts (sensors kept, budget, times, costs) and     ``metrics.json``
                    the test-error table, physical units
``sec-accuracy``    error against sparsity: budget line, chosen point  ``metrics.json`` (run, compress)
``sec-sensors``     sensor map: kept / switched-off sensors by         ``sensors.csv``, ``graph_edges.csv``;
                    importance with the graph's edges, or the kept     compress: ``importance_maps/*.png``
                    patches of a grid
``sec-training``    validation error against wall-clock time, per      ``logs/<phase>/metrics.csv``
                    training phase
``sec-horizon``     test error per forecast step                       ``metrics.json``
``sec-cost``        dense vs pruned latency and FLOPs                  ``metrics.json``
``sec-robustness``  MSE under input noise / mask failure               ``metrics.json`` (compress)
``sec-config``      the resolved options                               ``config.yaml``
``sec-files``       the run directory's files, linked                  the folder
==================  =================================================  =====================================

Each figure is a ``<figure class="sp-figure" id="fig-...">``. An unfinished run
(``….partial``) is reported too, under a banner that says so.
"""

from __future__ import annotations

import base64
import html
import math
import os
import tempfile
import time
from pathlib import Path

from . import figures, sections
from .rundir import RunFiles, read_run

SKIPPED = (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError)
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
CSS = """
body{font-family:'DejaVu Sans','Liberation Sans',Arial,sans-serif;margin:0;color:#222;background:#fafafa;font-size:14px}
header{background:#263238;color:#fff;padding:14px 28px}header h1{margin:0 0 4px;font-size:20px}
header .sp-sub{margin:0;color:#cfd8dc;font-size:12px;font-family:'DejaVu Sans Mono',monospace;word-break:break-all}
nav{padding:6px 28px;background:#eceff1;font-size:12px}nav a{margin-right:14px;color:#1565c0;text-decoration:none}
main{max-width:1180px;margin:0 auto;padding:8px 28px 28px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:14px 0;padding:10px 18px}
h2{font-size:16px;margin:6px 0 10px;color:#263238}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}th,td{border-bottom:1px solid #e6e6e6;padding:3px 10px;text-align:right}
th{background:#f3f5f7;font-weight:600}td:first-child,th:first-child{text-align:left}
table.sp-facts td:first-child{color:#555;white-space:nowrap}table.sp-facts td,table.sp-legend td,table.sp-legend th{text-align:left}
figure.sp-figure{margin:8px 0 14px}figure.sp-figure svg,figure.sp-figure img{max-width:100%;height:auto;display:block}
figure.sp-figure svg *{stroke-linejoin:round;stroke-linecap:butt}
figcaption{font-size:12px;color:#555;margin-top:4px}.sp-maps{display:flex;flex-wrap:wrap;gap:10px}figure.sp-figure .sp-maps img{max-width:calc(50% - 10px)}
.sp-banner{padding:10px 28px;background:#fff3cd;color:#664d03;border-bottom:1px solid #ffe69c;font-weight:600}
.sp-notes{color:#8a4b00;font-size:12px}pre{background:#f6f8fa;padding:8px;font-size:12px;overflow:auto;max-height:420px}
footer{color:#888;font-size:11px;text-align:center;padding:10px}
"""
# records a script error on the page (the browser test reads it) and marks the page ready
HEAD_SCRIPT = ("window.addEventListener('error',function(e){document.documentElement.setAttribute('data-sp-error',"
               "String(e.message||'error'))});")
TAIL_SCRIPT = ("(function(){var d=document.documentElement;d.setAttribute('data-sp-figures',"
               "String(document.querySelectorAll('figure.sp-figure').length));d.setAttribute('data-sp-ready','1');})();")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _facts(rows: list[tuple[str, str]]) -> str:
    return '<table class="sp-facts"><tbody>' + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows) + \
        "</tbody></table>"


def _figure(fid: str, body: str, caption: str) -> str:
    return f'<figure class="sp-figure" id="{fid}">{body}<figcaption>{_e(caption)}</figcaption></figure>'


def _section(sid: str, title: str, body: str) -> tuple[str, str, str]:
    return sid, title, f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>'


def _curve_lines(runs: list[tuple[str, RunFiles]], metric: str = "val_mae") -> tuple[list, str]:
    """Lines ``(label, x, y)`` of every phase of every run; x is the phase's wall clock when
    every curve has one, else the epoch."""
    curves = [(f"{label}{': ' if label else ''}{phase}", c) for label, run in runs for phase, c in run.curves.items()]
    curves = [(lab, c) for lab, c in curves if any(math.isfinite(v) for v in c[metric])]
    timed = bool(curves) and all(c["time_s"] is not None for _, c in curves)
    xkey = "time_s" if timed else "epoch"
    xlabel = "wall-clock time since the phase began [s]" if timed else "epoch (no wall clock in these logs)"
    return [(lab, c[xkey], c[metric]) for lab, c in curves], xlabel


def _skipped(run: RunFiles, what: str, e: Exception) -> None:
    key = e.args[0] if isinstance(e, KeyError) and e.args else str(e).splitlines()[0] if str(e) else type(e).__name__
    run.notes.append(f"{what} left out: metrics.json lacks or has a bad {key!r}")


def _sec_summary(run: RunFiles) -> tuple | None:
    rows = sections.base_facts(run)
    try:
        rows += sections.facts(run)
    except SKIPPED as e:
        _skipped(run, "part of the summary", e)
    body = _facts(rows)
    try:
        table = sections.error_table(run) if run.metrics else None
    except SKIPPED as e:
        table = None
        _skipped(run, "the error table", e)
    if table is not None:
        body += _table(*table, cls="sp-errors")
    return _section("sec-summary", "Summary", body)


def _sec_accuracy(run: RunFiles) -> tuple | None:
    pts = sections.accuracy_points(run)
    if pts is None:
        return None
    cap = pts.get("caption", "Test error against sparsity")
    cap += (f"; dashed line: the budget ({pts['budget']:g}); " if pts.get("budget") is not None else "; ")
    cap += "star: the chosen point" + ("; horizontal lines: reference forecasts." if pts.get("hlines") else ".")
    svg = figures.accuracy_curve(pts["series"], pts["ylabel"], pts["xlabel"], pts.get("chosen"), pts.get("budget"),
                                 pts.get("budget_label", "budget"), pts.get("hlines"), pts.get("point_labels"), pts.get("scatter", ()))
    return _section("sec-accuracy", "Accuracy against sparsity", _figure("fig-accuracy-vs-sparsity", svg, cap))


def _sec_sensors(run: RunFiles) -> tuple | None:
    if run.sensors is not None:
        t = run.sensors
        ids = t["sensor_id"].astype(str)
        grid = ids.str.fullmatch(r"r\d+c\d+").all()
        title = f"{int(t['kept'].sum())} of {len(t)} {'patches' if grid else 'sensors'} kept"
        plan = run.kind == "plan"
        label = "score (share of checkpoints keeping it)" if plan else "importance |m|"
        what = "their plan score (the share of the search's checkpoints that keep them)" if plan else "learned importance"
        if grid:
            rc = ids.str.extract(r"r(\d+)c(\d+)").astype(int).to_numpy()
            svg = figures.patch_map(rc[:, 0], rc[:, 1], t, title, score_label=label)
            cap = f"Grid sensors are patches: kept patches over the field coloured by {what}, switched-off ones grey."
        else:
            svg = figures.sensor_map(t, run.edges, title, score_label=label)
            cap = (f"Sensors on their coordinates: kept ones coloured by {what if plan else 'learned importance |m|'}, "
                   "switched-off ones as red crosses"
                   + (", grey lines: the graph's edges (graph_edges.csv)." if run.edges is not None else "."))
        return _section("sec-sensors", "Sensor map", _figure("fig-sensor-map", svg, cap))
    if run.maps:
        imgs = "".join(f'<img alt="{_e(n)}" title="{_e(n)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
                       for n, p in run.maps)
        cap = "Dyna-Pruner importance maps of test windows (importance_maps/*.png): where the input mask computes."
        return _section("sec-sensors", "Importance maps", _figure("fig-importance-maps", f'<div class="sp-maps">{imgs}</div>', cap))
    return None


def _sec_training(run: RunFiles) -> tuple | None:
    lines, xlabel = _curve_lines([("", run)])
    if not lines:
        return None
    u = f" [{run.units}]" if run.units else ""
    svg = figures.curves(lines, xlabel, f"validation MAE{u}", integer_x=xlabel.startswith("epoch"),
                         from_zero=not xlabel.startswith("epoch"))
    cap = "Validation MAE after each epoch of each training phase (logs/<phase>/metrics.csv); each phase's clock starts at 0."
    return _section("sec-training", "Validation error against wall-clock time", _figure("fig-val-vs-time", svg, cap))


def _sec_horizon(run: RunFiles) -> tuple | None:
    ph = sections.per_horizon(run)
    if ph is None or not ph[1]:
        return None
    ylabel, series = ph
    svg = figures.curves([(k, list(range(1, len(v) + 1)), v) for k, v in series.items()],
                         "forecast step (1 = the next time step)", ylabel, integer_x=True,
                         dashed=("persistence", "historical average"))
    return _section("sec-horizon", "Error per forecast step", _figure("fig-per-horizon", svg, "Test error at each forecast step."))


def _sec_cost(run: RunFiles) -> tuple | None:
    cp = sections.cost_panels(run)
    if cp is None:
        return None
    panels, note = cp
    svg = figures.bar_panels(panels)
    return _section("sec-cost", "Latency and FLOPs, dense against pruned",
                    _figure("fig-latency-flops", svg, f"Measured on this run's machine: {note}."))


def _sec_robustness(run: RunFiles) -> tuple | None:
    t = sections.robustness_table(run)
    return None if t is None else _section("sec-robustness", "Robustness", _table(*t))


def _sec_config(run: RunFiles) -> tuple | None:
    p = run.path / "config.yaml"
    if not p.is_file():
        return None
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return _section("sec-config", "Options (config.yaml)", f"<details><summary>show</summary><pre>{_e(text)}</pre></details>")


def _sec_files(run: RunFiles) -> tuple | None:
    files = sorted(p for p in run.path.rglob("*") if p.is_file() and not p.name.startswith("."))
    base = run.link_base or run.path

    def link(p: Path) -> str:
        return Path(os.path.relpath(p.resolve(), Path(base).resolve())).as_posix()
    rows = "".join(f'<li><a href="{_e(link(p))}">{_e(p.relative_to(run.path).as_posix())}</a> '
                   f"({sections.num(p.stat().st_size / 1024, 3)} KiB)</li>" for p in files[:300])
    return _section("sec-files", "Files", f"<details><summary>{len(files)} files</summary><ul>{rows}</ul></details>")


SECTIONS = (_sec_summary, _sec_accuracy, _sec_sensors, _sec_training, _sec_horizon, _sec_cost, _sec_robustness, _sec_config,
            _sec_files)


def _page(title: str, subtitle: str, parts: list[tuple[str, str, str]], banner: str = "", notes: list[str] = ()) -> str:
    nav = "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t, _ in parts)
    note_html = ("<section id=\"sec-notes\"><h2>Notes</h2><ul class=\"sp-notes\">" + "".join(f"<li>{_e(n)}</li>" for n in notes)
                 + "</ul></section>") if notes else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
            f"<style>{CSS}</style><script>{HEAD_SCRIPT}</script></head>\n<body>"
            f'<header><h1>{_e(title)}</h1><p class="sp-sub">{_e(subtitle)}</p></header>{banner}<nav>{nav}</nav><main>'
            + note_html + "\n".join(body for _, _, body in parts)
            + f"</main><footer>written by sparsest on {time.strftime('%Y-%m-%d %H:%M:%S')}; self-contained, opens offline"
            f"</footer><script>{TAIL_SCRIPT}</script></body></html>\n")


def _write(path: Path, text: str) -> Path:
    """``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _unfinished_banner(run: RunFiles) -> str:
    if run.finished:
        return ""
    s = run.status
    why = f"status {s.get('state', 'unknown')}" + (f": {s['reason']}" if s.get("reason") else "") + \
        (f", phase {s['phase']}" if s.get("phase") else "")
    return (f'<div class="sp-banner" id="sp-unfinished">Unfinished run ({_e(why)}): this report shows what had been written '
            "so far.</div>")


def build_html(run: RunFiles) -> str:
    """The report page of one read run directory (:func:`~sparsest.report.rundir.read_run`).
    A section whose data ``metrics.json`` lacks is left out with a note, never an error."""
    parts = []
    for build in SECTIONS:
        try:
            part = build(run)
        except SKIPPED as e:
            _skipped(run, f"the {build.__name__[5:]} section", e)
            continue
        if part is not None:
            parts.append(part)
    title = f"sparsest report: {sections.COMMANDS[run.kind]}"
    sub = f"{run.name}  ·  {run.short()}"
    return _page(title, sub, parts, _unfinished_banner(run), run.notes)


def write_html_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the self-contained ``report.html`` of one run directory.

    Args:
        run_dir: a run directory (finished, or unfinished ``….partial``).
        out: where to write; default ``run_dir/report.html``.

    Returns:
        the path written.

    Raises:
        ConfigError: ``run_dir`` is not a run directory or its ``metrics.json`` is missing
            or unreadable (one line naming the file; :func:`~sparsest.report.rundir.read_run`).
        OSError: the page cannot be written.
    """
    run = read_run(run_dir)
    path = Path(out) if out is not None else run.path / "report.html"
    run.link_base = path.parent
    return _write(path, build_html(run))


def build_comparison(runs: list[RunFiles]) -> str:
    """The comparison page of several read runs: their headline figures side by side and
    their validation curves overlaid (and their chosen accuracy points, where they have one)."""
    labels = [f"#{i + 1}" for i in range(len(runs))]
    heads = [sections.headline(r) for r in runs]
    order = {k: i for i, k in enumerate(sections.HEADLINE_ORDER)}
    keys = sorted(dict.fromkeys(k for h in heads for k in h), key=lambda k: order.get(k, len(order)))
    legend = _table(["run", "label", "directory"], [[lab, r.short(), str(r.path)] for lab, r in zip(labels, runs)], cls="sp-legend")
    table = _table(["", *labels], [[k, *[h.get(k, "—") for h in heads]] for k in keys], cls="sp-compare")
    parts = [_section("sec-summary", "Headline figures", legend + table)]
    lines, xlabel = _curve_lines(list(zip(labels, runs)))
    if lines:
        units = {r.units for r in runs if r.curves}
        u = f" [{units.pop()}]" if len(units) == 1 and "" not in units else " [units of each run's data]"
        svg = figures.curves(lines, xlabel, f"validation MAE{u}", integer_x=xlabel.startswith("epoch"),
                             from_zero=not xlabel.startswith("epoch"))
        parts.append(_section("sec-training", "Validation error against wall-clock time",
                              _figure("fig-cmp-val-vs-time", svg, "Every training phase of every run (label #k: phase).")))
    pts = [(lab, sections.sparsity_point(r), r) for lab, r in zip(labels, runs)]
    pts = [(lab, p, r) for lab, p, r in pts if p is not None]
    kinds = {(p[0], p[3], r.units) for _, p, r in pts}
    if len(pts) >= 2 and len(kinds) == 1:
        xlab, err, unit = kinds.pop()
        series: dict[str, list] = {}
        for lab, p, r in pts:
            series.setdefault(f"{r.metrics.get('data')} · {r.metrics.get('backbone')}", []).append((p[1], p[2]))
        svg = figures.accuracy_curve(series, f"{err}" + (f" [{unit}]" if unit and "MAE" in err else f" [({unit})²]" if unit else ""),
                                     xlab, point_labels={(p[1], p[2]): lab for lab, p, _ in pts})
        parts.append(_section("sec-accuracy", "Accuracy against sparsity",
                              _figure("fig-cmp-accuracy", svg, "Each run's chosen point, labelled #k.")))
    notes = [f"{lab}: {n}" for lab, r in zip(labels, runs) for n in r.notes]
    unfinished = [lab for lab, r in zip(labels, runs) if not r.finished]
    banner = (f'<div class="sp-banner" id="sp-unfinished">Unfinished runs: {_e(", ".join(unfinished))}</div>'
              if unfinished else "")
    return _page(f"sparsest report: {len(runs)} runs compared", " · ".join(r.name for r in runs), parts, banner, notes)


def write_comparison(run_dirs: list[str | Path], out_path: str | Path) -> Path:
    """Write one self-contained page comparing several run directories.

    Args:
        run_dirs: run directories (any mix of commands; finished or unfinished).
        out_path: the HTML file to write (its folder must exist).

    Returns:
        the path written.

    Raises:
        ConfigError: a path is not a run directory, or a finished run has no readable
            ``metrics.json`` (one line naming it).
        OSError: the page cannot be written.
    """
    return _write(Path(out_path), build_comparison([read_run(d) for d in run_dirs]))


__all__ = ["write_html_report", "write_comparison", "build_html", "build_comparison"]
