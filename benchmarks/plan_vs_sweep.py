"""`sparsest plan --max-increase E` against the Table 2 sweep of fixed sparsities (issue: part 9).

For each (data, backbone, seed):

1. ``sparsest plan --max-increase E`` trains the dense model and searches (one process);
2. the sweep: ``sparsest run --scheme dynst --sensor-sparsity s`` for every s of DynST's
   Table 2 (0.1, 0.2, ..., 0.6), each loading the plan's dense checkpoint (the same dense
   weights, so the same validation threshold), each with the full fine-tuning.

A sweep row meets the budget when its budget error (after its full fine-tuning) is at most
(1 + E) x the plan's reference validation error, the plan's own rule: the upper ``confidence``
bound of its validation error (:mod:`sparsest.methods.dynst.budget`, the plan's confidence and
seed, computed here from the row's pruned checkpoint against the plan's reference,
``checkpoints/dense-ft.ckpt``: the dense model fine-tuned like a candidate, ``--reference
finetuned``; against the row's own dense model for a plan with ``--reference dense``), or the
validation error itself for a plan with ``confidence`` 0. The test column of a sweep row is
against the same reference. The plan's time includes the reference's fine-tuning. Printed per seed: the plan's chosen
sparsity, its validation and test error against dense; the largest sweep sparsity within the
budget and its test error; and the wall-clock of both without the dense training (plan:
search checkpoints + final fine-tuning; sweep: every row's search + fine-tuning), also with
it (each trains the dense model once).

Resumable: each finished plan / run is appended to ``<out>/results.jsonl`` and skipped next
time. Two benchmarks side by side (``--threads 1`` each, split with ``--seeds`` / ``--suite``)
compare times only within one process: a plan and its sweep always run in the same process,
one after the other.

Usage:
    python benchmarks/plan_vs_sweep.py                               # metr-la-week STID, seeds 0-2
    python benchmarks/plan_vs_sweep.py --suite ghcnd --seeds 0       # ghcnd-us STID
    python benchmarks/plan_vs_sweep.py --suite era5 --seeds 0        # era5-t2m-uk ViT (patches as sensors)
    python benchmarks/plan_vs_sweep.py --table-only
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from sensor_search import load  # results.jsonl reader (this folder is on sys.path when run as a script)

SUITES = {
    "metr": ("metr-la-week", "stid", {}),
    "ghcnd": ("ghcnd-us", "stid", {}),
    # 10 epochs left the dense ViT unconverged (validation -4% in its last 3 epochs), so every fine-tuning beat it
    "era5": ("era5-t2m-uk", "vit", {"epochs": 40, "patience": 5, "finetune_epochs": 10, "batch_size": 16}),
}
RULE = "calibrated-bound-warm-ref-better"
"""Plans of the current rule (full fine-tuning verifies and calibrates the budget check, which
is on the upper confidence bound of the validation error; each checkpoint's short fine-tuning
starts from the previous checkpoint's model; the budget is relative to the dense model
fine-tuned like a candidate, ``--reference finetuned``, or to the dense model as trained where
that validates better); an earlier plan row without
calibration checked the budget on the short fine-tunings alone (shown too). Rows of an earlier
rule stay in results.jsonl; the table shows this rule's."""
PLAN_ONLY = ("max_increase", "metric", "checkpoint_step", "checkpoint_finetune_epochs", "max_sparsity")
TABLE2 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def sweep_bound(run_dir: Path, confidence: float, seed: int, dense_val: float, val: float,
                reference: Path | None = None, checks: dict | None = None) -> float:
    """The budget error of a sweep row (``sparsest run``) whose pruned validation MAE is
    ``val`` (its ``metrics.json``): its pruned model's upper ``confidence`` bound against the
    dense model on the validation windows, as the plan computes it. The dense model is the
    row's own (``dense_val``: its validation MAE), or the weights in ``reference`` (a plan's
    ``checkpoints/dense-ft.ckpt``, ``dense_val`` then that model's validation MAE). ``checks``
    keeps one :class:`BudgetCheck` per reference, so the reference's validation errors are
    computed once for all the rows judged against it."""
    from deploy_latency import rebuild  # this folder is on sys.path when run as a script

    from sparsest.engine.module import ForecastModule
    from sparsest.methods.dynst.budget import BudgetCheck

    _, prep, dense, pruned = rebuild(run_dir)
    check = None if checks is None or reference is None else checks.get(reference)
    if check is None:
        if reference is not None:
            ForecastModule(dense, prep.scaler, 1e-3, 0.0).load_state_dict(
                torch.load(reference, map_location="cpu", weights_only=True)["state_dict"])
            dense.keep.fill_(True)
        check = BudgetCheck(dense, prep, "mae", dense_val, confidence, seed)
        if checks is not None and reference is not None:
            checks[reference] = check
    return check.bound(pruned, val)


