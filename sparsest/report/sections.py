"""What each command's run shows in the HTML report: the summary facts, the error table,
the accuracy-against-sparsity points, the per-horizon errors and the cost bars, read from
``metrics.json`` (:class:`~sparsest.report.rundir.RunFiles`). No HTML and no figures here:
plain rows and numbers that :mod:`sparsest.report.html` lays out.
"""

from __future__ import annotations

import math

from ..data.segments import missed_hours
from ..methods.dynst.budget import budget_error
from .rundir import RunFiles

COMMANDS = {"run": "sparsest run (DynST sensor pruning)",
            "plan": "sparsest plan (the largest sensor sparsity within an error budget)", "train": "sparsest train (sample pruning)",
            "compress": "sparsest compress (Dyna-Pruner)", "study": "Dyna-Pruner study (Tables III/IV)", "unknown": "sparsest run directory"}


def num(v, nd: int = 4) -> str:
    """``v`` with ``nd`` significant digits; ``—`` for None / NaN / non-numbers."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "—" if v is None else str(v)
    if not math.isfinite(x):
        return "—"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{nd - 1}e}"
    return f"{x:.{nd}g}" if abs(x) < 10 ** nd else f"{x:.0f}"


DYNST = ("run", "plan")
"""Kinds whose ``metrics.json`` has ``sparsest run``'s keys (``plan`` adds its own)."""


def _u(run: RunFiles) -> str:
    return f" {run.units}" if run.units else ""


def _sq(run: RunFiles) -> str:
    return f" ({run.units})²" if run.units else ""


# ----------------------------------------------------------------------------- summary facts


def base_facts(run: RunFiles) -> list[tuple[str, str]]:
    """The summary rows every run has: command, data, backbone, seed."""
    m, c = run.metrics, run.config
    return [("command", COMMANDS[run.kind]), ("data", str(m.get("data", c.get("data", "?")))),
            ("backbone", str(m.get("backbone", c.get("backbone", "?")))), ("seed", str(m.get("seed", c.get("seed", "?"))))]


def facts(run: RunFiles) -> list[tuple[str, str]]:
    """The command's own ``(label, value)`` rows of the summary, values with their units
    (after :func:`base_facts`)."""
    m = run.metrics
    rows = []
    if "window" in m:
        rows.append(("window → horizon", f"{m['window']} → {m['horizon']} time steps"))
    if run.kind in DYNST and "n_kept" in m:
        if run.kind == "plan":
            rows += plan_facts(run)
        else:
            rows += [("scheme", str(m["scheme"])),
                     ("sensors kept", f"{m['n_kept']} of {m['n_sensors']} (sensor sparsity {num(m['sensor_sparsity'], 3)}, "
                                      f"budget {num(m.get('target_sensor_sparsity'), 3)})")]
        rows += [("full-field MAE change from dense", f"{float(m['mae_increase_pct']):+.2f} %"),
                 ("missing readings masked out", str(m.get("missing_readings", "—")))]
        if "latency_ms" in m:
            lat, gf = m["latency_ms"], m["gflops"]
            rows.append((f"latency at batch {lat['batch']}", f"{num(lat['dense'])} → {num(lat['pruned'])} ms "
                         f"(×{num(lat['speedup'], 3)} speed-up)"))
            rows.append(("GFLOPs per window", f"{num(gf['dense'])} → {num(gf['pruned'])}"))
            rows.append(("runs on the kept sensors only", "yes" if m.get("runs_on_kept_sensors_only") else
                         "no (masked full input: no compute saving)"))
        t = m.get("time_s", {})
        rows.append(("wall time", f"{num(t.get('total'))} s (dense {num(t.get('dense_train'))} s, search {num(t.get('search'))} s, "
                     f"fine-tune {num(t.get('finetune'))} s)"))
    elif run.kind == "train" and "test" in m:
        sp = m["sample_pruning"]
        rows += [("sample pruning", sp + (f" (R = {m['prune_ratio']:g} of the windows skipped)" if sp != "none" else "")),
                 ("best validation MAE", f"{num(m.get('best_val_mae'))}{_u(run)}"),
                 ("epochs", f"{m.get('epochs')} ({m.get('n_train_windows')} training windows, {m.get('samples_seen')} seen)"),
                 ("fit time", f"{num(m.get('train_time_s'))} s, mean epoch "
                              f"{num(sum(m['epoch_time_s']) / max(1, len(m['epoch_time_s'])))} s"),
                 ("scoring + selection overhead", f"{num(m.get('overhead', {}).get('overhead_pct'), 3)} % of step time"),
                 ("machine", str(m.get("machine", "—")))]
    elif run.kind == "compress" and "mse" in m:
        rows += [("data sparsity s_d / model sparsity s_w", f"{m['data_sparsity']} / {m['model_sparsity']}"),
                 ("reading, fill", f"{m.get('reading', '—')}, {m.get('fill', '—')}"),
                 ("epochs", f"{m.get('pretrain_epochs')} pre-training + {m.get('epochs')} per row"),
                 ("test MSE change from dense", f"{float(m['mse_increase_pct']):+.2f} %"),
                 ("measured model sparsity", f"mean {num(m.get('model_sparsity_measured', {}).get('mean'), 3)}"),
                 ("GFLOPs per window", f"{num(m['gflops']['dense'])} → {num(m['gflops']['pruned'])}"),
                 ("latency, batch 1", f"{num(m['latency_ms_b1']['dense'])} → {num(m['latency_ms_b1']['pruned'])} ms per window"),
                 ("wall time", f"{num(m.get('time_s', {}).get('total'))} s")]
        cp = m.get("compaction", {})
        if cp:
            rows.append(("compaction", f"{cp.get('removed')} of {cp.get('total')} units removed"))
    elif run.kind == "study" and "rows" in m:
        d = m.get("default", {})
        rows += [("rows", str(len(m["rows"]))), ("default s_d / s_w", f"{d.get('data_sparsity')} / {d.get('model_sparsity')}"),
                 ("epochs", f"{m.get('pretrain_epochs')} pre-training + {m.get('epochs')} per row"),
                 ("wall time", f"{num(m.get('time_s', {}).get('total'))} s")]
    if run.metrics.get("resumed"):
        rows.append(("resumed", "yes (continued with --resume)"))
    return rows


