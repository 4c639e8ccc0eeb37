"""Run outputs: resolved config, metrics, sensor table, graph edges, importance map, Markdown
report; the HTML report of a run directory is :mod:`sparsest.report.html`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..data.core import SpatioTemporalData  # noqa: E402
from .sections import baseline_rows  # noqa: E402

if TYPE_CHECKING:  # torch only for the type: ``sparsest report`` reads files, it needs no torch
    from ..pruning.sensors.layout import SensorLayout


def sensor_ids(data: SpatioTemporalData, layout: SensorLayout) -> list[str]:
    """Ids of the N_s sensors: graph sensor ids, or ``r{row}c{col}`` patch names on grids."""
    if data.kind == "graph":
        return data.sensor_ids or [str(i) for i in range(layout.n_sensors)]
    pw = layout.patches[1]
    return [f"r{j // pw}c{j % pw}" for j in range(layout.n_sensors)]


def sensor_table(data: SpatioTemporalData, layout: SensorLayout, importance: np.ndarray, keep: np.ndarray):
    """Rows ``(sensor_id, latitude, longitude, importance, kept)`` for every sensor.

    Grid sensors are patches named ``r{row}c{col}`` with their centre coordinates.
    """
    import pandas as pd

    lat, lon = layout.sensor_coordinates(data.latitude, data.longitude)
    return pd.DataFrame({
        "sensor_id": sensor_ids(data, layout),
        "latitude": lat if lat is not None else np.nan,
        "longitude": lon if lon is not None else np.nan,
        "importance": importance,
        "kept": keep.astype(int),
    })


def edge_table(data: SpatioTemporalData, layout: SensorLayout):
    """Rows ``(source, target, weight)`` (sensor ids as in ``sensors.csv``) of every nonzero
    off-diagonal entry of a graph's adjacency; None for grids and graphs without one."""
    import pandas as pd

    if data.kind != "graph" or data.adjacency is None:
        return None
    a = np.asarray(data.adjacency)
    i, j = np.nonzero(a)
    off = i != j
    ids = np.asarray(sensor_ids(data, layout), dtype=object)
    return pd.DataFrame({"source": ids[i[off]], "target": ids[j[off]], "weight": a[i[off], j[off]].astype(float)})


def plot_importance(table, data: SpatioTemporalData, layout: SensorLayout, path: Path, title: str) -> None:
    """PNG map of sensor importance: lat/lon scatter (graphs) or a heat map (grids)."""
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    imp = table["importance"].to_numpy(float)
    kept = table["kept"].to_numpy(bool)
    if data.kind == "grid":
        field = imp[layout.pixel_to_sensor.numpy()]
        off = (~kept)[layout.pixel_to_sensor.numpy()]
        if data.latitude is not None and data.longitude is not None:
            extent = [data.longitude.min(), data.longitude.max(), data.latitude.min(), data.latitude.max()]
            origin = "upper" if data.latitude[0] > data.latitude[-1] else "lower"
        else:
            extent, origin = None, "upper"
        im = ax.imshow(np.ma.masked_where(off, field), cmap="viridis", extent=extent, origin=origin, aspect="auto")
        ax.imshow(np.ma.masked_where(~off, np.ones_like(field)), cmap="Greys", vmin=0, vmax=2.5, extent=extent, origin=origin, aspect="auto", alpha=0.8)
        ax.set_xlabel("longitude" if extent else "column")
        ax.set_ylabel("latitude" if extent else "row")
        fig.colorbar(im, ax=ax, label="importance |m| (grey: switched off)")
    else:
        has_xy = np.isfinite(table["longitude"].to_numpy(float)).all()
        x = table["longitude"].to_numpy(float) if has_xy else np.arange(len(table))
        y = table["latitude"].to_numpy(float) if has_xy else imp
        sc = ax.scatter(x[kept], y[kept], c=imp[kept], cmap="viridis", s=36, edgecolors="k", linewidths=0.3, label="kept")
        ax.scatter(x[~kept], y[~kept], c="red", marker="x", s=30, label="switched off")
        ax.set_xlabel("longitude" if has_xy else "sensor index")
        ax.set_ylabel("latitude" if has_xy else "importance |m|")
        fig.colorbar(sc, ax=ax, label="importance |m|")
        ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(m: dict) -> str:
    return f"{m['mae']:.4f} | {m['rmse']:.4f} | {m['mape']:.2f}"


def markdown_report(config, data: SpatioTemporalData, metrics: dict) -> str:
    """Short human-readable summary of a run."""
    u = data.units or "units of the data"
    rows = [
        *baseline_rows(metrics["baselines"]),
        (f"{config.backbone} dense", metrics["dense"]),
        (f"{config.backbone} + {config.scheme} (full field)", metrics["pruned"]),
        (f"{config.backbone} dense (kept sensors only)", metrics["dense_kept_only"]),
        (f"{config.backbone} + {config.scheme} (kept sensors only)", metrics["pruned_kept_only"]),
    ]
    lines = [
        f"# sparsest run: {data.name}, {config.backbone}, {config.scheme} at sensor sparsity {config.sensor_sparsity:g}",
        "",
        f"- data: {data.name} ({data.kind}), source `{data.source}`; window {metrics['window']} -> horizon {metrics['horizon']} steps",
        f"- sensors: {metrics['n_kept']} of {metrics['n_sensors']} kept (sensor sparsity {metrics['sensor_sparsity']:.3f})",
        f"- missing readings masked out of loss and metrics: {metrics['missing_readings']}",
        f"- seed {config.seed}; wall time {metrics['time_s']['total']:.1f} s",
        "",
        f"Test errors averaged over the horizon (MAE, RMSE in {u}; MAPE in %):",
        "",
        "| model | MAE | RMSE | MAPE |",
        "|---|---|---|---|",
        *[f"| {name} | {_fmt(m)} |" for name, m in rows],
        "",
        f"Full-field MAE change from dense: {metrics['mae_increase_pct']:+.2f}%.",
        "",
        "Switched-off sensors are still forecast (full field); masking alone saves no compute.",
        "See `sensors.csv` for the keep-set and `sensor_importance.png` for the map.",
        "",
    ]
    return "\n".join(lines)


def write_outputs(run_dir: Path, config, data: SpatioTemporalData, layout: SensorLayout, model, metrics: dict,
                  importance: np.ndarray | None = None) -> None:
    """Write ``sensors.csv``, ``graph_edges.csv`` (graphs with an adjacency),
    ``sensor_importance.png`` and ``report.md`` into ``run_dir``
    (``config.yaml`` and ``metrics.json`` are the run directory's own,
    :class:`sparsest.engine.run.RunDirectory`). ``config`` needs ``backbone``, ``scheme``
    and ``sensor_sparsity``; ``importance`` ``[N_s]`` replaces the learned |m| (e.g.
    ``sparsest plan``'s search scores)."""
    run_dir = Path(run_dir)
    keep = model.keep.cpu().numpy()
    if importance is None:
        importance = model.scores.detach().abs().cpu().numpy()
        if config.scheme == "random":
            importance = np.full_like(importance, np.nan)  # no scores were learned
    table = sensor_table(data, layout, importance, keep)
    table.to_csv(run_dir / "sensors.csv", index=False)
    edges = edge_table(data, layout)
    if edges is not None:
        edges.to_csv(run_dir / "graph_edges.csv", index=False)
    plot_importance(table, data, layout, run_dir / "sensor_importance.png",
                    f"{data.name}: {config.backbone} + {config.scheme}, {metrics['n_kept']}/{metrics['n_sensors']} sensors kept")
    (run_dir / "report.md").write_text(markdown_report(config, data, metrics))
