"""What ``sparsest plan`` writes and prints: ``metrics.json`` (its plan keys beside ``run``'s),
``plan.csv`` (the deployment plan), the plan section of ``report.md`` and the summary table.

``metrics.json`` of a plan holds every key of a ``run`` (``dense``, ``pruned``, ... on the
test split, ``baselines``, ``latency_ms``, ``gflops``, ``time_s``; ``scheme`` is the chosen
keep-set's: ``dynst``, ``qr`` or ``dense``) and:

- ``method``: ``"plan"``;
- ``budget``: ``metric``, ``max_increase``, ``dense_val`` (the dense model's validation
  error), ``threshold = (1 + max_increase) * dense_val`` and ``confidence`` (the budget is
  checked on each candidate's *budget error*, the upper ``confidence`` bound of its
  validation error, :mod:`.budget`; 0: the validation error itself);
- ``dense_val``: the dense model's validation metrics (``dense`` is its test metrics, as in ``run``);
  with ``--reference finetuned`` (default) "the dense model" in ``budget``, ``dense_val``,
  ``dense`` and the costs is the reference: the dense model fine-tuned with every sensor as
  a candidate's full fine-tuning;
- ``reference``: ``kind`` (``finetuned`` or ``dense``: the model the budget is against; ``dense``
  also when the fine-tuned copy validated worse than the dense model as trained),
  ``trained_val`` (the validation metrics of the dense model as trained), ``finetuned_val``
  (of the fine-tuned copy), ``seconds`` of its fine-tuning (also
  ``time_s.reference_finetune``) and ``epochs``;
- ``curve``: one point per checkpoint of the search (:func:`~.plan.search_curve`);
- ``chosen``: ``sparsity``, ``n_kept``, ``scheme``, ``val`` (validation error of the
  returned model), ``budget_error`` (its budget error, at most ``threshold``),
  ``val_checkpoint`` / ``budget_checkpoint`` (after the short fine-tuning, what the search
  checked), ``val_full_finetune`` / ``budget_full_finetune``, ``finetune`` (which weights
  were kept: the lower budget error), ``weights``
  (the file of those weights: ``checkpoints/pruned.ckpt`` or the checkpoint's), ``test``,
  ``dense_test``, ``test_increase`` and ``test_within_budget`` (the confirmation on the
  test split; it never changes the choice);
- ``stopped``: ``budget``, ``max_sparsity`` or why there was no checkpoint;
- ``composed`` (with ``--sample-pruning`` and / or ``--compress``): the savings of
  :func:`composed_savings`; ``compress``: the metrics of the ``--compress`` run (in
  ``compress/``); with ``--sample-pruning``, ``budget.dense_val``, ``dense_val`` and ``dense`` are the dense model trained on every
  window (the baseline, trained in the same run), ``time_s.dense_full_train`` its seconds;
- ``search_seconds``: wall-clock of the whole search, the sum of ``curve[].seconds`` (every
  checkpoint's search, short fine-tunings and evaluations, also those a resumed plan took
  from its first process); the dense training and the final fine-tuning are
  ``time_s.dense_train`` / ``time_s.finetune``, as in a ``run``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ...data.segments import hour_ranges
from .budget import budget_error


def plan_metrics(config, prep, base: dict, dense_val: dict, threshold: float, found: dict, chosen: dict) -> dict:
    """The plan's part of ``metrics.json`` (module doc), before the test split is read."""
    data, spec = prep.data, prep.spec
    return {"data": data.name, "backbone": config.backbone, "method": "plan", "scheme": chosen["scheme"], "seed": config.seed,
            "units": data.units, "window": spec.window, "horizon": spec.horizon, "missing_readings": prep.n_missing,
            "baselines": base,
            "budget": {"metric": config.metric, "max_increase": config.max_increase, "dense_val": float(dense_val[config.metric]),
                       "threshold": threshold, "confidence": config.confidence,
                       "val_hours_missing": prep.hours_missing("val")},
            "dense_val": dense_val, "curve": found["curve"], "chosen": chosen, "stopped": found["stopped"],
            "checkpoint_step": config.checkpoint_step, "checkpoint_finetune_epochs": config.checkpoint_finetune_epochs,
            "checkpoint_start": config.checkpoint_start,
            "max_sparsity": config.max_sparsity,
            "search_history": [{"action": "checkpoint", **{k: p[k] for k in ("k", "sparsity", "start", "swaps")}}
                               for p in found["curve"]]}


