"""``plan(config)``: the largest sensor sparsity whose validation error stays within a budget,
in one search (``sparsest plan``).

DynST states the constrained problem (Eq. 2: the fewest sensors such that the error stays
under epsilon) and then sweeps fixed sparsities. Here the budget is a relative increase of
the validation error over the dense model, ``threshold = (1 + max_increase) * E_dense``, and
one search walks up the sparsities. Every comparison with the threshold is on a candidate's
*budget error*: by default an upper 95% confidence bound of its validation error (a
moving-block bootstrap of its error ratio to the dense model over the validation windows,
:mod:`.budget`), so a keep-set is accepted only when the validation split is long enough to
say it holds; ``--confidence 0`` checks the validation error itself.

1. Prologue, baselines and phase ``dense`` exactly as ``sparsest run`` (:mod:`.pieces`).
   The reference (``--reference finetuned``, default): a copy of the dense model fine-tuned
   with every sensor exactly as a candidate's full fine-tuning (phase ``dense-ft``,
   :func:`reference_finetune`), so the reference and every candidate have had the same
   training after the dense model; ``--reference dense``: the dense model as trained. Should
   the fine-tuned copy validate worse than the dense model as trained (ghcnd-us with the last
   epoch kept: 40 more epochs overfit 144 stations), the dense model as trained is the
   reference (``reference.kind`` says which): a user keeping every sensor keeps the better one.
   ``E_dense``: the reference's validation error (``--metric``); the bound, the test
   confirmation and the costs are against the reference too.
2. The search (:func:`search_curve`): at each checkpoint ``s_k = k * checkpoint_step`` (up
   to ``max_sparsity``) the default ``dynst`` search goes on from the previous checkpoint's
   keep-set (:func:`sparsest.pruning.sensors.frontier.next_keep_set`: shrink it, or start
   from QR where the read-out scores that lower, then drop / regrow); the QR keep-set of the
   same size is the reference. Each of the two gets a short fine-tuning
   (``checkpoint_finetune_epochs``, phases ``checkNN-dynst`` / ``checkNN-qr``) and its
   validation error is measured: one point of the accuracy-against-sparsity curve. By default
   (``--checkpoint-start previous``) that fine-tuning starts from the model the previous
   checkpoint fine-tuned for the same chain (the search's keep-sets, or QR's), so the network
   adapts while sensors go off, as in DynST's iterative rounds: after checkpoint k it has
   trained k x ``checkpoint_finetune_epochs`` epochs. From the dense weights every time
   (``dense``), 3 epochs recover less and less as more sensors go (ghcnd-us: 3.16 at 0.05,
   3.45 at 0.5, while full fine-tunings stay near 3.05-3.1), so the walk stopped early. The
   search stops at the first checkpoint where neither is within the budget (or at
   ``max_sparsity``).
3. At every checkpoint the better of the two keep-sets (lower budget error) is the candidate
   (QR where it wins: the user gets the better one).
4. Calibration: a short fine-tuning leaves the error above what the full one
   (``finetune_epochs``) reaches, so a budget checked on it alone stops early. The first
   checkpoint over the budget gets the full fine-tuning (phase ``fullNN-<scheme>``); if that
   is within the budget, ``factor = full / short`` there (at most 1, never above an earlier
   factor) and the search goes on while ``factor x`` the short-fine-tuned error stays within;
   the last such checkpoint is fully fine-tuned and verified the same way; where the
   calibrated walk stops, that checkpoint is fully fine-tuned too, and if it holds the walk
   goes on past it (a verified checkpoint is within the budget whatever the factor says), and
   so on until a full fine-tuning is over the budget or the search cannot go further; after a
   failed one the checkpoint just below it is fully fine-tuned, and if that fails too the
   checkpoints between the largest verified and the smallest failed are bisected. Without
   ``checkpoint_finetune_epochs < finetune_epochs`` there is no calibration.
5. The chosen keep-set: the largest checkpoint whose full fine-tuning is within the budget
   (verified); without one, the largest within it on its own short fine-tuning. Never one
   over the budget; none within it (already the first checkpoint is over) chooses every
   sensor (sparsity 0, the dense model, and says so). Its fully fine-tuned weights are
   returned, or the checkpoint's short-fine-tuned ones should those have the lower budget
   error (``chosen.weights`` names the file; copied to ``checkpoints/pruned.ckpt``): the
   returned model's budget error (so its validation error) is never over the budget.
6. Confirmed on the test split (test error against the dense model's), measured latency /
   FLOPs, the deployable model (``deploy/``, as ``run``), ``plan.csv`` and ``metrics.json``
   (:mod:`.plan_outputs`).
7. With ``--compress`` (grid data): Dyna-Pruner on the kept-sensor model, in the sub-run
   ``compress/`` (:mod:`.plan_compress`), and the composed savings in ``metrics.json``
   ``composed``.

Resumable like ``run`` (``sparsest plan --resume RUN_DIR``): every fine-tuning is an engine
phase; after each checkpoint the curve so far and both keep-sets are written atomically to
``state/plan.json``, so a resumed search neither repeats the search of a finished checkpoint
nor retrains it. Search and evaluations run under :func:`~.pieces.isolated_rng`, so the
training phases see the same random streams whether or not the run was interrupted.

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Eq. 2; the continued search is ours.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ...data.segments import missed_hours
from ...engine.module import ForecastModule, evaluate
from ...engine.prepare import baselines, start
from ...engine.run import RunDirectory
from ...errors import ConfigError
from .budget import BudgetCheck, budget_error
from .pieces import (efficiency, export, finetune, isolated_rng, readout_surrogate, sensor_layout, test_metrics, train_dense,
                     val_metrics)
from .plan_config import PlanConfig

RESUME_ONLY = ("checkpoints/*-last.ckpt", "checkpoints/*.tmp")
STATE = "state/plan.json"


def plan_name(config: PlanConfig, data_name: str) -> str:
    """``<time>_<data>_<backbone>_plan_<metric><max increase>_seed<k>``."""
    return (f"{time.strftime('%Y%m%d-%H%M%S')}_{data_name}_{config.backbone}_plan_{config.metric}{config.max_increase:g}"
            f"_seed{config.seed}")


def plan(config: PlanConfig, console=None, resume: RunDirectory | None = None) -> tuple[Path, dict]:
    """Run the plan; return ``(run_dir, metrics)`` (module doc).

    Written to ``<out>/<name>.partial`` and renamed when finished: ``config.yaml``,
    ``metrics.json``, ``plan.csv``, ``sensors.csv``, ``sensor_importance.png``, ``report.md``,
    ``report.html``, ``deploy/``, ``checkpoints/{dense,checkNN-dynst,checkNN-qr,pruned}.ckpt``,
    ``logs/``, ``state/``.

    Raises:
        SparsestError: bad data or options (one-line message naming the file / option).
    """
    say, prep = start(config, console)
    say(prep.summary())
    rd = resume or RunDirectory.create(config.out, plan_name(config, prep.data.name), config.to_dict())
    if resume is not None:
        say(f"[bold]resume[/] {rd.path}")
    with rd.guard():
        return _plan(config, prep, rd, say)


def _monitor(metric: str) -> str:
    return "val_mae" if metric == "mae" else "val_mse"  # rmse ranks epochs as mse does


def _tuned_copy(config: PlanConfig, prep, rd: RunDirectory, start, keep, name: str, epochs: int, progress: bool = True,
                prune: bool = True):
    """A copy of ``start`` with keep-set ``keep`` (None: ``start``'s) fine-tuned for ``epochs``
    (phase ``name``, best epoch by the budget's metric). Returns ``(model, module, seconds)``."""
    model = copy.deepcopy(start)
    if keep is not None:
        model.keep.copy_(torch.from_numpy(np.asarray(keep, dtype=bool)))
    module = ForecastModule(model, prep.scaler, config.lr, config.weight_decay)
    seconds = finetune(config, prep, rd, module, name, epochs, monitor=_monitor(config.metric), progress=progress, prune=prune)
    return model, module, seconds


def reference_finetune(config: PlanConfig, prep, rd: RunDirectory, dense, epochs: int, say=print, every_window: bool = False):
    """``--reference finetuned``: a copy of ``dense`` (every sensor kept) fine-tuned like a
    candidate's full fine-tuning (``epochs``, ``--finetune-schedule``, best validation epoch),
    phase ``dense-ft``, on every training window when ``every_window`` (the composed run's
    full-data baseline), else on the windows the candidates train on. A pruned candidate has
    had the dense training plus its fine-tuning; compared with the dense model as trained, part
    of what looks like "within the budget" is only the extra training (on era5-t2m-uk every
    Table 2 row fine-tuned from an unconverged ViT beat it on validation). Returns
    ``(model, seconds)``."""
    say(f"[bold]reference[/] the dense model fine-tuned {epochs} epochs with every sensor (as each candidate's full "
        "fine-tuning): the budget is relative to it")
    model, _, seconds = _tuned_copy(config, prep, rd, dense, None, "dense-ft", epochs, prune=not every_window)
    model.subset = False  # every sensor: the plain forward
    return model, seconds


def _candidate(config: PlanConfig, prep, rd: RunDirectory, start, keep: np.ndarray, name: str, check: BudgetCheck,
               measure: bool = True):
    """A copy of ``start`` (the dense model, or the previous checkpoint's fine-tuned model of
    the same chain, ``--checkpoint-start``) with keep-set ``keep``, fine-tuned briefly (phase
    ``name``). Returns ``(model, (validation error, budget error))``, the pair None when not
    ``measure`` (a resumed, recorded checkpoint only reloads its weights)."""
    model, _, _ = _tuned_copy(config, prep, rd, start, keep, name, config.checkpoint_finetune_epochs, progress=False)
    if not measure:
        return model, None
    error = float(val_metrics(model, prep)[config.metric])
    return model, (error, check.bound(model, error))


def _saved(rd: RunDirectory) -> dict:
    import json

    p = rd.path / STATE
    if not p.is_file():
        return {"points": [], "keeps": []}
    return json.loads(p.read_text())


def _mask(indices, n: int) -> np.ndarray:
    keep = np.zeros(n, dtype=bool)
    keep[np.asarray(indices, dtype=np.int64)] = True
    return keep


def search_curve(config: PlanConfig, prep, rd: RunDirectory, layout, dense, threshold: float, check: BudgetCheck, say=print,
                 factor: float = 1.0, announce_from: int = 0, verified: frozenset = frozenset()) -> dict:
    """The search (module doc, step 2). A checkpoint is within the budget when ``factor`` x
    its short-fine-tuned budget error (:func:`budget_error`, from ``check``) is at most
    ``threshold`` (``factor``: the calibration of step 4, 1 before it), or when its number
    ``k`` is in ``verified`` (its full fine-tuning held); called again with a new factor, the
    recorded checkpoints are re-judged (not searched or trained again) and the search goes on
    past them while the budget holds. Only checkpoints past ``announce_from`` are printed.

    Returns:
        ``{"curve": [point, ...], "keeps": [(dynst keep, qr keep), ...], "stopped": why}``;
        a point is ``{k, target_sparsity, sparsity, n_off, n_kept, val_<metric>,
        val_<metric>_qr, val_<metric>_ub, val_<metric>_qr_ub (budget errors), within_budget,
        verified, better, same_keep_set, start, swaps, heldout_mae_std, seconds}`` (``seconds``: wall-clock of the checkpoint: search,
        both fine-tunings, both evaluations).
    """
    from ...pruning.sensors import placement as pl
    from ...pruning.sensors.frontier import checkpoint_sizes, next_keep_set

    n_s, key = layout.n_sensors, f"val_{config.metric}"
    sizes = checkpoint_sizes(n_s, config.checkpoint_step, config.max_sparsity)
    saved = _saved(rd)
    curve, keeps = [], []
    previous = np.ones(n_s, dtype=bool)
    starts = {"dynst": dense, "qr": dense}  # what the next checkpoint's short fine-tunings start from
    surrogate = snapshots = None
    stopped = "max_sparsity" if sizes else "no checkpoint (too few sensors for --checkpoint-step)"
    for k, (target, n_off) in enumerate(sizes, 1):
        t0 = time.perf_counter()
        recorded = k <= len(saved["points"]) and saved["points"][k - 1]["n_off"] == n_off
        if recorded:
            point = dict(saved["points"][k - 1])
            kd, kq = (_mask(saved["keeps"][k - 1][s], n_s) for s in ("dynst", "qr"))
        else:
            rd.phase(f"check{k:02d}-search")
            with isolated_rng():
                if surrogate is None:  # the dense model's forecasts, once for the whole search
                    p2s = layout.pixel_to_sensor.numpy() if layout.kind == "grid" else None
                    snapshots = pl.snapshot_matrix(prep.data.values, prep.data.kind, prep.split.train, prep.scaler.mean,
                                                   prep.scaler.std, p2s)
                    surrogate = readout_surrogate(prep, layout, dense, config.batch_size)
                kq = pl.keep_from_selected(pl.qr_ranking(snapshots, n_s - n_off, None, seed=config.seed), n_s)
                kd, info = next_keep_set(previous, kq, surrogate, config.swap_candidates, config.max_swaps)
        same = bool((kd == kq).all())
        md, val_d = _candidate(config, prep, rd, starts["dynst"], kd, f"check{k:02d}-dynst", check, measure=not recorded)
        mq, val_q = (md, val_d) if same else _candidate(config, prep, rd, starts["qr"], kq, f"check{k:02d}-qr", check,
                                                        measure=not recorded)
        if config.checkpoint_start == "previous":  # each chain goes on from its own fine-tuned model (DynST's rounds)
            starts = {"dynst": md, "qr": mq}
        if not recorded:
            (ed, bd), (eq, bq) = val_d, val_q
            point = {"k": k, "target_sparsity": target, "sparsity": n_off / n_s, "n_off": n_off, "n_kept": n_s - n_off,
                     key: ed, f"{key}_qr": eq, f"{key}_ub": bd, f"{key}_qr_ub": bq,
                     "better": "dynst" if (bd, ed) <= (bq, eq) else "qr", "same_keep_set": same, "start": info["start"],
                     "swaps": info["swaps"], "heldout_mae_std": info["heldout_mae_std"],
                     "seconds": time.perf_counter() - t0}
            saved["points"] = [*saved["points"][: k - 1], point]
            saved["keeps"] = [*saved["keeps"][: k - 1], {"dynst": np.where(kd)[0].tolist(), "qr": np.where(kq)[0].tolist()}]
            rd.write_json(STATE, saved)  # atomically: a kill after this line never repeats this checkpoint
        point["budget_factor"] = factor
        point["verified"] = k in verified
        point["within_budget"] = bool(factor * budget_error(point, key) <= threshold or point["verified"])
        curve.append(point)
        keeps.append((kd, kq))
        previous = kd
        if k > announce_from:
            bound = f"; budget error {budget_error(point, key):.4f}" if check.confidence > 0 else ""
            predicted = f" (x {factor:.4f} = {factor * budget_error(point, key):.4f})" if factor != 1.0 else ""
            say(f"  s={point['sparsity']:.3f} ({point['n_kept']}/{n_s} kept): validation {config.metric} dynst "
                f"{point[key]:.4f}, QR {point[key + '_qr']:.4f}{bound}{predicted} -> "
                f"{'within' if point['within_budget'] else 'OVER'} the budget {threshold:.4f} ({point['seconds']:.1f} s)")
        if not point["within_budget"]:
            stopped = "budget"
            break
    return {"curve": curve, "keeps": keeps, "stopped": stopped}


def calibrate(found: dict, research, full_val, threshold: float, key: str, enabled: bool = True) -> tuple[dict, int | None, float]:
    """Step 4 of the module doc: verify checkpoints with a full fine-tuning and let the search
    go on past the short-fine-tuned budget while the calibrated one holds.

    Args:
        found: :func:`search_curve`'s result with factor 1.
        research: ``research(factor, announce_from, verified) -> found``, the search again with
            ``factor``, the checkpoints numbered ``verified`` (``k``) within the budget.
        full_val: ``full_val(found, i) -> float``, the budget error of checkpoint ``i`` of
            ``found`` (its better keep-set) after the full fine-tuning (each ``i`` is asked once).
        threshold: the budget. key: ``val_<metric>``.
        enabled: False: no calibration (the full fine-tuning is no longer than the short ones).

    Returns:
        ``(found, verified, factor)``: the (continued) search, the index of the largest
        checkpoint whose full fine-tuning is within the budget (None: none was verified) and
        the factor (1 without a verified checkpoint; at most 1, never above an earlier one).
        Where the calibrated walk stops (the first checkpoint over the calibrated budget),
        that checkpoint is fully fine-tuned as well; when it holds, it is verified and the
        walk goes on past it. When a pick fails its full fine-tuning, the checkpoint just
        below it is fully fine-tuned first (on a smooth curve the frontier is there: on
        METR-LA STID, bisecting from the first checkpoint took 4 full fine-tunings to land
        one below the failed one); if that fails too, the checkpoints between the largest
        verified one and the smallest failed one are bisected (each midpoint fully
        fine-tuned), so the verified frontier is found with about log2 of them.
    """
    verified, factor, asked, failed, passed, probed = None, 1.0, set(), None, set(), False
    while enabled:
        curve = found["curve"]
        within = [i for i, p in enumerate(curve) if p["within_budget"]]
        stop = len(curve) - 1 if found["stopped"] == "budget" else None  # the first checkpoint over the budget
        if failed is None and verified is None and stop is not None:
            cand = stop  # over the budget on its short fine-tuning: does the full one hold?
        elif failed is None and within and (verified is None or within[-1] > verified):
            cand = within[-1]  # the largest checkpoint the calibrated budget holds at
        elif failed is None and stop is not None and stop not in asked:
            cand = stop  # where the calibrated walk stops: its full fine-tuning may still hold
        elif failed is not None and verified is not None and failed - verified > 1:
            # first the one just below the failed one (where the frontier most often is), then bisect between the
            # largest verified and the smallest failed checkpoint
            cand, probed = (verified + failed) // 2 if probed else failed - 1, True
        else:
            break
        if cand in asked:
            break
        asked.add(cand)
        v = full_val(found, cand)
        if v > threshold:
            if verified is None:  # the first checkpoint over the budget is over it in full too: no calibration
                break
            failed = cand  # every later candidate lies below it (bisection)
            continue
        verified, p = cand, curve[cand]  # every candidate lies above the last verified one
        passed.add(cand)
        if failed is None:  # still walking up: calibrate and let the search go on
            # never above 1 nor above an earlier calibration: the walk only goes on, and every pick is verified anyway
            factor = min(factor, v / budget_error(p, key))
            found = research(factor, len(curve), frozenset(curve[i]["k"] for i in passed))
    return found, verified, factor


def _plan(config: PlanConfig, prep, rd: RunDirectory, say) -> tuple[Path, dict]:
    from .plan_outputs import composed_savings, composed_table, confirm_on_test, plan_metrics, write_plan_outputs

    data, spec = prep.data, prep.spec
    say("[bold]baselines[/] persistence, historical average" + (", extrapolation (optical flow)" if spec.kind == "grid" else ""))
    base = baselines(prep)
    layout = sensor_layout(data, config.patch_size)
    if config.compress and data.kind != "grid":
        raise ConfigError(f"--compress: Dyna-Pruner gates the convolutions of a grid backbone; {data.name} is {data.kind} "
                          "data (drop --compress)")
    full = None
    if config.sample_pruning != "none":  # composed: the full-data dense model is the baseline, trained in the same run
        say(f"[bold]composed[/] {config.sample_pruning} (R={config.prune_ratio:g}) trains the dense model and every "
            "fine-tuning of the search; the dense model trained on every window is the baseline of the budget and of "
            "the training time")
        full_dense, full_time = train_dense(config, prep, rd, layout, say, name="dense_full", prune=False)
        full = {"model": full_dense, "seconds": full_time, "val": val_metrics(full_dense, prep)}
    dense, dense_time = train_dense(config, prep, rd, layout, say)
    dense_val = val_metrics(dense, prep)
    final_epochs = config.finetune_epochs or config.epochs
    reference = full["model"] if full else dense  # what the budget, the test confirmation and the costs are against
    ref = {"kind": config.reference, "trained_val": dict(full["val"] if full else dense_val), "seconds": 0.0}
    ref_val = ref["trained_val"]
    if config.reference == "finetuned":  # the same training after the dense model as every pruned candidate gets
        tuned_ref, ref["seconds"] = reference_finetune(config, prep, rd, reference, final_epochs, say, every_window=bool(full))
        ref["epochs"], ref["finetuned_val"] = final_epochs, val_metrics(tuned_ref, prep)
        if ref["finetuned_val"][config.metric] <= ref_val[config.metric]:
            reference, ref_val = tuned_ref, ref["finetuned_val"]
        else:  # a user keeping every sensor keeps the better dense model: the budget is never against a worse one
            ref["kind"] = "dense"
            say(f"[yellow]note[/] the fine-tuned reference validates worse ({ref['finetuned_val'][config.metric]:.4f}) than "
                f"the dense model as trained ({ref_val[config.metric]:.4f}): the budget is against the dense model as trained")
    if full:
        full.update(model=reference, val=ref_val)
    e_dense = float(ref_val[config.metric])
    threshold = (1.0 + config.max_increase) * e_dense
    check = BudgetCheck(reference, prep, config.metric, e_dense, config.confidence, config.seed)
    say(f"[bold]budget[/] validation {config.metric} of the dense model{' (every window)' if full else ''}"
        f"{' fine-tuned' if ref['kind'] == 'finetuned' else ''} {e_dense:.4f} -> "
        f"at most {threshold:.4f} (+{100 * config.max_increase:g}%), checked on {check.describe()}")
    missing = prep.hours_missing("val")
    if missing:
        say(f"[yellow]note[/] no validation window ends at {missed_hours(missing)}; a longer validation split covers them "
            "(--split, e.g. 0.7 0.15 0.15 on a one-week series)")

    # ---- the search: one walk up the sparsities
    say(f"[bold]search[/] dynst continued every {config.checkpoint_step:g} of sensor sparsity up to {config.max_sparsity:g}, "
        f"QR of the same size as reference; {config.checkpoint_finetune_epochs} fine-tuning epochs per candidate")
    found = search_curve(config, prep, rd, layout, dense, threshold, check, say)
    key = f"val_{config.metric}"
    tuned: dict[int, dict] = {}  # curve index -> the full fine-tuning of its better keep-set

    def full_finetune(now: dict, i: int) -> float:
        p = now["curve"][i]
        name = f"full{p['k']:02d}-{p['better']}"
        say(f"[bold]fine-tune[/] fully ({final_epochs} epochs): the {p['better']} keep-set of sparsity {p['sparsity']:.3f}, "
            f"{p['n_kept']} of {layout.n_sensors} sensors kept")
        model, module, seconds = _tuned_copy(config, prep, rd, dense, now["keeps"][i][0 if p["better"] == "dynst" else 1], name,
                                             final_epochs)
        error = float(val_metrics(model, prep)[config.metric])
        tuned[i] = {"name": name, "model": model, "module": module, "seconds": seconds, "val": error,
                    "bound": check.bound(model, error)}
        bound = f", budget error {tuned[i]['bound']:.4f}" if check.confidence > 0 else ""
        say(f"  validation {config.metric} after the full fine-tuning {error:.4f}{bound} -> "
            f"{'within' if tuned[i]['bound'] <= threshold else 'OVER'} the budget {threshold:.4f}")
        return tuned[i]["bound"]

    def research(factor: float, announce_from: int, verified: frozenset) -> dict:
        say(f"[bold]calibrated[/] full / short fine-tuning x {factor:.4f}; the search goes on while x this the "
            "short-fine-tuned budget error stays within the budget")
        return search_curve(config, prep, rd, layout, dense, threshold, check, say, factor=factor, announce_from=announce_from,
                            verified=verified)

    # ---- calibration (step 4): the short fine-tunings overstate the error the full one reaches
    found, verified, factor = calibrate(found, research, full_finetune, threshold, key,
                                        enabled=config.checkpoint_finetune_epochs < final_epochs)
    search_time = float(sum(p["seconds"] for p in found["curve"]))  # a resumed plan counts the first process's checkpoints too
    curve = found["curve"]
    within = [i for i, p in enumerate(curve) if p["within_budget"]]
    # verified: the largest checkpoint whose full fine-tuning is within the budget; without one, the largest
    # within it on its own short fine-tuning (factor 1)
    pick = verified if verified is not None else (within[-1] if within else None)

    # ---- the chosen keep-set, fully fine-tuned
    # without a checkpoint within the budget: every sensor, the reference's weights (the composed run: the dense model
    # trained on the pruned windows, whose training time it saves)
    pruned = copy.deepcopy(dense if full else reference)
    chosen: dict = {"sparsity": 0.0, "n_kept": layout.n_sensors, "scheme": "dense", "val_checkpoint": e_dense,
                    "budget_checkpoint": e_dense, "budget_error": e_dense, "finetune": "none (every sensor kept: the dense model)",
                    "budget_factor": factor, "full_finetunes": []}
    if pick is not None:
        p = curve[pick]
        scheme = p["better"]
        if scheme == "qr":
            say(f"[bold]chosen[/] the QR keep-set: it beats the search's on validation at sparsity {p['sparsity']:.3f}")
        if pick not in tuned:
            full_finetune(found, pick)
        t = tuned[pick]
        pruned, module = t["model"], t["module"]
        suffix = "" if scheme == "dynst" else "_qr"
        chosen.update({"sparsity": p["sparsity"], "n_kept": p["n_kept"], "scheme": scheme,
                       "val_checkpoint": p[key + suffix], "budget_checkpoint": budget_error(p, key),
                       "val_full_finetune": t["val"], "budget_full_finetune": t["bound"], "finetune": "full",
                       "weights": f"checkpoints/{t['name']}.ckpt", "budget_error": t["bound"]})
        if t["bound"] > chosen["budget_checkpoint"]:  # the lower budget error; never one over the budget
            name = f"check{p['k']:02d}-{scheme if not p['same_keep_set'] else 'dynst'}"
            module.load_state_dict(torch.load(rd.checkpoints / f"{name}.ckpt", map_location="cpu",
                                              weights_only=True)["state_dict"])
            chosen["weights"], chosen["budget_error"] = f"checkpoints/{name}.ckpt", chosen["budget_checkpoint"]
            chosen["finetune"] = (f"checkpoint (its short fine-tuning has the lower budget error: "
                                  f"{chosen['budget_checkpoint']:.4f} < {t['bound']:.4f})")
            say(f"[yellow]note[/] the full fine-tuning ended with a higher budget error ({t['bound']:.4f}) than the "
                f"checkpoint's short one ({chosen['budget_checkpoint']:.4f}); the checkpoint's model is kept")
        shutil.copy(rd.path / chosen["weights"], rd.checkpoints / "pruned.ckpt")
    else:
        say("[yellow]note[/] " + ("already the first checkpoint is over the budget" if curve else "no checkpoint")
            + ": every sensor stays on (sensor sparsity 0, the dense model)")
    chosen["full_finetunes"] = [{"k": curve[i]["k"], "sparsity": curve[i]["sparsity"], "scheme": curve[i]["better"],
                                 f"val_{config.metric}": t["val"], "budget_error": t["bound"],
                                 "within_budget": t["bound"] <= threshold,
                                 "seconds": t["seconds"]} for i, t in sorted(tuned.items())]
    finetune_time = float(sum(t["seconds"] for t in tuned.values()))
    chosen["val"] = float(val_metrics(pruned, prep)[config.metric])

    # ---- confirmed on the test split, costs, outputs
    rd.phase("evaluation")
    metrics = plan_metrics(config, prep, base, ref_val, threshold, found, chosen)
    metrics["reference"] = ref
    metrics.update(test_metrics(prep, layout, reference, pruned))
    confirm_on_test(metrics, config)
    metrics.update({"sensor_sparsity": pruned.sparsity, "n_sensors": pruned.n_sensors, "n_kept": int(pruned.keep.sum()),
                    "search_seconds": search_time,
                    "time_s": {"dense_train": dense_time, **({"dense_full_train": full["seconds"]} if full else {}),
                               "reference_finetune": ref["seconds"], "search": search_time, "finetune": finetune_time,
                               "total": time.perf_counter() - prep.t_start},
                    "resumed": rd.resumed, "runs_on_kept_sensors_only": pruned.runs_subset})
    say("[bold]efficiency[/] latency (median of interleaved runs) and FLOPs, dense vs pruned")
    metrics.update(efficiency(config, prep, reference, pruned))
    sample = compressed = None
    if full:
        with isolated_rng():
            sp_test = evaluate(dense, prep.loaders["test"], prep.scaler, prep.spec.horizon)["all"]
        sample = {"full": full, "dense_s": dense_time, "dense_val": dense_val, "dense_test": sp_test}
    if config.compress:  # Dyna-Pruner on the kept-sensor model (sub-run compress/)
        from .plan_compress import compress_kept

        compressed = compress_kept(config, rd, layout, pruned, say)
        metrics["compress"] = compressed
    if sample or compressed:
        metrics["composed"] = composed_savings(config, metrics, sample, compressed)
        say(composed_table(metrics))
    write_plan_outputs(rd.path, config, data, layout, pruned, metrics, found)
    export(prep, rd, layout, pruned)
    rd.write_json("metrics.json", metrics)
    shutil.rmtree(rd.logs / "search" / "checkpoints", ignore_errors=True)
    return rd.finish(cleanup=RESUME_ONLY), metrics


__all__ = ["plan", "plan_name", "search_curve", "calibrate"]