def plan_facts(run: RunFiles) -> list[tuple[str, str]]:
    """The summary rows of a ``plan``: budget, chosen keep-set, its validation and test
    errors, where the search stopped."""
    m, u = run.metrics, _u(run)
    b, c = m["budget"], m["chosen"]
    err = f"validation {b['metric']}"
    unit = _sq(run) if b["metric"] == "mse" else u
    chosen = ("every sensor (no checkpoint within the budget)" if c["scheme"] == "dense"
              else f"the {c['scheme']} keep-set at sensor sparsity {num(c['sparsity'], 3)}")
    return [("budget", f"{err} at most +{num(100 * float(b['max_increase']), 3)} % over the dense model's "
                       f"{num(b['dense_val'])}{unit}: ≤ {num(b['threshold'])}{unit}"),
            ("chosen", chosen),
            ("sensors kept", f"{m['n_kept']} of {m['n_sensors']} (sensor sparsity {num(m['sensor_sparsity'], 3)})"),
            (f"chosen {err}", f"{num(c['val'])}{unit} (fine-tuning kept: {c.get('finetune', '—')})"
                              + (f"; budget error (upper {num(100 * float(b['confidence']), 3)} % bound) "
                                 f"{num(c['budget_error'])}{unit}" if b.get("confidence") and "budget_error" in c else "")),
            (f"test {b['metric']}, chosen vs dense", f"{num(c['test'])} vs {num(c['dense_test'])}{unit} "
                                                       f"({100 * float(c['test_increase']):+.2f} %, "
                                                       f"{'within' if c['test_within_budget'] else 'over'} the budget on test)"),
            ("search", f"{len(m['curve'])} checkpoints every {num(m.get('checkpoint_step'), 3)} of sensor sparsity, "
                       f"stopped: {m['stopped']}; {num(m['search_seconds'])} s")] + _hours_fact(b) + composed_facts(m, unit)


def _hours_fact(b: dict) -> list[tuple[str, str]]:
    """A row naming the hours of the day no validation window ends at (the budget cannot see them), if any."""
    missing = b.get("val_hours_missing") or []
    if not missing:
        return []
    return [("validation misses", f"{missed_hours(missing)} (--split)")]