def composed_savings(config, metrics: dict, sample: dict | None = None, compressed: dict | None = None) -> dict:
    """``metrics.json`` ``composed`` of a plan with ``--sample-pruning`` and / or
    ``--compress``: each saving against its own baseline measured in the same run.

    - ``label``: what was composed (e.g. ``"st-prune + plan"``, ``"plan + Dyna-Pruner"``);
      ``metric``; ``dense_test``: the baseline's test error (the dense model; with
      ``--sample-pruning`` the one trained on every window);
    - ``training`` (``sample``: ``{"full": {"seconds", "val"}, "dense_s", "dense_val",
      "dense_test"}``): seconds of the dense training on every window (``full_data_s``) and
      on the sample-pruned windows (``sample_pruned_s``), ``ratio`` (pruned / full) and
      ``saving``; ``dense_full_data`` / ``dense_sample_pruned``: validation and test error
      of the two dense models, and the test increase of the second;
    - ``sensors``: ``n_sensors``, ``n_off``, ``fraction_off`` (against all);
    - ``inference``: per measured batch, GFLOPs per sample and latency (ms per forward) of
      the dense model and the returned one (with ``compressed``: the Dyna-Pruner model
      against the dense backbone measured beside it,
      :func:`~.plan_compress.compress_savings`), with their ratios;
    - ``compress`` (``compressed``: the compress run's metrics): its settings and test errors;
    - ``all_together_test`` and ``accuracy_cost``: the test error of the final model (the
      plan's, or the Dyna-Pruner model on its kept sensors) and its increase over ``dense_test``.
    """
    from .plan_compress import compress_savings

    m, c = config.metric, metrics["chosen"]
    ref_test = float(metrics["dense"][m])
    parts = ([config.sample_pruning] if sample else []) + ["plan"] + (["Dyna-Pruner"] if compressed else [])
    out = {"label": " + ".join(parts), "metric": m, "sample_pruning": config.sample_pruning, "dense_test": ref_test,
           "sensors": {"n_sensors": metrics["n_sensors"], "n_off": metrics["n_sensors"] - metrics["n_kept"],
                       "fraction_off": metrics["sensor_sparsity"]},
           "inference": [{"batch": k["batch"], "gflops_dense": k["gflops_dense"], "gflops_pruned": k["gflops_pruned"],
                          "flops_ratio": k["flops_ratio"], "latency_ms_dense": k["latency_ms_dense"],
                          "latency_ms_pruned": k["latency_ms_pruned"], "speedup": k["speedup"]} for k in metrics["costs"]],
           "all_together_test": c["test"], "accuracy_cost": c["test"] / ref_test - 1.0}
    if sample:
        full, dense_s, dense_test = sample["full"], sample["dense_s"], sample["dense_test"]
        out.update({"prune_ratio": config.prune_ratio,
                    "training": {"full_data_s": full["seconds"], "sample_pruned_s": dense_s,
                                 "ratio": dense_s / full["seconds"], "saving": 1.0 - dense_s / full["seconds"]},
                    "dense_full_data": {"val": float(full["val"][m]), "test": ref_test},
                    "dense_sample_pruned": {"val": float(sample["dense_val"][m]), "test": float(dense_test[m]),
                                            "test_increase": float(dense_test[m]) / ref_test - 1.0}})
    if compressed:
        out.update(compress_savings(metrics, compressed, m))
    return out


