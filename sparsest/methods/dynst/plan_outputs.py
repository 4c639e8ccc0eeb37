"""What ``sparsest plan`` writes and prints: ``metrics.json`` (its plan keys beside ``run``'s),
``plan.csv`` (the deployment plan), the plan section of ``report.md`` and the summary table.

``metrics.json`` of a plan holds every key of a ``run`` (``dense``, ``pruned``, ... on the
test split, ``baselines``, ``latency_ms``, ``gflops``, ``time_s``; ``scheme`` is the chosen
keep-set's: ``dynst``, ``qr`` or ``dense``) and:

- ``method``: ``"plan"``;
- ``budget``: ``metric``, ``max_increase``, ``dense_val`` (the dense model's validation
  error) and ``threshold = (1 + max_increase) * dense_val``;
- ``dense_val``: the dense model's validation metrics (``dense`` is its test metrics, as in ``run``);
- ``curve``: one point per checkpoint of the search (:func:`~.plan.search_curve`);
- ``chosen``: ``sparsity``, ``n_kept``, ``scheme``, ``val`` (validation error of the
  returned model), ``val_checkpoint`` (after the short fine-tuning, what the budget was
  checked on), ``val_full_finetune``, ``finetune`` (which weights were kept), ``test``,
  ``dense_test``, ``test_increase`` and ``test_within_budget`` (the confirmation on the
  test split; it never changes the choice);
- ``stopped``: ``budget``, ``max_sparsity`` or why there was no checkpoint;
- ``search_seconds``: wall-clock of the whole search, the sum of ``curve[].seconds`` (every
  checkpoint's search, short fine-tunings and evaluations, also those a resumed plan took
  from its first process); the dense training and the final fine-tuning are
  ``time_s.dense_train`` / ``time_s.finetune``, as in a ``run``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np


def plan_metrics(config, prep, base: dict, dense_val: dict, threshold: float, found: dict, chosen: dict) -> dict:
    """The plan's part of ``metrics.json`` (module doc), before the test split is read."""
    data, spec = prep.data, prep.spec
    return {"data": data.name, "backbone": config.backbone, "method": "plan", "scheme": chosen["scheme"], "seed": config.seed,
            "units": data.units, "window": spec.window, "horizon": spec.horizon, "missing_readings": prep.n_missing,
            "baselines": base,
            "budget": {"metric": config.metric, "max_increase": config.max_increase, "dense_val": float(dense_val[config.metric]),
                       "threshold": threshold},
            "dense_val": dense_val, "curve": found["curve"], "chosen": chosen, "stopped": found["stopped"],
            "checkpoint_step": config.checkpoint_step, "checkpoint_finetune_epochs": config.checkpoint_finetune_epochs,
            "max_sparsity": config.max_sparsity,
            "search_history": [{"action": "checkpoint", **{k: p[k] for k in ("k", "sparsity", "start", "swaps")}}
                               for p in found["curve"]]}


def confirm_on_test(metrics: dict, config) -> None:
    """``chosen.test``, ``dense_test``, ``test_increase``, ``test_within_budget`` and
    ``mae_increase_pct`` from the test metrics (``pruned``, ``dense``) in ``metrics``."""
    c, m = metrics["chosen"], config.metric
    c["test"], c["dense_test"] = float(metrics["pruned"][m]), float(metrics["dense"][m])
    c["test_increase"] = c["test"] / c["dense_test"] - 1.0 if c["dense_test"] > 0 else float("nan")
    c["test_within_budget"] = bool(c["test_increase"] <= config.max_increase)
    metrics["mae_increase_pct"] = 100.0 * (metrics["pruned"]["mae"] / metrics["dense"]["mae"] - 1.0)


def search_scores(found: dict, n_sensors: int) -> np.ndarray:
    """Per sensor, the share of the search's checkpoints whose keep-set keeps it (1: kept at
    every checkpoint; sensors the search switched off early score low); 1 for every sensor
    when there was no checkpoint."""
    keeps = [kd for kd, _ in found["keeps"]]
    if not keeps:
        return np.ones(n_sensors)
    return np.mean(np.stack(keeps).astype(float), axis=0)


