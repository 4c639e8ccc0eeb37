"""``compress(config)``: Dyna-Pruner end to end, with its baselines, measured side by side.

Dyna-Pruner: Zhang et al., arXiv:2606.15346 (Tables I-II); our reading in
``../shared/design/METHODS.md`` section 2 and :mod:`sparsest.pruning.adaptive`.

1. Load grid data; chronological split; train-only scaler (as ``sparsest run``).
2. Pre-train the dense backbone for ``pretrain_epochs``.
3. From those weights, every row gets the same budget of ``epochs`` more epochs (best
   validation epoch kept): *dense* (continues dense training), *Dyna-Pruner*
   (:class:`~sparsest.pruning.adaptive.DynaPruner`, thresholds calibrated to ``s_w`` on the
   first training batch), *MP* (L1 filter pruning at the FLOPs of Dyna-Pruner, then
   fine-tuning) and *random* (random data and filter masks at the same sparsities).
4. Static compact model: filters active for fewer than ``min_usage`` of the training
   samples are removed for good; saved as weights + a config that rebuilds it
   (``compact_weights.pt``, ``compact_config.json``; :func:`~sparsest.pruning.adaptive.load_compact`)
   and as TorchScript (``compact.ts``, :func:`~sparsest.pruning.adaptive.to_torchscript`) when it
   can be exported (else the reason is in ``metrics.json`` ``compaction.torchscript_error``).
5. Test MSE / MAE (physical units), GFLOPs per sample, latency at batch 1 (Dyna-Pruner's
   gated execution) and batch 64 (the compact model), all models interleaved in one
   measurement (:mod:`sparsest.efficiency`), robustness (Gaussian input noise, mask
   failure), importance-map PNGs, the compressed model.

Every training row is one resumable phase of the engine (``sparsest compress --resume RUN_DIR``).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from ...backbones import create_backbone
from ...efficiency import count_flops, count_parameters
from ...engine.fit import fit_best
from ...engine.module import ForecastModule, evaluate
from ...engine.prepare import baselines as reference_forecasts
from ...engine.prepare import prepare, stack_batch, start
from ...engine.run import RunDirectory
from ...errors import ConfigError
from ...pruning.adaptive import (READINGS, DynaPruner, evaluate_perturbed, l1_filter_prune, match_flops_ratio, save_compact, to_torchscript,
                                 torch_pruning_error)
from .config import CompressConfig
from .maps import plot_maps
from .measure import ModeCall, converged, cost_entries, measure_rows, metrics_of, samples

ROWS = ("dense", "dyna", "mp", "random")
PART_OF_PLAN = "state/part_of_plan.json"
"""Marker of a compress run made by ``sparsest plan --compress`` (its inputs are the plan's
kept sensors only, which ``sparsest compress --resume`` alone would not restore)."""
NOISE_SIGMAS = (0.01, 0.05)
MASK_FAILURES = (0.05, 0.10)


def run_name(config: CompressConfig, data_name: str) -> str:
    """``<time>_<data>_<backbone>_dynapruner_sd<s_d>_sw<s_w>_seed<k>``."""
    return (f"{time.strftime('%Y%m%d-%H%M%S')}_{data_name}_{config.backbone}_dynapruner"
            f"_sd{config.data_sparsity:g}_sw{config.model_sparsity:g}_seed{config.seed}")


def start_grid(config: CompressConfig, console=None):
    """The engine's prologue (:func:`sparsest.engine.prepare.start`) plus: the data must be a
    grid, and ``--clip-forecast on`` needs a lower bound. Returns ``(say, prep)``.

    Raises:
        ConfigError: ``--data`` is not grid data; ``--clip-forecast on`` on data without a
            lower bound; any option error of the prologue.
    """
    say, prep = start(config, console)
    if prep.data.kind != "grid":
        raise ConfigError(f"--data: Dyna-Pruner needs grid data (frames [T, C, H, W]); {prep.data.name} is {prep.data.kind} data")
    clips_forecast(config, prep)
    return say, prep


def make_wrapper(backbone, spec, config: CompressConfig, policy: str, reading: str, total_steps: int) -> DynaPruner:
    """The :class:`~sparsest.pruning.adaptive.DynaPruner` of one row (``backbone`` is
    wrapped in place)."""
    return DynaPruner(backbone, spec, config.data_sparsity, config.model_sparsity, policy=policy, fill=config.fill,
                      reading=reading, tiles=tuple(config.tiles) or None, hard_from=config.hard_from, total_steps=total_steps)


def phase_of(reading: str) -> str:
    """Training-phase (checkpoint) name of a comparison reading's row."""
    return "dynapruner-" + reading.replace("+", "-")