def composed_table(metrics: dict) -> str:
    """The composed savings of :func:`composed_savings` as Markdown lines (printed and in ``report.md``)."""
    k = metrics["composed"]
    s, m = k["sensors"], k["metric"]
    lines = [f"| saving | baseline (measured in this run) | with {k['label']} | change |", "|---|---|---|---|"]
    if "training" in k:
        t, sp = k["training"], k["dense_sample_pruned"]
        lines += [f"| dense training time | {t['full_data_s']:.0f} s (every window) | {t['sample_pruned_s']:.0f} s "
                  f"(R={k['prune_ratio']:g}) | x{t['ratio']:.2f} |",
                  f"| dense model test {m} | {k['dense_test']:.4f} | {sp['test']:.4f} | {100 * sp['test_increase']:+.2f}% |"]
    lines.append(f"| sensors | {s['n_sensors']} | {s['n_sensors'] - s['n_off']} kept ({s['n_off']} off) | "
                 f"-{100 * s['fraction_off']:.1f}% |")
    if "compress" in k:
        cp = k["compress"]
        for label, v in (("the plan's kept-sensor model", metrics["chosen"]["test"]),
                         ("dense backbone retrained on the kept sensors (compress run)", cp["test_dense_kept"])):
            lines.append(f"| test {m}, {label} | {k['dense_test']:.4f} | {v:.4f} | {100 * (v / k['dense_test'] - 1):+.2f}% |")
    for i in k["inference"]:
        lines += [f"| GFLOPs per sample (batch {i['batch']}) | {i['gflops_dense']:.4g} | {i['gflops_pruned']:.4g} | "
                  f"x{i['flops_ratio']:.2f} fewer |",
                  f"| latency batch {i['batch']} (ms per forward) | {i['latency_ms_dense']:.2f} | {i['latency_ms_pruned']:.2f} | "
                  f"x{i['speedup']:.2f} faster |"]
    lines.append(f"| test {m}, all together | {k['dense_test']:.4f} | {k['all_together_test']:.4f} | "
                 f"{100 * k['accuracy_cost']:+.2f}% |")
    return "\n".join(lines)


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


def _ref_finetuned(m: dict) -> bool:
    """Whether the plan's budget is against the fine-tuned reference (``--reference finetuned``)."""
    return (m.get("reference") or {}).get("kind") == "finetuned"


def _ref_words(m: dict) -> str:
    """`` (fine-tuned N epochs, as trained V)`` for a plan whose reference was fine-tuned; `` (as trained: its
    copy ... validated worse, V)`` where the fine-tuned copy was worse than the dense model as trained."""
    r = m.get("reference") or {}
    if not _ref_finetuned(m):
        if "finetuned_val" in r:  # --reference finetuned, but the copy validated worse: the dense model as trained
            return (f" (as trained: its copy fine-tuned {r['epochs']} epochs with every sensor validated worse, "
                    f"{r['finetuned_val'][m['budget']['metric']]:.4f})")
        return ""
    return (f" (fine-tuned {r['epochs']} epochs with every sensor, as each candidate; as trained "
            f"{r['trained_val'][m['budget']['metric']]:.4f})")