def append(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def run_all(args) -> None:
    from sparsest.bench.dynst import scheme_options
    from sparsest.engine.options import build_options
    from sparsest.methods.dynst.config import RunConfig
    from sparsest.methods.dynst.plan import plan
    from sparsest.methods.dynst.plan_config import PlanConfig
    from sparsest.methods.dynst.run import run

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = out / "results.jsonl"
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    for suite in args.suite:
        data, backbone, opts = SUITES[suite]
        opts = {**opts, **json.loads(args.options)}
        for seed in args.seeds:
            done = load(res)
            # the sweep rows do not depend on the budget (each plan's threshold judges them): shared by every budget
            mine = [r for r in done if (r["data"], r["backbone"], r["seed"]) == (data, backbone, seed)]
            first = next((r for r in mine if r["kind"] == "plan"), None)  # the plan that trained the dense model
            p = None if args.replan else next((r for r in mine if r["kind"] == "plan" and r.get("rule") == RULE and
                                                r["max_increase"] == args.max_increase), None)
            if p is None:
                print(f"== plan {data} {backbone} seed {seed} --max-increase {args.max_increase:g}", flush=True)
                o = {**opts, "data": data, "backbone": backbone, "seed": seed, "max_increase": args.max_increase,
                     "out": str(out / "runs")}
                if first is not None:  # same dense model as the earlier plan and the sweep: loaded, not trained again
                    o["dense_checkpoint"] = str(Path(first["run_dir"]) / "checkpoints" / "dense.ckpt")
                    o.pop("patience", None)  # refused with a loaded dense model (the cosine fine-tuning runs every epoch)
                cfg = build_options(PlanConfig, ("--set", o))
                t0 = time.perf_counter()
                partial = unfinished(out / "runs", data, backbone, seed, "plan", cfg)
                if partial is not None:  # a plan killed or failed part-way: resumed, its finished phases kept
                    import yaml

                    from sparsest.engine.run import RunDirectory

                    print(f"   resuming {partial}", flush=True)
                    cfg = build_options(PlanConfig, ("--set", yaml.safe_load((partial / "config.yaml").read_text())))
                    run_dir, m = plan(cfg, resume=RunDirectory.reopen(partial))
                else:
                    run_dir, m = plan(cfg)
                c = m["chosen"]
                p = {"kind": "plan", "rule": RULE, "data": data, "backbone": backbone, "seed": seed, "max_increase": args.max_increase,
                     "sparsity": c["sparsity"], "n_kept": c["n_kept"], "n_sensors": m["n_sensors"], "scheme": c["scheme"],
                     "val": c["val"], "budget_error": c["budget_error"], "confidence": m["budget"]["confidence"],
                     "dense_val": m["budget"]["dense_val"], "threshold": m["budget"]["threshold"],
                     "test": c["test"], "dense_test": c["dense_test"], "stopped": m["stopped"],
                     "checkpoints": len(m["curve"]), "budget_factor": c.get("budget_factor", 1.0),
                     "full_finetunes": len(c.get("full_finetunes", [])),
                     "dense_s": first["dense_s"] if first else m["time_s"]["dense_train"], "search_s": m["time_s"]["search"],
                     "finetune_s": m["time_s"]["finetune"], "wall_s": time.perf_counter() - t0,
                     "reference": m["reference"]["kind"], "reference_s": m["time_s"]["reference_finetune"],
                     "trained_dense_val": m["reference"]["trained_val"]["mae"],
                     "persistence": m["baselines"]["persistence"]["mae"],
                     "historical_average": m["baselines"]["historical_average"]["mae"],
                     "run_dir": str(run_dir), "machine": machine, "date": time.strftime("%Y-%m-%d")}
                append(res, p)
                print(f"   chosen s={p['sparsity']:.3f} val {p['val']:.4f}, budget error {p['budget_error']:.4f} "
                      f"(<= {p['threshold']:.4f}) test {p['test']:.4f} "
                      f"vs dense {p['dense_test']:.4f}; search {p['search_s']:.0f} s + fine-tune {p['finetune_s']:.0f} s",
                      flush=True)
            dense_ckpt = str(Path((first or p)["run_dir"]) / "checkpoints" / "dense.ckpt")
            for sp in args.sparsities:
                if any(r["kind"] == "sweep" and abs(r["target"] - sp) < 1e-9 for r in mine):
                    continue
                print(f"== sweep {data} {backbone} seed {seed} dynst s={sp:g}", flush=True)
                o = {**opts, "data": data, "backbone": backbone, "seed": seed, "scheme": "dynst", "sensor_sparsity": sp,
                     "dense_checkpoint": dense_ckpt, "out": str(out / "runs")}
                o = {k: v for k, v in o.items() if k not in PLAN_ONLY}
                cfg = build_options(RunConfig, ("--set", scheme_options(o)))
                t0 = time.perf_counter()
                run_dir, m = run(cfg)
                metric = "mae"
                r = {"kind": "sweep", "data": data, "backbone": backbone, "seed": seed, "max_increase": args.max_increase,
                     "target": sp, "sparsity": m["sensor_sparsity"], "n_kept": m["n_kept"],
                     "val": m["pruned_val"][metric], "dense_val": m["dense_val"][metric],
                     "val_ub": sweep_bound(run_dir, p["confidence"], seed, m["dense_val"][metric], m["pruned_val"][metric]),
                     "confidence": p["confidence"],
                     "test": m["pruned"][metric], "dense_test": m["dense"][metric],
                     "search_s": m["time_s"]["search"], "finetune_s": m["time_s"]["finetune"],
                     "wall_s": time.perf_counter() - t0, "run_dir": str(run_dir), "machine": machine,
                     "date": time.strftime("%Y-%m-%d")}
                append(res, r)
                print(f"   val {r['val']:.4f}, budget error {r['val_ub']:.4f} (threshold {p['threshold']:.4f}: "
                      f"{'within' if r['val_ub'] <= p['threshold'] else 'over'}) test {r['test']:.4f}; "
                      f"search {r['search_s']:.0f} s + fine-tune {r['finetune_s']:.0f} s", flush=True)
            if p.get("reference") == "finetuned":  # every sweep row against this plan's reference, once
                now = load(res)
                have = {r["target"] for r in now if r["kind"] == "sweep_ub" and r["plan_run"] == p["run_dir"]}
                ref_ckpt, checks = Path(p["run_dir"]) / "checkpoints" / "dense-ft.ckpt", {}
                for r in sorted((r for r in now if r["kind"] == "sweep" and (r["data"], r["backbone"], r["seed"]) ==
                                 (data, backbone, seed)), key=lambda r: r["target"]):
                    if r["target"] in have:
                        continue
                    ub = sweep_bound(Path(r["run_dir"]), p["confidence"], seed, p["dense_val"], r["val"], ref_ckpt, checks)
                    append(res, {"kind": "sweep_ub", "plan_run": p["run_dir"], "data": data, "backbone": backbone,
                                 "seed": seed, "target": r["target"], "val_ub": ub})
                    print(f"   sweep s={r['target']:g} against the plan's reference: val {r['val']:.4f} "
                          f"({pct(r['val'], p['dense_val'])}), budget error {ub:.4f} "
                          f"({'within' if ub <= p['threshold'] else 'over'} {p['threshold']:.4f}), test "
                          f"{pct(r['test'], p['dense_test'])}", flush=True)


def unfinished(runs: Path, data: str, backbone: str, seed: int, kind: str, cfg) -> Path | None:
    """The newest unfinished run directory of this job whose options are ``cfg``'s, if any."""
    import yaml

    want = cfg.to_dict()
    for d in sorted(runs.glob(f"*_{data}_{backbone}_{kind}_*seed{seed}.partial"), reverse=True):
        try:
            have = yaml.safe_load((d / "config.yaml").read_text())
        except (OSError, yaml.YAMLError):
            continue
        if all(have.get(k) == v for k, v in want.items() if k != "out"):
            return d
    return None


def pct(a: float, b: float) -> str:
    return f"{100 * (a / b - 1):+.2f}%"


def table(out: Path, rule: str = RULE) -> str:
    rows = load(out / "results.jsonl")
    short = {(r["data"], r["backbone"], r["seed"], r["max_increase"]): r for r in rows if r["kind"] == "plan" and "rule" not in r}
    latest = {(r["data"], r["backbone"], r["seed"], r["max_increase"]): r for r in rows  # a --replan row replaces the earlier
              if r["kind"] == "plan" and r.get("rule") == rule}
    plans = list(latest.values())
    if not plans:
        return "no results yet"
    ubs = {(r["plan_run"], r["target"]): r["val_ub"] for r in rows if r["kind"] == "sweep_ub"}

    def ub_of(p: dict, r: dict) -> float:
        """A sweep row's budget error against plan ``p``'s reference (its own dense model when the plan's is)."""
        return ubs.get((p["run_dir"], r["target"]), r.get("val_ub", r["val"]))

    def dense_test(p: dict, r: dict) -> float:
        return p["dense_test"] if p.get("reference") == "finetuned" else r["dense_test"]

    lines = [f"Machine: {'; '.join(sorted({r['machine'] for r in rows if 'machine' in r}))}; "
             f"{', '.join(sorted({r['date'] for r in rows if 'date' in r}))}", "",
             "| data | backbone | budget E | seed | persistence | hist. avg. | dense test MAE | plan: sparsity (kept) | plan val vs dense "
             "(budget error) | plan test vs dense | sweep: largest s within budget | its test vs dense | sweep rows within budget "
             "| plan time (search + fine-tune) | sweep time (all rows) | plan / sweep time | with the dense training |",
             "|" + "---|" * 17]
    verdicts = []
    for p in sorted(plans, key=lambda r: (r["data"], r["backbone"], r["max_increase"], r["seed"])):
        sw = sorted((r for r in rows if r["kind"] == "sweep" and (r["data"], r["backbone"], r["seed"]) ==
                     (p["data"], p["backbone"], p["seed"])), key=lambda r: r["target"])
        ok = [r for r in sw if ub_of(p, r) <= p["threshold"]]
        best = ok[-1] if ok else None
        plan_s = p["search_s"] + p["finetune_s"] + p.get("reference_s", 0.0)  # the reference's fine-tuning counts
        sweep_s = sum(r["search_s"] + r["finetune_s"] for r in sw)
        lines.append(
            f"| {p['data']} | {p['backbone']} | {p['max_increase']:g} | {p['seed']} | {p['persistence']:.3f} | {p['historical_average']:.3f} | "
            f"{p['dense_test']:.3f} | {p['sparsity']:.3f} ({p['n_kept']}/{p['n_sensors']}, {p['scheme']}) | "
            f"{pct(p['val'], p['dense_val'])} ({pct(p.get('budget_error', p['val']), p['dense_val'])}) | "
            f"{pct(p['test'], p['dense_test'])} | "
            f"{'none' if best is None else format(best['target'], 'g')} | {'' if best is None else pct(best['test'], dense_test(p, best))} | "
            f"{len(ok)} of {len(sw)} | {plan_s:.0f} s | {sweep_s:.0f} s | {plan_s / sweep_s:.2f} | "
            f"{(plan_s + p['dense_s']) / (sweep_s + p['dense_s']):.2f} |" if sw else
            f"| {p['data']} | {p['backbone']} | {p['max_increase']:g} | {p['seed']} | | | {p['dense_test']:.3f} | {p['sparsity']:.3f} | "
            f"{pct(p['val'], p['dense_val'])} | {pct(p['test'], p['dense_test'])} | (sweep not run) | | | {plan_s:.0f} s | | | |")
        if sw:
            verdicts.append(
                f"- {p['data']} {p['backbone']} E={p['max_increase']:g} seed {p['seed']}: plan s={p['sparsity']:.3f} "
                f"{'>=' if best is None or p['sparsity'] >= best['sparsity'] - 1e-9 else '<'} sweep "
                f"{'(none within budget)' if best is None else 's=' + format(best['sparsity'], '.3f')}; plan test "
                f"{'within' if p['test'] <= (1 + p['max_increase']) * p['dense_test'] else 'OVER'} "
                f"{100 * p['max_increase']:g}% of dense ({pct(p['test'], p['dense_test'])}); plan time {'<' if plan_s < sweep_s else '>='} sweep time "
                f"({plan_s:.0f} s vs {sweep_s:.0f} s); {p['checkpoints']} checkpoints, {p['full_finetunes']} full fine-tunings, "
                f"factor {p['budget_factor']:.4f}"
                + (f"; budget relative to the dense model fine-tuned like a candidate (validation {p['dense_val']:.4f}; "
                   f"as trained {p['trained_dense_val']:.4f}, {pct(p['trained_dense_val'], p['dense_val'])})"
                   if p.get("reference") == "finetuned" else "")
                + (f"; the plan without calibration (budget on the short fine-tunings) chose s="
                   f"{short[k]['sparsity']:.3f}" if (k := (p['data'], p['backbone'], p['seed'], p['max_increase'])) in short
                   else ""))
    for key in sorted({(p["data"], p["backbone"], p["max_increase"]) for p in plans}):
        g = [p for p in plans if (p["data"], p["backbone"], p["max_increase"]) == key]
        if len(g) > 1:
            verdicts.append(f"- {key[0]} {key[1]} E={key[2]:g}, mean of {len(g)} seeds: plan sparsity "
                            f"{statistics.mean(p['sparsity'] for p in g):.3f}, test vs dense "
                            f"{100 * statistics.mean(p['test'] / p['dense_test'] - 1 for p in g):+.2f}%")
    sweep_lines = ["", "Sweep rows (validation / test MAE after the full fine-tuning, against the dense model as trained, "
                   "and against the reference of this seed's plan: the dense model fine-tuned like a candidate; a row is "
                   "within a budget E when its budget error (upper confidence bound of the validation MAE) is at most "
                   "(1 + E) x the reference's validation MAE):", "",
                   "| data | backbone | seed | s | kept | val | val vs dense | budget error vs dense | test | test vs dense "
                   "| val vs reference | budget error vs reference | test vs reference | search + fine-tune |",
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted((r for r in rows if r["kind"] == "sweep"), key=lambda r: (r["data"], r["backbone"], r["seed"], r["target"])):
        p = latest.get((r["data"], r["backbone"], r["seed"], r["max_increase"]))
        ref = (f"{pct(r['val'], p['dense_val'])} | {pct(ub_of(p, r), p['dense_val'])} | {pct(r['test'], p['dense_test'])}"
               if p is not None and p.get("reference") == "finetuned" else " | | ")
        sweep_lines.append(f"| {r['data']} | {r['backbone']} | {r['seed']} | {r['target']:g} | {r['n_kept']} | {r['val']:.4f} | "
                           f"{pct(r['val'], r['dense_val'])} | {pct(r.get('val_ub', r['val']), r['dense_val'])} | "
                           f"{r['test']:.4f} | {pct(r['test'], r['dense_test'])} | {ref} | "
                           f"{r['search_s'] + r['finetune_s']:.0f} s |")
    return "\n".join(lines + [""] + verdicts + sweep_lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", nargs="+", choices=sorted(SUITES), default=["metr"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sparsities", type=float, nargs="+", default=TABLE2, help="the sweep [default: Table 2's 0.1 ... 0.6]")
    ap.add_argument("--max-increase", type=float, default=0.03)
    ap.add_argument("--out", default="bench_out/plan_vs_sweep")
    ap.add_argument("--options", default="{}", help='JSON of extra options for every plan and run, e.g. \'{"epochs": 1}\' (a smoke test)')
    ap.add_argument("--replan", action="store_true", help="run the plan again even if results.jsonl has one (after a "
                    "change of the planner); the table shows the newest")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (two benchmarks side by side: 1 each)")
    ap.add_argument("--table-only", action="store_true", help="only print the table of what results.jsonl holds")
    ap.add_argument("--rule", default=RULE, help=f"the table shows the plans of this rule [default: {RULE}; earlier: "
                    "calibrated-bound-warm-ref, the fine-tuned reference even where it validates worse]")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.table_only:
        run_all(args)
    print(table(Path(args.out), args.rule))


if __name__ == "__main__":
    main()
