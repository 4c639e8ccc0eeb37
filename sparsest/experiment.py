"""``run(config)``: the DynST sensor-pruning job end to end.

1. Load and validate the data; chronological split; scaler fitted on train only.
2. Persistence and historical-average baselines on the test split.
3. Dense backbone trained with early stopping on validation MAE.
4. Sensor search from the dense weights with the chosen scheme
   (:mod:`sparsest.pruning.sensors.search`), then fine-tuning with the keep-set fixed.
5. Test metrics of dense and pruned on the full field and on kept sensors only; outputs
   written to a fresh run directory.

Library code: reads no argv or config files; the CLI builds a :class:`RunConfig`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from .backbones import DataSpec, create_backbone, get_backbone_entry
from .data.core import SpatioTemporalData
from .data.windows import StandardScaler, WindowDataset, chronological_split, time_features
from .datasets import load_dataset
from .efficiency import compare_dense_pruned, count_parameters
from .engine.module import ForecastModule, evaluate
from .errors import ConfigError
from .pruning.masks import check_sparsity
from .pruning.sensors.layout import SensorLayout
from .pruning.sensors.search import SCHEMES, SearchSettings, SensorSearch, build_plan, init_keep, plan_steps, set_phase
from .pruning.sensors.wrapper import SensorMaskedForecaster


@dataclass
class RunConfig:
    """Every option of ``sparsest run`` (the CLI and ``--config FILE.yaml`` use these keys).

    Attributes (units in brackets):
        data: registered data set name or a path to a signals / grid file.
        backbone: registered backbone name.
        sparsity: fraction of sensors switched off, in [0, 1).
        scheme: dynst, iterative, one-shot, dst or random.
        epochs: maximum training epochs of the dense model and of the fine-tuning.
        finetune_epochs: maximum fine-tuning epochs after the search, if not ``epochs``
            (fine-tuning starts from trained weights and usually needs fewer).
        seed: random seed (weights, batches, random keep-sets).
        out: parent folder of run directories.
        data_dir: folder holding the named data sets (default: $SPARSEST_DATA_DIR or
            ../shared/data beside the repository).
        adjacency, locations: files for bring-your-own graph data.
        window, horizon: input / forecast length [time steps]; default per data set.
        batch_size: windows per batch.
        lr, weight_decay: AdamW settings of the network.
        patience: early-stopping patience [epochs without validation-MAE gain].
        rounds: pruning rounds (paper: 10).
        round_steps: R, network steps per round; mask_steps: M, mask steps per round.
        regrow_fraction: q, fraction of all sensors exchanged per drop / regrow.
        mask_lr: learning rate of the sensor scores; mask_l1: L1 pull on them.
        patch_size: p, patch side [pixels] for grid data (patches are the sensors).
        accelerator, devices, strategy: passed to ``lightning.Trainer`` (GPU / DDP).
        limit_train_batches: fraction or count of batches per epoch (quick runs / tests).
        bench_batch: batch size of the dense-vs-pruned latency / FLOPs measurement.
        bench_repeats: timed repeats per model (median reported; 3 warm-up rounds before).
        sample_pruning: none, st-prune, infobatch, infobatch-budget, random or static: the dense training and the
            sensor search visit the windows this sample-pruning method keeps each epoch
            (:mod:`sparsest.pruning.samples`); fine-tuning uses all windows.
        prune_ratio: fraction of training windows skipped per pruned epoch, in [0, 1).
        dense_checkpoint: start from this trained dense checkpoint (``checkpoints/dense.ckpt``
            of an earlier run with the same data, backbone and options) instead of training.
        backbone_options: extra keyword arguments for the backbone.
    """

    data: str = "ghcnd-us"
    backbone: str = "stid"
    sparsity: float = 0.3
    scheme: str = "dynst"
    epochs: int = 40
    finetune_epochs: int | None = None
    seed: int = 0
    out: str = "runs"
    data_dir: str | None = None
    adjacency: str | None = None
    locations: str | None = None
    window: int | None = None
    horizon: int | None = None
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 8
    rounds: int = 10
    round_steps: int = 25
    mask_steps: int = 10
    regrow_fraction: float = 0.01
    mask_lr: float = 0.05
    mask_l1: float = 0.05
    patch_size: int = 4
    accelerator: str = "cpu"
    devices: str | int = 1
    strategy: str = "auto"
    limit_train_batches: float | int = 1.0
    bench_batch: int = 64
    bench_repeats: int = 10
    dense_checkpoint: str | None = None
    sample_pruning: str = "none"
    prune_ratio: float = 0.5
    backbone_options: dict = field(default_factory=dict)

    def check(self) -> "RunConfig":
        """Validate option values.

        Raises:
            ConfigError: naming the option.
        """
        check_sparsity(self.sparsity)
        if self.scheme not in SCHEMES:
            raise ConfigError(f"--scheme: unknown scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        for name in ("epochs", "batch_size", "rounds", "mask_steps", "patch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(self, name)}")
        for name in ("window", "horizon", "finetune_epochs"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ConfigError(f"--{name}: must be >= 1, got {v}")
        if not 0 <= self.regrow_fraction < 1:
            raise ConfigError(f"--regrow-fraction: must be in [0, 1), got {self.regrow_fraction}")
        self.sample_options().check()
        entry = get_backbone_entry(self.backbone)
        if not entry.trainable:
            raise ConfigError(f"--backbone: {self.backbone} is a baseline, always reported; pick a trainable backbone")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def sample_options(self):
        """The :class:`~sparsest.pruning.samples.PruningOptions` of ``sample_pruning``."""
        from .pruning.samples import PruningOptions

        return PruningOptions(self.sample_pruning, self.prune_ratio)


@dataclass
class Prepared:
    """Loaded data, split, scaler and loaders of a run."""

    data: SpatioTemporalData
    spec: DataSpec
    scaler: StandardScaler
    loaders: dict
    split: object
    tod: np.ndarray


def prepare(config: RunConfig) -> Prepared:
    """Load the data and build the windowed train / val / test loaders."""
    data, entry = load_dataset(config.data, config.data_dir, config.adjacency, config.locations)
    window = config.window or (entry.window if entry else 12)
    horizon = config.horizon or (entry.horizon if entry else 12)
    split = chronological_split(data.n_steps, window, horizon, source=data.source)
    scaler = StandardScaler.fit(data, split.train)
    tod, dow = time_features(data)
    train_days = (split.train[1] - split.train[0]) / data.steps_per_day
    if train_days < 14:
        # a weekday seen at most once in training cannot be learnt, and weekdays that only
        # occur in validation / test would hit untrained embeddings: drop the feature
        dow = np.zeros_like(dow)
    g = torch.Generator().manual_seed(config.seed)
    loaders = {}
    for name in ("train", "val", "test"):
        ds = WindowDataset(data, getattr(split, name), window, horizon, scaler, tod=tod, dow=dow)
        loaders[name] = DataLoader(ds, batch_size=config.batch_size, shuffle=name == "train", generator=g if name == "train" else None)
    h, w = data.grid_shape if data.kind == "grid" else (0, 0)
    spec = DataSpec(
        kind=data.kind, window=window, horizon=horizon, n_channels=data.n_channels, n_nodes=data.n_nodes,
        height=h, width=w, steps_per_day=data.steps_per_day, adjacency=data.adjacency,
        patch_size=config.patch_size,
    )
    return Prepared(data, spec, scaler, loaders, split, tod)


def _trainer(config: RunConfig, run_dir: Path, name: str, max_epochs: int = -1, max_steps: int = -1, callbacks=(), validate=True,
             **trainer_kwargs):
    return L.Trainer(
        **trainer_kwargs,
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        max_epochs=max_epochs,
        max_steps=max_steps,
        callbacks=list(callbacks),
        logger=L.pytorch.loggers.CSVLogger(str(run_dir / "logs"), name=name, version=""),
        enable_checkpointing=bool(validate),
        enable_model_summary=False,
        limit_train_batches=config.limit_train_batches,
        limit_val_batches=1.0 if validate else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        deterministic=False,
    )


def _train_loader(config, prep: Prepared, epochs: int | None, prune: bool = True):
    """The training loader, extra callbacks and trainer options: plain shuffled loader, or the
    sample-pruning loader + callback when ``config.sample_pruning`` is set and ``prune``."""
    method = getattr(config, "sample_pruning", "none")
    if not prune or method == "none":
        return prep.loaders["train"], [], {}
    from .pruning.samples import TRAINER_KWARGS, build_sample_pruning

    sp = build_sample_pruning(prep.loaders["train"].dataset, config.batch_size, config.sample_options(), epochs, config.seed)
    return sp.loader, [sp.callback], dict(TRAINER_KWARGS)


def _fit_early_stopping(config, module, prep, run_dir: Path, name: str, prune: bool = True, epochs: int | None = None) -> float:
    """Train ``module`` for at most ``epochs`` (default ``config.epochs``) with early stopping
    on val MAE; load the best weights; return it."""
    epochs = epochs or config.epochs
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename=name, monitor="val_mae", mode="min", save_top_k=1, enable_version_counter=False)
    stop = L.pytorch.callbacks.EarlyStopping(monitor="val_mae", mode="min", patience=config.patience)
    loader, extra, kw = _train_loader(config, prep, epochs, prune)
    trainer = _trainer(config, run_dir, name, max_epochs=epochs, callbacks=[ckpt, stop, *extra], **kw)
    trainer.fit(module, loader, prep.loaders["val"])
    best = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(best["state_dict"])
    return float(ckpt.best_model_score)


def baselines(prep: Prepared) -> dict:
    """Test metrics of persistence and historical average (fitted on train)."""
    out = {}
    for name in ("persistence", "historical-average"):
        model = create_backbone(name, prep.spec)
        if hasattr(model, "fit"):
            model.fit(prep.data, prep.split.train, prep.tod, prep.scaler)
        out[name.replace("-", "_")] = evaluate(model, prep.loaders["test"], prep.scaler, prep.spec.horizon)["all"]
    return out


def stack_batch(dataset, batch: int) -> dict:
    """A batch of ``batch`` windows from ``dataset`` (cycling if it holds fewer)."""
    items = [dataset[i % len(dataset)] for i in range(batch)]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in ("x", "tod", "dow")}


def measure_costs(dense: torch.nn.Module, pruned: torch.nn.Module, dataset, batch: int = 64, repeats: int = 10) -> dict:
    """Latency (ms per forward at ``batch``), GFLOPs per sample, peak memory and parameters of
    dense and pruned, measured side by side (:func:`sparsest.efficiency.compare_dense_pruned`)."""
    b = stack_batch(dataset, batch)
    dense.eval()
    pruned.eval()
    c = compare_dense_pruned(
        lambda: dense(b["x"], b["tod"], b["dow"]),
        lambda: pruned(b["x"], b["tod"], b["dow"]),
        batch=batch,
        params=(count_parameters(dense), count_parameters(pruned)),
        repeats=repeats,
    )
    d = c.to_dict()
    d["gflops_dense"] /= batch  # per sample
    d["gflops_pruned"] /= batch
    return d


def _unique_dir(parent: Path, stem: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    i = 1
    while True:
        cand = parent / (stem if i == 1 else f"{stem}-{i}")
        if not cand.exists() and not cand.with_name(cand.name + ".partial").exists():
            return cand
        i += 1


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory.*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")


def run(config: RunConfig, console=None) -> tuple[Path, dict]:
    """Run the sensor-pruning job; return ``(run_dir, metrics)``.

    The run is written to ``<out>/<name>.partial`` and renamed to ``<out>/<name>`` only when
    it finished, so an earlier run's outputs are never touched and a failed run is visibly
    partial. Contents: ``config.yaml``, ``metrics.json``, ``sensors.csv``,
    ``sensor_importance.png``, ``checkpoints/{dense,pruned}.ckpt``, ``report.md``, ``logs/``.

    Raises:
        SparsestError: bad data or options (one-line message naming the file / option).
    """
    from .report import write_outputs  # matplotlib only when writing

    config.check()
    _quiet_lightning()
    say = console.print if console is not None else (lambda *a, **k: None)
    t_start = time.perf_counter()
    L.seed_everything(config.seed, verbose=False)
    prep = prepare(config)
    data, spec = prep.data, prep.spec
    n_missing = int(np.isnan(data.values).sum())
    say(
        f"[bold]data[/] {data.name}: {data.kind}, T={data.n_steps}, "
        + (f"N={data.n_nodes}" if data.kind == "graph" else f"H x W={spec.height} x {spec.width}")
        + f", C={data.n_channels}, missing readings {n_missing} ({100 * n_missing / data.values.size:.2f}%, masked)"
    )
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{data.name}_{config.backbone}_{config.scheme}_s{config.sparsity:g}_seed{config.seed}"
    final_dir = _unique_dir(Path(config.out), stem)
    run_dir = final_dir.with_name(final_dir.name + ".partial")
    run_dir.mkdir(parents=True)

    metrics: dict = {"data": data.name, "backbone": config.backbone, "scheme": config.scheme, "seed": config.seed,
                     "units": data.units, "window": spec.window, "horizon": spec.horizon,
                     "missing_readings": n_missing}
    say("[bold]baselines[/] persistence, historical average")
    metrics["baselines"] = baselines(prep)

    # ---- dense
    layout = SensorLayout(data.kind, data.n_nodes if data.kind == "graph" else 0,
                          data.grid_shape if data.kind == "grid" else None, config.patch_size)
    backbone = create_backbone(config.backbone, spec, **config.backbone_options)
    dense = SensorMaskedForecaster(backbone, layout, mask_l1=config.mask_l1)
    set_phase(dense, "finetune")
    dense_module = ForecastModule(dense, prep.scaler, config.lr, config.weight_decay, config.mask_lr)
    t0 = time.perf_counter()
    if config.dense_checkpoint:
        src = Path(config.dense_checkpoint)
        if not src.exists():
            raise ConfigError(f"--dense-checkpoint: {src}: no such file")
        say(f"[bold]dense[/] loading {src}")
        try:
            dense_module.load_state_dict(torch.load(src, map_location="cpu", weights_only=True)["state_dict"])
        except (RuntimeError, KeyError) as e:
            raise ConfigError(f"--dense-checkpoint: {src} does not fit {config.backbone} on {data.name} ({str(e).splitlines()[0][:120]})") from None
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        shutil.copy(src, run_dir / "checkpoints" / "dense.ckpt")
    else:
        say(f"[bold]dense[/] training {config.backbone} (at most {config.epochs} epochs, early stopping on validation MAE)")
        _fit_early_stopping(config, dense_module, prep, run_dir, "dense")
    dense_time = time.perf_counter() - t0

    # ---- sensor search from the dense weights
    pruned = copy.deepcopy(dense)
    settings = SearchSettings(config.sparsity, config.rounds, config.round_steps, config.mask_steps, config.regrow_fraction)
    plan, _ = build_plan(config.scheme, layout.n_sensors, settings)
    init_keep(pruned, config.scheme, settings, config.seed)
    search = SensorSearch(pruned, plan)
    module = ForecastModule(pruned, prep.scaler, config.lr, config.weight_decay, config.mask_lr)
    t0 = time.perf_counter()
    if plan_steps(plan) > 0:
        say(f"[bold]search[/] {config.scheme}: {config.rounds} rounds x ({config.round_steps} network + {config.mask_steps} mask steps) -> sparsity {config.sparsity:g}")
        loader, extra, kw = _train_loader(config, prep, None)  # step-limited: no annealing
        _trainer(config, run_dir, "search", max_steps=plan_steps(plan), callbacks=[search, *extra], validate=False, **kw).fit(module, loader)
    else:
        say(f"[bold]search[/] {config.scheme}: random keep-set, no search")
        for phase in plan:  # zero-step plans still apply their actions
            for action, n in phase.actions:
                search.apply(action, n)
    set_phase(pruned, "finetune")
    pruned.subset = True  # backbones with forward_subset now run on kept sensors only
    search_time = time.perf_counter() - t0
    say(f"[bold]fine-tune[/] keep-set fixed: {int(pruned.keep.sum())} of {pruned.n_sensors} sensors kept")
    t0 = time.perf_counter()
    _fit_early_stopping(config, module, prep, run_dir, "pruned", prune=False, epochs=config.finetune_epochs)
    finetune_time = time.perf_counter() - t0

    # ---- evaluation
    kept_loc = layout.node_mask(pruned.keep)
    off_loc = layout.node_mask(~pruned.keep)
    dense_eval = evaluate(dense, prep.loaders["test"], prep.scaler, spec.horizon, {"kept": kept_loc, "off": off_loc})
    pruned_eval = evaluate(pruned, prep.loaders["test"], prep.scaler, spec.horizon, {"kept": kept_loc, "off": off_loc})
    metrics.update({
        "dense": dense_eval["all"],
        "pruned": pruned_eval["all"],
        "dense_kept_only": dense_eval["kept"],
        "pruned_kept_only": pruned_eval["kept"],
        "pruned_switched_off_only": pruned_eval["off"],
        "sparsity": pruned.sparsity,
        "target_sparsity": config.sparsity,
        "n_sensors": pruned.n_sensors,
        "n_kept": int(pruned.keep.sum()),
        "search_history": search.history,
        "time_s": {"dense_train": dense_time, "search": search_time, "finetune": finetune_time,
                   "total": time.perf_counter() - t_start},
    })
    metrics["mae_increase_pct"] = 100.0 * (metrics["pruned"]["mae"] / metrics["dense"]["mae"] - 1.0)
    metrics["runs_on_kept_sensors_only"] = pruned.runs_subset
    say("[bold]efficiency[/] latency (median of interleaved runs) and FLOPs, dense vs pruned")
    costs = [measure_costs(dense.backbone, pruned, prep.loaders["test"].dataset, batch=b, repeats=config.bench_repeats)
             for b in sorted({1, config.bench_batch})]
    main_cost = costs[-1]
    metrics.update({
        "latency_ms": {"dense": main_cost["latency_ms_dense"], "pruned": main_cost["latency_ms_pruned"],
                       "batch": main_cost["batch"], "speedup": main_cost["speedup"]},
        "gflops": {"dense": main_cost["gflops_dense"], "pruned": main_cost["gflops_pruned"], "per": "sample",
                   "ratio": main_cost["flops_ratio"]},
        "costs": costs,
    })
    write_outputs(run_dir, config, data, layout, pruned, metrics)
    from .deploy import export_pruned
    from .report import sensor_ids

    export_pruned(pruned, prep.scaler, stack_batch(prep.loaders["test"].dataset, 2), run_dir / "deploy",
                  sensor_ids(data, layout), data.units)
    os.replace(run_dir, final_dir)
    shutil.rmtree(final_dir / "logs" / "search" / "checkpoints", ignore_errors=True)
    return final_dir, metrics