def composed_facts(m: dict, unit: str) -> list[tuple[str, str]]:
    """A plan with ``--sample-pruning`` and / or ``--compress``: each saving against its
    baseline measured in the same run (training time, sensors, GFLOPs and latency, accuracy
    of all together); none otherwise."""
    k = m.get("composed")
    if not k:
        return []
    rows = []
    ref = k.get("dense_test", (k.get("dense_full_data") or {}).get("test"))  # runs before --compress have no dense_test
    if "training" in k:
        t, sp = k["training"], k["dense_sample_pruned"]
        rows.append((f"training time ({k['sample_pruning']}, R = {num(k['prune_ratio'], 3)})",
                     f"dense training {num(t['sample_pruned_s'])} s vs {num(t['full_data_s'])} s on every window "
                     f"(x{num(t['ratio'], 3)}); its test {k['metric']} {num(sp['test'])} vs {num(ref)}{unit} "
                     f"({100 * float(sp['test_increase']):+.2f} %)"))
    rows.append(("sensors switched off", f"{k['sensors']['n_off']} of {k['sensors']['n_sensors']}"))
    if "compress" in k:
        cp = k["compress"]
        rows.append(("Dyna-Pruner on the kept sensors", f"{cp['reading']}, s_d = {num(cp['data_sparsity'], 3)}; run "
                     f"{cp['run_dir']}/; test {k['metric']} of the dense backbone on the kept sensors {num(cp['test_dense_kept'])}{unit}"))
    rows += [(f"inference, batch {i['batch']}", f"GFLOPs per sample {num(i['gflops_pruned'])} vs {num(i['gflops_dense'])} "
              f"(x{num(i['flops_ratio'], 3)} fewer), latency {num(i['latency_ms_pruned'])} vs {num(i['latency_ms_dense'])} ms "
              f"(x{num(i['speedup'], 3)} faster)") for i in k["inference"]]
    rows.append((f"test {k['metric']}, all together ({k.get('label', 'plan')})",
                 f"{num(k.get('all_together_test', m['chosen']['test']))}{unit}: {100 * float(k['accuracy_cost']):+.2f} % "
                 "against the dense model" + (" trained on every window" if "training" in k else "")))
    return rows


BASELINE_LABELS = (("persistence", "persistence"), ("historical_average", "historical average"),
                   ("extrapolation", "extrapolation (optical flow)"), ("lower_bound", "lower bound everywhere (no rain)"))
"""``metrics.json`` ``baselines`` key -> the label of its row, in table order."""


def baseline_rows(baselines: dict) -> list[tuple[str, dict]]:
    """``(label, metrics)`` of the reference forecasts present in ``baselines`` (a run's
    ``metrics.json`` ``baselines``), in :data:`BASELINE_LABELS` order; absent ones are skipped
    (graph data has no extrapolation, unbounded data no lower bound, older runs neither)."""
    return [(label, baselines[k]) for k, label in BASELINE_LABELS if baselines.get(k)]