def read_val_curve(rd: RunDirectory, phase: str) -> dict:
    """Per-epoch validation MAE / MSE (physical units) of a training phase, from its CSV log
    (:func:`sparsest.report.rundir.read_curve`; empty lists when there is none)."""
    from ...report.rundir import read_curve

    path = rd.logs / phase / "metrics.csv"
    curve = read_curve(path) if path.exists() else None
    return {k: curve[k] if curve else [] for k in ("val_mae", "val_mse")}


def compute_on_signal(tile_mask: torch.Tensor, batch: dict, tiles, scaler) -> torch.Tensor:
    """Per window ``[B, 2]``: (share of computed tiles that hold signal, share of all tiles
    that hold signal). A tile holds signal when any of its observed pixels is above the
    window's minimum (in physical units: rain > 0 mm/h) in the last input frame or in any
    target frame (rain now or rain to come)."""
    from ...pruning.adaptive.tiles import tile_scores

    x_last = scaler.physical(batch["x"][:, -1])[:, 0]  # [B, H, W] physical
    y = torch.where(batch["y_mask"][:, :, 0].bool(), batch["y"][:, :, 0], torch.full_like(batch["y"][:, :, 0], float("inf")))
    floor = torch.minimum(x_last.flatten(1).min(1).values, y.flatten(1).min(1).values)[:, None, None]
    wet = (x_last > floor + 1e-6) | ((y > floor[:, None] + 1e-6) & torch.isfinite(y)).any(1)
    wet_tiles = tile_scores(wet.float(), tiles) > 0  # [B, rows, cols]
    on = tile_mask.detach() > 0.5
    share_on = (on & wet_tiles).flatten(1).sum(1) / on.flatten(1).sum(1).clamp_min(1)
    return torch.stack([share_on, wet_tiles.flatten(1).float().mean(1)], dim=1)


def summarise_signal(parts: list) -> dict:
    """``metrics.json`` entry of :func:`compute_on_signal` over the test windows."""
    v = torch.cat(parts)
    return {"computed_tiles_with_signal": float(v[:, 0].mean()), "tiles_with_signal": float(v[:, 1].mean()),
            "note": "share of the computed (active) tiles that hold rain now or in the forecast window, against the share of "
                    "all tiles that do (signal = any observed pixel above the frame's minimum)"}


def scaled_batches(prep, batch_size: int, generator: torch.Generator, max_batches: int):
    """Up to ``max_batches`` shuffled training batches with the targets in scaled units
    (``y_scaled``), for the mask generator's warm-up
    (:meth:`~sparsest.pruning.adaptive.DynaPruner.warm_start_generator`)."""
    ds = prep.loaders["train"].dataset
    mean, std = (t.float() for t in prep.scaler.tensors())
    order = torch.randperm(len(ds), generator=generator).tolist()[:batch_size * max_batches]
    out = []
    for a in range(0, len(order), batch_size):
        items = [ds[i] for i in order[a:a + batch_size]]
        b = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in ("x", "y", "y_mask")}
        b["y_scaled"] = (torch.nan_to_num(b["y"]) - mean) / std
        out.append(b)
    return out


def module_for(model, prep, config: CompressConfig) -> ForecastModule:
    """The engine's module for one row; a Dyna-Pruner's thresholds get ``tau_lr``."""
    if isinstance(model, DynaPruner):
        model.tau_lr = config.tau_lr
    return ForecastModule(model, prep.scaler, config.lr, config.weight_decay, loss=config.loss,
                          clip_forecast=clips_forecast(config, prep))