def write_plan_outputs(run_dir: Path, config, data, layout, pruned, metrics: dict, found: dict) -> None:
    """``plan.csv`` (``sensor_id, latitude, longitude, score, kept``), and what a ``run``
    writes (``sensors.csv`` with the score as importance, ``graph_edges.csv``,
    ``sensor_importance.png``, ``report.md`` with the plan's section)."""
    from ...report import sensor_table, write_outputs

    run_dir = Path(run_dir)
    scores = search_scores(found, layout.n_sensors)
    as_run = SimpleNamespace(backbone=config.backbone, seed=config.seed, scheme=f"plan ({metrics['scheme']})",
                             sensor_sparsity=metrics["sensor_sparsity"])
    write_outputs(run_dir, as_run, data, layout, pruned, metrics, importance=scores)
    table = sensor_table(data, layout, scores, pruned.keep.cpu().numpy()).rename(columns={"importance": "score"})
    table.to_csv(run_dir / "plan.csv", index=False)
    with open(run_dir / "report.md", "a") as f:
        f.write("\n" + plan_markdown(metrics))


def plan_markdown(m: dict) -> str:
    """The plan section of ``report.md``: budget, curve, chosen keep-set, test confirmation."""
    b, c, key = m["budget"], m["chosen"], f"val_{m['budget']['metric']}"
    lines = ["## Plan: the largest sensor sparsity within the budget", "",
             f"Budget: validation {b['metric']} at most {100 * b['max_increase']:g}% over the dense model's "
             f"{b['dense_val']:.4f}, i.e. <= {b['threshold']:.4f}. Search stopped: {m['stopped']}.", "",
             f"| sparsity | kept | val {b['metric']} (dynst) | val {b['metric']} (QR) | within budget | seconds |",
             "|---|---|---|---|---|---|",
             *[f"| {p['sparsity']:.3f} | {p['n_kept']} | {p[key]:.4f} | {p[key + '_qr']:.4f} | "
               f"{'yes' if p['within_budget'] else 'no'} | {p['seconds']:.1f} |" for p in m["curve"]], "",
             f"Chosen: sensor sparsity {c['sparsity']:.3f} ({c['n_kept']} of {m['n_sensors']} kept, {c['scheme']}); "
             f"validation {b['metric']} {c['val']:.4f}; test {b['metric']} {c['test']:.4f} against dense "
             f"{c['dense_test']:.4f} ({100 * c['test_increase']:+.2f}%, "
             f"{'within' if c['test_within_budget'] else 'over'} the budget on test). "
             f"Search {m['search_seconds']:.1f} s. The deployment plan is `plan.csv`; the model `deploy/`.", ""]
    return "\n".join(lines)


def summary(m: dict, console, run_dir) -> None:
    """The plan's table (one row per checkpoint) and the chosen point, printed."""
    from rich.table import Table

    b, c, key = m["budget"], m["chosen"], f"val_{m['budget']['metric']}"
    t = Table(title=f"{m['data']} · {m['backbone']} · plan: validation {b['metric']} at most +{100 * b['max_increase']:g}% "
                    f"(<= {b['threshold']:.4f}; dense {b['dense_val']:.4f})")
    for col in ("sensor sparsity", "kept", f"val {b['metric']} dynst", f"val {b['metric']} QR", "within budget"):
        t.add_column(col, justify="right")
    for p in m["curve"]:
        t.add_row(f"{p['sparsity']:.3f}", str(p["n_kept"]), f"{p[key]:.4f}", f"{p[key + '_qr']:.4f}",
                  "yes" if p["within_budget"] else "[red]no[/]")
    console.print(t)
    if c["scheme"] == "dense":
        console.print("chosen: every sensor (sensor sparsity 0): no checkpoint of the search was within the budget")
    else:
        console.print(f"chosen: sensor sparsity {c['sparsity']:.3f}, {c['n_kept']}/{m['n_sensors']} sensors kept "
                      f"({c['scheme']} keep-set), validation {b['metric']} {c['val']:.4f} <= {b['threshold']:.4f}")
    console.print(f"test {b['metric']} {c['test']:.4f} vs dense {c['dense_test']:.4f} ({100 * c['test_increase']:+.2f}%, "
                  f"{'within' if c['test_within_budget'] else 'over'} the budget on test)   search {m['search_seconds']:.1f} s, "
                  f"total {m['time_s']['total']:.0f} s")
    console.print(f"deployment plan: {Path(run_dir) / 'plan.csv'}   model: {Path(run_dir) / 'deploy'}")
    console.print(f"run directory: {run_dir}")


__all__ = ["plan_metrics", "confirm_on_test", "search_scores", "write_plan_outputs", "plan_markdown", "summary"]