def error_table(run: RunFiles) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows of the test-error table (physical units in the header)."""
    m, u = run.metrics, run.units or "units of the data"
    base = baseline_rows(m.get("baselines", {}))
    if run.kind in ("run", "plan", "train"):
        if run.kind in DYNST:
            s = m["scheme"]
            models = [(f"{m['backbone']} dense", m["dense"]), (f"+ {s} (full field)", m["pruned"]),
                      (f"{m['backbone']} dense (kept sensors only)", m.get("dense_kept_only")),
                      (f"+ {s} (kept sensors only)", m.get("pruned_kept_only")),
                      (f"+ {s} (switched-off sensors only)", m.get("pruned_switched_off_only"))]
        else:
            models = [(f"{m['backbone']} ({m['sample_pruning']})", m["test"])]
        rows = [[name, num(e.get("mae")), num(e.get("rmse")), num(e.get("mape"), 3)] for name, e in base + models if e]
        return [f"model (test split)", f"MAE [{u}]", f"RMSE [{u}]", "MAPE [%]"], rows
    if run.kind == "compress":
        mse, mae, gf, b1, b64 = m["mse"], m["mae"], m.get("gflops", {}), m.get("latency_ms_b1", {}), m.get("latency_ms_b64", {})
        rows = [[name, num(e.get("mse")), num(e.get("mae")), "", "", ""] for name, e in base if e]
        rows.append([f"{m['backbone']} dense", num(mse["dense"]), num(mae["dense"]), num(gf.get("dense")), num(b1.get("dense")),
                     num(b64.get("dense"))])
        rows.append(["Dyna-Pruner (gated)", num(mse["pruned"]), num(mae["pruned"]), num(gf.get("pruned")), num(b1.get("pruned")), ""])
        rows.append(["Dyna-Pruner (compact model)", num(mse.get("compact")), num(mae.get("compact")), num(gf.get("compact_b64")), "",
                     num(b64.get("pruned"))])
        for key, label in [("mp", "MP (static L1 channels)"), ("random", "random masks")] + \
                [(k, f"Dyna-Pruner, reading {k[5:]}") for k in m if k.startswith("dyna:")]:
            if isinstance(m.get(key), dict):
                e = m[key]
                rows.append([label, num(e.get("mse")), num(e.get("mae")), num(e.get("gflops")), num(e.get("latency_ms_b1")),
                             num(e.get("latency_ms_b64"))])
        return ["model (test split)", f"MSE [({u})²]", f"MAE [{u}]", "GFLOPs / window", "latency b1 [ms / window]",
                "latency b64 [ms / batch]"], rows
    if run.kind == "study":
        rows = [[k, str(r.get("kind")), num(r.get("data_sparsity"), 2), num(r.get("model_sparsity"), 2), num(r.get("mse")),
                 num(r.get("mae")), num(r.get("gflops")), num(r.get("latency_ms_b1"))] for k, r in m["rows"].items()]
        return ["row", "kind", "s_d", "s_w", f"MSE [({u})²]", f"MAE [{u}]", "GFLOPs / window", "latency b1 [ms / window]"], rows
    return None


def robustness_table(run: RunFiles) -> tuple[list[str], list[list[str]]] | None:
    """Dyna-Pruner's test MSE under input noise and mask failure (compress runs)."""
    rob = run.metrics.get("robustness")
    if run.kind != "compress" or not isinstance(rob, dict) or not rob:
        return None
    cols = list(next(iter(rob.values())))
    label = {"clean": "clean"} | {c: c.replace("noise_", "noise σ=").replace("mask_failure_", "mask failure ") for c in cols}
    return ["model"] + [f"{label[c]} MSE [({run.units})²]" if run.units else label[c] for c in cols], \
        [[name] + [num(row.get(c)) for c in cols] for name, row in rob.items()]


# ----------------------------------------------------------------------------- figure data


def accuracy_points(run: RunFiles) -> dict | None:
    """Arguments of :func:`~sparsest.report.figures.accuracy_curve`, or None when the run
    has no accuracy-against-sparsity relation (``train``, an unfinished run)."""
    m, u = run.metrics, _u(run).strip()
    unit = f" [{u}]" if u else ""
    if run.kind == "plan" and m.get("curve") is not None and "budget" in m:
        return plan_points(run)
    if run.kind == "run" and "pruned" in m:
        b = m.get("baselines", {})
        s, chosen = float(m["sensor_sparsity"]), float(m["pruned"]["mae"])
        return {"series": {f"{m['backbone']} + {m['scheme']} (full field)": [(0.0, m["dense"]["mae"]), (s, chosen)]},
                "chosen": (f"chosen keep-set: {m['n_kept']}/{m['n_sensors']} sensors", s, chosen),
                "budget": m.get("target_sensor_sparsity"), "budget_label": "budget: target sensor sparsity",
                "hlines": {k.replace("_", " "): v["mae"] for k, v in b.items() if isinstance(v, dict) and "mae" in v},
                "xlabel": "sensor sparsity (share of sensors switched off)", "ylabel": f"test MAE{unit}"}
    if run.kind == "compress" and "mse" in m:
        gf = m["gflops"]
        dense = float(gf["dense"])

        def saved(g):
            return 1 - float(g) / dense if g is not None and dense > 0 else math.nan
        pts = {"dense": (0.0, m["mse"]["dense"])}
        chosen = ("Dyna-Pruner (chosen)", saved(gf["pruned"]), m["mse"]["pruned"])
        for key in ["mp", "random"] + [k for k in m if k.startswith("dyna:")]:
            if isinstance(m.get(key), dict):
                pts[key] = (saved(m[key].get("gflops")), m[key].get("mse"))
        labels = {p: k for k, p in pts.items()}
        return {"series": {"dense → Dyna-Pruner": [pts["dense"], chosen[1:]],
                           "baselines at the same budget": [p for k, p in pts.items() if k != "dense"]},
                "chosen": chosen, "budget": None, "hlines": {}, "point_labels": labels, "scatter": ("baselines at the same budget",),
                "xlabel": f"compute saved, 1 − GFLOPs / dense GFLOPs (s_d {m['data_sparsity']}, s_w {m['model_sparsity']})",
                "ylabel": f"test MSE [({u})²]" if u else "test MSE"}
    if run.kind == "study" and "rows" in m:
        rows = m["rows"]
        dense = next((r for r in rows.values() if r.get("kind") == "dense"), None)
        if not dense or not dense.get("gflops"):
            return None
        base = float(dense["gflops"])
        pts = {k: (1 - float(r["gflops"]) / base, r.get("mse")) for k, r in rows.items() if r.get("gflops") is not None}
        d = m.get("default", {})
        key = next((k for k, r in rows.items() if r.get("kind") == "dyna" and r.get("data_sparsity") == d.get("data_sparsity")
                    and r.get("model_sparsity") == d.get("model_sparsity")), None)
        dyna = [pts[k] for k, r in rows.items() if r.get("kind") == "dyna" and k in pts]
        return {"series": {"Dyna-Pruner settings": dyna, "other rows": [p for k, p in pts.items() if rows[k].get("kind") != "dyna"]},
                "scatter": ("other rows",),
                "chosen": (f"default setting {key}", *pts[key]) if key in pts else None, "budget": None, "hlines": {},
                "point_labels": {p: k for k, p in pts.items()}, "xlabel": "compute saved, 1 − GFLOPs / dense GFLOPs",
                "ylabel": f"test MSE [({u})²]" if u else "test MSE"}
    return None