def clips_forecast(config: CompressConfig, prep) -> bool:
    """Whether the rows train on the clipped forecast (``--clip-forecast``; ``auto``: where the
    data set has a lower bound). Raises ConfigError for ``on`` on data without one."""
    if config.clip_forecast == "on" and prep.scaler.floor is None:
        raise ConfigError(f"--clip-forecast on: {prep.data.name} has no lower bound to clip at; use auto or off")
    return config.clip_forecast == "on" or (config.clip_forecast == "auto" and prep.scaler.floor is not None)


def fit_row(model, prep, config: CompressConfig, rd: RunDirectory, name: str, epochs: int) -> float:
    """Train one row ``epochs`` epochs (phase ``name``), keep its best validation epoch (by the
    training loss's metric, ``val_mse`` or ``val_mae``); returns that best value."""
    return fit_best(module_for(model, prep, config), prep.loaders["train"], prep.loaders["val"], rd, name, config,
                    max_epochs=epochs, generators=[prep.generator], monitor=f"val_{config.loss}")


def compress(config: CompressConfig, console=None, resume: RunDirectory | None = None) -> tuple[Path, dict]:
    """Run Dyna-Pruner and its baselines; return ``(run_dir, metrics)``.

    Written to ``<out>/<time>_<data>_<backbone>_dynapruner_sd<s_d>_sw<s_w>_seed<k>.partial``
    and renamed without ``.partial`` only when finished, so a failed run never touches an
    earlier one. Contents: ``config.yaml``, ``metrics.json`` (keys ``mse``, ``mae``,
    ``gflops``, ``latency_ms_b1``, ``latency_ms_b64`` each with ``dense`` / ``pruned``;
    rows ``mp`` and ``random``; ``robustness``; ``compaction``), ``importance_maps/*.png``,
    ``model/`` (``compact_weights.pt`` + ``compact_config.json``: the compact Dyna-Pruner,
    rebuilt by :func:`~sparsest.pruning.adaptive.load_compact` with ``weights_only=True``;
    ``compact.ts`` the same model as TorchScript, ``torch.jit.load(path)(x)`` with x
    ``[B, T, C, H, W]`` scaled (absent if it cannot be exported: ``metrics.json``
    ``compaction.torchscript_error`` says why; on success ``compaction.torchscript`` says
    how, script or trace), ``compaction.json``), ``checkpoints/``, ``logs/``.

    Args:
        resume: an unfinished run directory to continue (:meth:`RunDirectory.reopen`).

    Raises:
        SparsestError: bad data or options (one-line message naming the file / option).
    """
    if resume is not None and (resume.path / PART_OF_PLAN).is_file():
        raise ConfigError(f"--resume {resume.path}: this compress run is part of a plan (sparsest plan --compress); "
                          f"resume the plan: sparsest plan --resume {resume.path.parent}")
    say, prep = start_grid(config, console)
    data, spec = prep.data, prep.spec
    say(f"[bold]data[/] {data.name}: H x W = {spec.height} x {spec.width}, C = {spec.n_channels}, "
        f"T = {spec.window} -> S = {spec.horizon}, train windows {len(prep.loaders['train'].dataset)}")
    rd = resume or RunDirectory.create(config.out, run_name(config, data.name), config.to_dict())
    with rd.guard():
        return _compress(config, prep, rd, say)