def plan_markdown(m: dict) -> str:
    """The plan section of ``report.md``: budget, curve, chosen keep-set, test confirmation."""
    b, c, key = m["budget"], m["chosen"], f"val_{m['budget']['metric']}"
    conf = float(b.get("confidence", 0))
    checked = (f"its upper {100 * conf:g}% confidence bound (budget error)" if conf else "the validation error itself")
    lines = ["## Plan: the largest sensor sparsity within the budget", "",
             f"Budget: validation {b['metric']} at most {100 * b['max_increase']:g}% over the dense model's"
             f"{_ref_words(m)} {b['dense_val']:.4f}, i.e. <= {b['threshold']:.4f}, checked on {checked}. Search stopped: {m['stopped']}."
             + (f" No validation window ends at {hour_ranges(b['val_hours_missing'])}: the budget cannot see those hours of "
                "the day (`--split`)." if b.get("val_hours_missing") else ""), "",
             f"| sparsity | kept | val {b['metric']} (dynst) | val {b['metric']} (QR) | budget error | within budget | seconds |",
             "|---|---|---|---|---|---|---|",
             *[f"| {p['sparsity']:.3f} | {p['n_kept']} | {p[key]:.4f} | {p[key + '_qr']:.4f} | {budget_error(p, key):.4f} | "
               f"{'yes' if p['within_budget'] else 'no'} | {p['seconds']:.1f} |" for p in m["curve"]], "",
             f"Chosen: sensor sparsity {c['sparsity']:.3f} ({c['n_kept']} of {m['n_sensors']} kept, {c['scheme']}); "
             f"validation {b['metric']} {c['val']:.4f} (budget error {c.get('budget_error', c['val']):.4f}); test {b['metric']} {c['test']:.4f} against dense "
             f"{c['dense_test']:.4f} ({100 * c['test_increase']:+.2f}%, "
             f"{'within' if c['test_within_budget'] else 'over'} the budget on test). "
             f"Search {m['search_seconds']:.1f} s. The deployment plan is `plan.csv`; the model `deploy/`.", ""]
    if "composed" in m:
        k = m["composed"]
        lines += [f"### {k['label']}: each saving against its baseline in this run", "", composed_table(m), ""]
        if "training" in k:
            lines += ["The budget and the test confirmation are against the dense model trained on every window.", ""]
        if "compress" in k:
            lines += [f"Dyna-Pruner ({k['compress']['reading']}, s_d = {k['compress']['data_sparsity']:g}) ran on the "
                      f"kept sensors' inputs from the plan's weights: its run is `{k['compress']['run_dir']}/` (rows "
                      "dense, Dyna-Pruner, MP, random; its own report). GFLOPs and latency are against the dense backbone "
                      "measured beside it there.", ""]
    return "\n".join(lines)


def summary(m: dict, console, run_dir) -> None:
    """The plan's table (one row per checkpoint) and the chosen point, printed."""
    from rich.table import Table

    b, c, key = m["budget"], m["chosen"], f"val_{m['budget']['metric']}"
    t = Table(title=f"{m['data']} · {m['backbone']} · plan: validation {b['metric']} at most +{100 * b['max_increase']:g}% "
                    f"(<= {b['threshold']:.4f}; dense{' fine-tuned' if _ref_finetuned(m) else ''} "
                    f"{b['dense_val']:.4f})")
    for col in ("sensor sparsity", "kept", f"val {b['metric']} dynst", f"val {b['metric']} QR", "budget error", "within budget"):
        t.add_column(col, justify="right")
    for p in m["curve"]:
        t.add_row(f"{p['sparsity']:.3f}", str(p["n_kept"]), f"{p[key]:.4f}", f"{p[key + '_qr']:.4f}", f"{budget_error(p, key):.4f}",
                  "yes" if p["within_budget"] else "[red]no[/]")
    console.print(t)
    if c["scheme"] == "dense":
        console.print("chosen: every sensor (sensor sparsity 0): no checkpoint of the search was within the budget")
    else:
        console.print(f"chosen: sensor sparsity {c['sparsity']:.3f}, {c['n_kept']}/{m['n_sensors']} sensors kept "
                      f"({c['scheme']} keep-set), validation {b['metric']} {c['val']:.4f}, budget error "
                      f"{c.get('budget_error', c['val']):.4f} <= {b['threshold']:.4f}")
    console.print(f"test {b['metric']} {c['test']:.4f} vs dense {c['dense_test']:.4f} ({100 * c['test_increase']:+.2f}%, "
                  f"{'within' if c['test_within_budget'] else 'over'} the budget on test)   search {m['search_seconds']:.1f} s, "
                  f"total {m['time_s']['total']:.0f} s")
    console.print(f"deployment plan: {Path(run_dir) / 'plan.csv'}   model: {Path(run_dir) / 'deploy'}")
    console.print(f"run directory: {run_dir}")


__all__ = ["plan_metrics", "composed_savings", "composed_table", "confirm_on_test", "search_scores", "write_plan_outputs", "plan_markdown", "summary"]