def plan_points(run: RunFiles) -> dict:
    """A plan's accuracy-against-sparsity curve on validation: the search's keep-sets and
    QR's at every checkpoint (short fine-tuning), their budget error (the upper confidence
    bound the budget is checked on, when the plan had one), the dense model at 0, the budget
    threshold as a horizontal line and the chosen point as a star."""
    m = run.metrics
    b, c = m["budget"], m["chosen"]
    key = f"val_{b['metric']}"
    unit = (_sq(run) if b["metric"] == "mse" else _u(run)).strip()
    dense = (0.0, float(b["dense_val"]))
    series = {"dynst search (short fine-tuning)": [dense] + [(p["sparsity"], p[key]) for p in m["curve"]],
              "QR keep-set (short fine-tuning)": [dense] + [(p["sparsity"], p[key + "_qr"]) for p in m["curve"]]}
    if b.get("confidence") and all(f"{key}_ub" in p for p in m["curve"]):
        series[f"budget error: upper {num(100 * float(b['confidence']), 3)} % bound (the better keep-set)"] = (
            [dense] + [(p["sparsity"], budget_error(p, key)) for p in m["curve"]])
    full = "full fine-tuning (calibration, verification)"
    full_ub = "full fine-tuning: its budget error (judged against the budget)"
    if c.get("full_finetunes"):
        series[full] = [(float(f["sparsity"]), float(f[key])) for f in c["full_finetunes"]]
        if b.get("confidence") and all("budget_error" in f for f in c["full_finetunes"]):
            series[full_ub] = [(float(f["sparsity"]), float(f["budget_error"])) for f in c["full_finetunes"]]
    return {"series": series, "scatter": (full, full_ub),
            "chosen": (f"chosen: {m['n_kept']}/{m['n_sensors']} sensors ({c['scheme']})", float(c["sparsity"]), float(c["val"])),
            "budget": None, "hlines": {f"budget: +{num(100 * float(b['max_increase']), 3)} % over dense": float(b["threshold"])},
            "xlabel": "sensor sparsity (share of sensors switched off)",
            "ylabel": f"validation {b['metric'].upper()}" + (f" [{unit}]" if unit else ""),
            "caption": "Validation error against sparsity, one point per checkpoint of the search"}