def _compress(config: CompressConfig, prep, rd: RunDirectory, say, start_from=None) -> tuple[Path, dict]:
    """The body of :func:`compress` on prepared data; ``start_from`` (a backbone with weights,
    copied) replaces the freshly initialised backbone of the dense pre-training
    (``sparsest plan --compress`` starts from the kept-sensor model)."""
    data, spec = prep.data, prep.spec
    run_dir = rd.path
    t_start = prep.t_start
    times: dict = {}
    pre_epochs = config.pretrain_epochs or config.epochs

    # ---- shared dense pre-training
    t0 = time.perf_counter()
    backbone = copy.deepcopy(start_from) if start_from is not None else create_backbone(config.backbone, spec, **config.backbone_options)
    say(f"[bold]dense pre-training[/] {config.backbone}: {pre_epochs} epochs"
        + (" from the kept-sensor model's weights" if start_from is not None else ""))
    fit_row(backbone, prep, config, rd, "pretrain", pre_epochs)
    pretrained = copy.deepcopy(backbone)
    times["pretrain"] = time.perf_counter() - t0

    models: dict = {}
    say(f"[bold]dense[/] {config.epochs} more epochs")
    t0 = time.perf_counter()
    fit_row(backbone, prep, config, rd, "dense", config.epochs)
    models["dense"] = backbone.eval()
    times["dense"] = time.perf_counter() - t0

    steps = config.epochs * len(prep.loaders["train"])

    def wrapper(policy, reading=config.reading):
        return make_wrapper(copy.deepcopy(pretrained), spec, config, policy, reading, steps)

    def train_dyna(reading, phase):
        model = wrapper("dyna", reading)
        if config.generator_warmup:
            g = torch.Generator().manual_seed(config.seed)  # the warm-up's own order: the loaders' state stays untouched
            model.warm_start_generator(scaled_batches(prep, config.batch_size, g, config.generator_warmup),
                                       steps=config.generator_warmup)
        model.calibrate_thresholds(next(iter(prep.loaders["train"]))["x"])
        fit_row(model, prep, config, rd, phase, config.epochs)
        budget_offset = model.calibrate_budget(prep.loaders["train"]) if model.soft else 0.0
        return model.eval(), budget_offset

    say(f"[bold]Dyna-Pruner[/] reading {config.reading}, s_d={config.data_sparsity:g}"
        + (f", s_w={config.model_sparsity:g}" if config.reading != "tiles" else "") + f": {config.epochs} epochs")
    t0 = time.perf_counter()
    dyna, offsets = train_dyna(config.reading, "dynapruner")[0], {}
    models["dyna"] = dyna
    times["dyna"] = time.perf_counter() - t0
    if config.compare_readings:
        for reading in READINGS:
            if reading == config.reading:
                continue
            say(f"[bold]Dyna-Pruner[/] reading {reading} (comparison row): {config.epochs} epochs")
            t0 = time.perf_counter()
            models[f"dyna:{reading}"], offsets[reading] = train_dyna(reading, phase_of(reading))
            times[f"dyna:{reading}"] = time.perf_counter() - t0

    test_ds = prep.loaders["test"].dataset
    windows = samples(test_ds, config.latency_samples)
    gated = ModeCall(dyna, "gated")
    dyna_flops = float(np.mean([count_flops(lambda s=s: gated(s["x"], s["tod"], s["dow"])) for s in windows]))
    mp_info: dict = {}
    if config.baselines:
        x1 = windows[0]["x"]
        mp_info["torch_pruning_error"] = torch_pruning_error(pretrained, x1)
        ratio = match_flops_ratio(pretrained, x1, dyna_flops)
        mp_info.update({"pruning_ratio": ratio, "engine": "own L1 channel slicing (sparsest.pruning.adaptive.baselines)"})
        say(f"[bold]MP[/] L1 pruning ratio {ratio:.3f} (FLOPs matched to Dyna-Pruner), {config.epochs} epochs"
            + (f"; Torch-Pruning cannot cut {config.backbone}: {mp_info['torch_pruning_error']}" if mp_info["torch_pruning_error"] else ""))
        t0 = time.perf_counter()
        mp = l1_filter_prune(pretrained, ratio)
        fit_row(mp, prep, config, rd, "mp", config.epochs)
        models["mp"] = mp.eval()
        times["mp"] = time.perf_counter() - t0
        say(f"[bold]random[/] random data and unit masks at the same sparsities, {config.epochs} epochs")
        t0 = time.perf_counter()
        rnd = wrapper("random")
        fit_row(rnd, prep, config, rd, "random", config.epochs)
        models["random"] = rnd.eval()
        times["random"] = time.perf_counter() - t0

    if not rd.primary:  # a DDP worker: training done, rank 0 evaluates and writes
        return rd.path, None

    # ---- static compaction from training-set usage
    say(f"[bold]compaction[/] removing units active for < {config.min_usage:.0%} of training samples")
    usage = dyna.filter_usage(prep.loaders["train"])
    compact = copy.deepcopy(dyna)
    compaction = compact.compact(usage, config.min_usage)
    compact.eval()

    # ---- accuracy
    say("[bold]evaluation[/] test MSE / MAE")
    L.seed_everything(config.seed + 1, verbose=False)  # the random row's masks at test time
    full = {name: evaluate(m, prep.loaders["test"], prep.scaler, spec.horizon)["all"] for name, m in {**models, "compact": compact}.items()}
    ev = {name: metrics_of(e) for name, e in full.items()}

    # ---- costs, all models interleaved
    say("[bold]efficiency[/] GFLOPs and latency, interleaved (batch 1 per sample, batch 64)")
    costs = measure_rows(models, compact, windows, stack_batch(test_ds, 64), config.bench_repeats, config.seed)

    # ---- active fraction per test sample; share of the computed tiles that hold rain (any change)
    active, on_signal, signal = [], [], []
    with torch.no_grad():
        for batch in prep.loaders["test"]:
            dyna(batch["x"], batch["tod"], batch["dow"])
            active.append(dyna.last["filter_mask"].detach().mean(1))
            if dyna.spatial:
                on_signal.append(compute_on_signal(dyna.last["tile_mask"], batch, dyna.tiles, prep.scaler))
    active = torch.cat(active)

    # ---- reference forecasts and the dense model's convergence
    say("[bold]reference forecasts[/] persistence, historical average" + (", optical-flow extrapolation" if data.kind == "grid" else ""))
    refs = {k: metrics_of(v) for k, v in reference_forecasts(prep).items()}
    dense_curve = read_val_curve(rd, "pretrain")

    # ---- robustness
    say("[bold]robustness[/] Gaussian input noise and mask failure")
    robust: dict = {}
    for name in ("dense", "random", "dyna"):
        if name not in models:
            continue
        m = models[name]
        row = {"clean": ev[name]["mse"]}
        for sigma in NOISE_SIGMAS:
            row[f"noise_{sigma:g}"] = evaluate_perturbed(m, prep.loaders["test"], prep.scaler, spec.horizon, noise_sigma=sigma, seed=config.seed)["mse"]
        for frac in MASK_FAILURES:
            row[f"mask_failure_{frac:g}"] = (evaluate_perturbed(m, prep.loaders["test"], prep.scaler, spec.horizon, mask_failure=frac, seed=config.seed)["mse"]
                                             if name != "dense" else None)
        robust[name] = row

    # ---- outputs
    maps = plot_maps(dyna, samples(test_ds, config.n_maps), prep.scaler, run_dir / "importance_maps", data.units) if config.n_maps else []
    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    saved = save_compact(compact, model_dir, config.backbone, config.backbone_options, spec)
    compaction["eager"] = {"weights": f"model/{saved['weights']}", "config": f"model/{saved['config']}",
                           "load": "sparsest.pruning.adaptive.load_compact(run_dir / 'model')"}
    scripted, ts_info = to_torchscript(compact, torch.cat([s["x"] for s in windows[:2]]))
    if scripted is not None:
        torch.jit.save(scripted, str(model_dir / "compact.ts"))
        compaction["torchscript"] = {"path": "model/compact.ts", **ts_info}
    else:
        compaction["torchscript_error"] = ts_info["error"]
        if "script_error" in ts_info:
            compaction["torchscript_script_error"] = ts_info["script_error"]
    (model_dir / "compaction.json").write_text(json.dumps({**compaction, "gates": compact.gate_names,
                                                           "usage": usage.tolist()}, indent=1))

    cost = cost_entries(costs)
    metrics: dict = {
        "data": data.name, "backbone": config.backbone, "seed": config.seed, "units": data.units,
        "window": spec.window, "horizon": spec.horizon, "method": "dynapruner",
        "data_sparsity": config.data_sparsity, "model_sparsity": config.model_sparsity, "fill": config.fill,
        "epochs": config.epochs, "pretrain_epochs": pre_epochs,
        "mse": {"dense": ev["dense"]["mse"], "pruned": ev["dyna"]["mse"], "compact": ev["compact"]["mse"]},
        "mae": {"dense": ev["dense"]["mae"], "pruned": ev["dyna"]["mae"], "compact": ev["compact"]["mae"]},
        "gflops": {**cost["gflops"], "per": "sample"},
        "latency_ms_b1": {**cost["latency_ms_b1"], "path": "gated: active units only, sliced weights, one window at a time",
                          "per": "sample"},
        "latency_ms_b64": {**cost["latency_ms_b64"], "path": "static compact model (removed units never computed) + per-sample masks",
                           "per": "batch of 64"},
        "model_sparsity_measured": {"mean": 1 - float(active.mean()), "min": 1 - float(active.max()), "max": 1 - float(active.min())},
        "compaction": {k: v for k, v in compaction.items() if k != "per_layer"},
        "robustness": robust,
        "params": {"dense": count_parameters(models["dense"]), "dyna": count_parameters(dyna)},
        "importance_maps": maps,
    }
    if "mp" in models:
        for name in ("mp", "random"):
            metrics[name] = {"mse": ev[name]["mse"], "mae": ev[name]["mae"], **cost[name]}
        metrics["mp"].update(mp_info)
    for name, m in models.items():
        if name.startswith("dyna:"):
            metrics[name] = {"mse": ev[name]["mse"], "mae": ev[name]["mae"], **cost[name],
                             "budget_offset": offsets.get(name[5:], 0.0)}
    metrics["reading"] = config.reading
    if dyna.spatial:
        metrics["tiles"] = list(dyna.tiles)
        metrics["compute_on_signal"] = summarise_signal(on_signal)
    metrics["baselines"] = refs
    metrics["per_horizon"] = {name: {k: e[f"{k}_per_horizon"] for k in ("mse", "mae") if f"{k}_per_horizon" in e}
                              for name, e in full.items()}
    metrics["dense_pretrain"] = {**converged(dense_curve["val_mse"]), "val_mse": dense_curve["val_mse"],
                                 "criterion": "best validation MSE improved by < 1% over the last 3 pre-training epochs"}
    metrics["mse_increase_pct"] = 100 * (metrics["mse"]["pruned"] / metrics["mse"]["dense"] - 1)
    metrics["time_s"] = {**times, "total": time.perf_counter() - t_start}
    metrics["resumed"] = rd.resumed
    metrics["clip_forecast"] = clips_forecast(config, prep)  # what --clip-forecast resolved to
    rd.write_json("metrics.json", metrics)
    return rd.finish(cleanup=("checkpoints/*-last.ckpt",)), metrics