def per_horizon(run: RunFiles) -> tuple[str, dict[str, list[float]]] | None:
    """``(y label, {model: errors per forecast step})`` or None when not recorded."""
    m, u = run.metrics, run.units
    unit = f" [{u}]" if u else ""
    if run.kind in DYNST and "dense" in m:
        b = m.get("baselines", {})
        lines = {"persistence": b.get("persistence", {}).get("mae_per_horizon"),
                 "historical average": b.get("historical_average", {}).get("mae_per_horizon"),
                 f"{m['backbone']} dense": m["dense"].get("mae_per_horizon"),
                 f"+ {m['scheme']} (full field)": m["pruned"].get("mae_per_horizon"),
                 f"+ {m['scheme']} (kept sensors only)": m.get("pruned_kept_only", {}).get("mae_per_horizon")}
        return f"test MAE{unit}", {k: v for k, v in lines.items() if v}
    if run.kind == "train" and m.get("test_per_horizon", {}).get("mae"):
        return f"test MAE{unit}", {f"{m['backbone']} ({m['sample_pruning']})": m["test_per_horizon"]["mae"]}
    if run.kind == "compress" and m.get("per_horizon"):
        names = {"dense": f"{m['backbone']} dense", "dyna": "Dyna-Pruner (gated)", "compact": "Dyna-Pruner (compact)",
                 "mp": "MP", "random": "random masks"}
        ph = dict(m["per_horizon"])
        if ph.get("compact", {}).get("mse") is not None and ph.get("compact", {}).get("mse") == ph.get("dyna", {}).get("mse"):
            del ph["compact"]  # the compact model computes what the gated one does: one line
            names["dyna"] = "Dyna-Pruner (gated = compact)"
        lines = {names.get(k, k): v.get("mse") for k, v in ph.items() if v.get("mse")}
        return (f"test MSE [({u})²]" if u else "test MSE"), lines
    return None


def cost_panels(run: RunFiles) -> tuple[list, str] | None:
    """Bar panels ``(title, y label, {model: value})`` of measured latency and FLOPs, and a
    note on how they were measured; None without cost figures in ``metrics.json``."""
    m = run.metrics
    if run.kind in DYNST and "latency_ms" in m:
        costs = m.get("costs") or [{"batch": m["latency_ms"]["batch"], "latency_ms_dense": m["latency_ms"]["dense"],
                                    "latency_ms_pruned": m["latency_ms"]["pruned"]}]
        panels = [(f"latency, batch {c['batch']}", f"ms per batch of {c['batch']}",
                   {"dense": c["latency_ms_dense"], f"+ {m['scheme']}": c["latency_ms_pruned"]}) for c in costs]
        panels.append(("FLOPs", "GFLOPs per window", {"dense": m["gflops"]["dense"], f"+ {m['scheme']}": m["gflops"]["pruned"]}))
        note = "median of interleaved runs, dense and pruned measured side by side" + \
            ("" if m.get("runs_on_kept_sensors_only") else "; this backbone runs on the masked full input")
        return panels, note
    if run.kind == "compress" and "gflops" in m:
        extra = {name: m[k] for k, name in (("mp", "MP"), ("random", "random masks")) if isinstance(m.get(k), dict)}
        gf = {"dense": m["gflops"]["dense"], "Dyna-Pruner": m["gflops"]["pruned"],
              **{k: v.get("gflops") for k, v in extra.items()}}
        b1 = {"dense": m["latency_ms_b1"]["dense"], "Dyna-Pruner": m["latency_ms_b1"]["pruned"],
              **{k: v.get("latency_ms_b1") for k, v in extra.items()}}
        b64 = {"dense": m.get("latency_ms_b64", {}).get("dense"), "Dyna-Pruner (compact)": m.get("latency_ms_b64", {}).get("pruned"),
               **{k: v.get("latency_ms_b64") for k, v in extra.items()}}
        return [("latency, batch 1", "ms per window", b1), ("latency, batch 64", "ms per batch of 64", b64),
                ("FLOPs", "GFLOPs per window", gf)], "interleaved measurement; batch 1 on the gated path, batch 64 on the compact model"
    if run.kind == "study" and "rows" in m:
        rows = m["rows"]
        return [("latency, batch 1", "ms per window", {k: r.get("latency_ms_b1") for k, r in rows.items()}),
                ("FLOPs", "GFLOPs per window", {k: r.get("gflops") for k, r in rows.items()})], "all rows interleaved, batch 1"
    return None


HEADLINE_ORDER = ("command", "status", "data", "backbone", "method", "seed", "sparsity", "test MAE", "test RMSE", "test MAPE",
                  "test MSE", "dense test MAE", "dense test MSE", "error change from dense", "best validation MAE",
                  "latency dense → pruned", "GFLOPs / window dense → pruned", "fit time", "wall time")