def remeasure(run_dir: str | Path, repeats: int | None = None, console=None) -> dict:
    """Rebuild the models of a finished compress run from its checkpoints and measure
    GFLOPs and latency again (e.g. on a quieter machine, or after a change to the
    execution code that leaves the outputs unchanged). Writes
    ``metrics_remeasured.json`` beside ``metrics.json`` (never changes it) and returns
    ``metrics.json`` with the cost entries replaced.

    Raises:
        ConfigError: not a finished compress run directory.
    """
    run_dir = Path(run_dir)
    from ...engine.options import build_options

    try:
        cfg = build_options(CompressConfig, (str(run_dir / "config.yaml"), RunDirectory(run_dir).read_config()))
        metrics = json.loads((run_dir / "metrics.json").read_text())
        compaction = json.loads((run_dir / "model" / "compaction.json").read_text())
    except (OSError, ValueError, TypeError, ConfigError) as e:
        raise ConfigError(f"{run_dir}: not a finished compress run ({e})") from None
    say = console.print if console is not None else (lambda *a, **k: None)
    prep = prepare(cfg)
    spec = prep.spec

    def state(name):
        sd = torch.load(run_dir / "checkpoints" / f"{name}.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        return {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}

    def backbone():
        return create_backbone(cfg.backbone, spec, **cfg.backbone_options)

    def wrapper(policy, reading=cfg.reading):
        return make_wrapper(backbone(), spec, cfg, policy, reading, 0)

    models = {"dense": backbone(), "dyna": wrapper("dyna")}
    models["dense"].load_state_dict(state("dense"))
    models["dyna"].load_state_dict(state("dynapruner"))
    if "mp" in metrics:
        models["mp"] = l1_filter_prune(backbone(), metrics["mp"]["pruning_ratio"])
        models["mp"].load_state_dict(state("mp"))
        models["random"] = wrapper("random")
        models["random"].load_state_dict(state("random"))
    for name in metrics:
        if name.startswith("dyna:"):
            models[name] = wrapper("dyna", name[5:])
            models[name].load_state_dict(state(phase_of(name[5:])))
    for name, m in models.items():  # as compress did after training (deterministic)
        if name.startswith("dyna") and m.soft:
            m.calibrate_budget(prep.loaders["train"])
    for m in models.values():
        m.eval()
    compact = copy.deepcopy(models["dyna"])
    compact.compact(torch.tensor(compaction["usage"]), compaction["min_usage"])
    test_ds = prep.loaders["test"].dataset
    say(f"[bold]re-measuring[/] {run_dir.name}")
    costs = measure_rows(models, compact, samples(test_ds, cfg.latency_samples), stack_batch(test_ds, 64),
                         repeats or cfg.bench_repeats, cfg.seed)
    new = cost_entries(costs)
    dyna = models["dyna"]
    if dyna.spatial:  # where the tiles went, with this code's definition of "signal"
        parts = []
        with torch.no_grad():
            for batch in prep.loaders["test"]:
                dyna(batch["x"], batch["tod"], batch["dow"])
                parts.append(compute_on_signal(dyna.last["tile_mask"], batch, dyna.tiles, prep.scaler))
        new["compute_on_signal"] = summarise_signal(parts)
    (run_dir / "metrics_remeasured.json").write_text(json.dumps({**new, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))
    merged = json.loads(json.dumps(metrics))
    for key, val in new.items():
        merged.setdefault(key, {}).update(val)
    merged["remeasured"] = True
    return merged


def _improvement(imp: float) -> str:
    return (f"improved {100 * imp:.2f}%" if imp > 0 else
            f"no improvement (the last 3 epochs' best is {100 * -imp:.2f}% above the earlier best)")


def summary(metrics: dict, console, run_dir: Path | None = None) -> None:
    """Rich table of one compress run (accuracy, GFLOPs, latency per row)."""
    from rich.table import Table

    t = Table(title=f"{metrics['data']} · {metrics['backbone']} · Dyna-Pruner ({metrics.get('reading', 'channels-hard')}) "
                    f"s_d={metrics['data_sparsity']:g} s_w={metrics['model_sparsity']:g}")
    for col in ("row", f"MSE ({metrics['units']}²)", f"MAE ({metrics['units']})", "GFLOPs/sample", "ms b1", "ms b64"):
        t.add_column(col, justify="left" if col == "row" else "right")
    rows = [("dense", metrics["mse"]["dense"], metrics["mae"]["dense"], metrics["gflops"]["dense"],
             metrics["latency_ms_b1"]["dense"], metrics["latency_ms_b64"]["dense"]),
            (f"Dyna-Pruner, {metrics.get('reading', 'channels-hard')}", metrics["mse"]["pruned"], metrics["mae"]["pruned"], metrics["gflops"]["pruned"],
             metrics["latency_ms_b1"]["pruned"], metrics["latency_ms_b64"]["pruned"])]
    for name in ("mp", "random", *sorted(k for k in metrics if k.startswith("dyna:"))):
        if name in metrics:
            r = metrics[name]
            label = {"mp": "MP", "random": "random"}.get(name, f"Dyna-Pruner, {name[5:]}")
            rows.append((label, r["mse"], r["mae"], r["gflops"], r["latency_ms_b1"], r.get("latency_ms_b64")))
    for name, r in metrics.get("baselines", {}).items():
        rows.append((name.replace("_", " "), r["mse"], r["mae"], None, None, None))
    for r in rows:
        t.add_row(r[0], *(f"{v:.4f}" if v is not None else "-" for v in r[1:4]), *(f"{v:.1f}" if v is not None else "-" for v in r[4:]))
    console.print(t)
    console.print(f"GFLOPs -{100 * metrics['gflops']['reduction']:.1f}%, batch-1 speedup x{metrics['latency_ms_b1']['speedup']:.2f}, "
                  f"compact batch-64 speedup x{metrics['latency_ms_b64']['speedup']:.2f}, MSE {metrics['mse_increase_pct']:+.2f}% vs dense")
    dp = metrics.get("dense_pretrain")
    if dp and dp.get("converged") is not None:
        console.print(f"dense pre-training {'converged' if dp['converged'] else 'NOT converged'} (criterion: the best validation "
                      f"MSE improves by < 1% over the last 3 epochs): {_improvement(dp['improvement'])}, {dp['epochs']} epochs")
    if run_dir is not None:
        console.print(f"run directory: {run_dir}")