def headline(run: RunFiles) -> dict[str, str]:
    """The comparison page's row values of one run (label -> value with units)."""
    m, u = run.metrics, _u(run)
    out = {"command": run.kind, "status": "finished" if run.finished else f"unfinished ({run.status.get('state', '?')})",
           "data": str(m.get("data", run.config.get("data", "?"))), "backbone": str(m.get("backbone", run.config.get("backbone", "?"))),
           "seed": str(m.get("seed", run.config.get("seed", "?")))}
    if run.kind in DYNST and "pruned" in m:
        p = m["pruned"]
        out.update({"method": m["scheme"] if run.kind == "run" else f"plan ({m['scheme']})",
                    "sparsity": f"sensors {num(m['sensor_sparsity'], 3)} ({m['n_kept']}/{m['n_sensors']} kept)",
                    "test MAE": f"{num(p['mae'])}{u}", "test RMSE": f"{num(p['rmse'])}{u}", "test MAPE": f"{num(p['mape'], 3)} %",
                    "dense test MAE": f"{num(m['dense']['mae'])}{u}", "error change from dense": f"MAE {float(m['mae_increase_pct']):+.2f} %"})
        if "latency_ms" in m:
            out["latency dense → pruned"] = (f"{num(m['latency_ms']['dense'])} → {num(m['latency_ms']['pruned'])} ms "
                                             f"(batch {m['latency_ms']['batch']})")
            out["GFLOPs / window dense → pruned"] = f"{num(m['gflops']['dense'])} → {num(m['gflops']['pruned'])}"
    elif run.kind == "train" and "test" in m:
        t = m["test"]
        out.update({"method": m["sample_pruning"], "sparsity": f"samples R = {m.get('prune_ratio', 0):g}",
                    "test MAE": f"{num(t['mae'])}{u}", "test RMSE": f"{num(t['rmse'])}{u}", "test MAPE": f"{num(t['mape'], 3)} %",
                    "best validation MAE": f"{num(m.get('best_val_mae'))}{u}", "fit time": f"{num(m.get('train_time_s'))} s"})
    elif run.kind == "compress" and "mse" in m:
        out.update({"method": "dynapruner", "sparsity": f"s_d {m['data_sparsity']}, s_w {m['model_sparsity']}",
                    "test MSE": f"{num(m['mse']['pruned'])}{_sq(run)}", "test MAE": f"{num(m['mae']['pruned'])}{u}",
                    "dense test MSE": f"{num(m['mse']['dense'])}{_sq(run)}",
                    "error change from dense": f"MSE {float(m['mse_increase_pct']):+.2f} %",
                    "latency dense → pruned": f"{num(m['latency_ms_b1']['dense'])} → {num(m['latency_ms_b1']['pruned'])} ms (batch 1)",
                    "GFLOPs / window dense → pruned": f"{num(m['gflops']['dense'])} → {num(m['gflops']['pruned'])}"})
    elif run.kind == "study":
        out["method"] = "dynapruner-study"
    if isinstance(m.get("time_s"), dict) and "total" in m["time_s"]:
        out["wall time"] = f"{num(m['time_s']['total'])} s"
    elif "train_time_s" in m:
        out["wall time"] = f"{num(m['train_time_s'])} s (fit)"
    return out


def sparsity_point(run: RunFiles) -> tuple[str, float, float, str] | None:
    """``(x label, x, error, error name)`` of the run's chosen point, for the comparison's
    accuracy-against-sparsity figure."""
    m = run.metrics
    try:
        if run.kind in DYNST:
            return "sensor sparsity", float(m["sensor_sparsity"]), float(m["pruned"]["mae"]), "test MAE"
        if run.kind == "train":
            return "sample prune ratio R", float(m.get("prune_ratio", 0.0)), float(m["test"]["mae"]), "test MAE"
        if run.kind == "compress":
            return "compute saved (1 − GFLOPs / dense)", 1 - float(m["gflops"]["pruned"]) / float(m["gflops"]["dense"]), \
                float(m["mse"]["pruned"]), "test MSE"
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return None


__all__ = ["COMMANDS", "DYNST", "HEADLINE_ORDER", "num", "base_facts", "facts", "plan_facts", "composed_facts", "plan_points", "error_table",
           "robustness_table", "accuracy_points", "per_horizon", "cost_panels", "headline", "sparsity_point"]
