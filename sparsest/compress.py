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
   samples are removed for good; saved eagerly (``compact.pt``) and as TorchScript
   (``compact.ts``, :func:`~sparsest.pruning.adaptive.to_torchscript`) when it can be
   exported (else the reason is in ``metrics.json`` ``compaction.torchscript_error``).
5. Test MSE / MAE (physical units), GFLOPs per sample, latency at batch 1 (Dyna-Pruner's
   gated execution) and batch 64 (the compact model), all models interleaved in one
   measurement (:mod:`sparsest.efficiency`), robustness (Gaussian input noise, mask
   failure), importance-map PNGs, the compressed model.

Library code: reads no argv or config files; the CLI builds a :class:`CompressConfig`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .backbones import create_backbone, get_backbone_entry
from .efficiency import count_flops, count_parameters, measure_latency_ms
from .engine.module import ForecastModule, evaluate
from .errors import ConfigError
from .experiment import RunConfig, _quiet_lightning, _trainer, _unique_dir, prepare, stack_batch
from .pruning.adaptive import DynaPruner, evaluate_perturbed, l1_filter_prune, match_flops_ratio, to_torchscript, torch_pruning_error

ROWS = ("dense", "dyna", "mp", "random")
NOISE_SIGMAS = (0.01, 0.05)
MASK_FAILURES = (0.05, 0.10)


@dataclass
class CompressConfig:
    """Every option of ``sparsest compress``.

    Attributes (units in brackets):
        data: a grid data set name (e.g. ``era5-t2m-uk``) or a grid file.
        backbone: a grid backbone (simvp, tau, convlstm, ...).
        data_sparsity: s_d, fraction of pixels pruned per sample, in [0, 1) (paper: 0.7);
            0 = no data mask ("MP only").
        model_sparsity: s_w, target fraction of gated units off per sample, in [0, 1) (0.7);
            0 = no channel gating ("DP only"). Not both 0.
        epochs: training epochs of every row (dense, Dyna-Pruner, MP, random) after the
            shared dense pre-training: the same budget for all rows.
        pretrain_epochs: dense pre-training epochs (default: ``epochs``).
        seed: random seed.
        out: parent folder of run directories.
        data_dir: folder holding the named data sets.
        window, horizon: input / forecast length [time steps]; default per data set.
        batch_size: windows per training batch.
        lr, weight_decay: AdamW settings of the networks (and mask generator).
        tau_lr: learning rate of the thresholds tau.
        limit_train_batches: fraction or count of batches per epoch (quick runs / tests).
        min_usage: the static compact model removes units active for fewer than this
            fraction of the training samples.
        fill: what pruned pixels show the backbone: ``last`` (their last value) or
            ``zero`` (the paper's X * M); see :func:`sparsest.pruning.adaptive.apply_data_mask`.
        baselines: also train MP and random (the comparison rows).
        bench_repeats: timed repeats per model in the latency measurement (median).
        latency_samples: test windows timed one by one at batch 1 (masks differ per sample).
        n_maps: importance-map PNGs written (test windows spread over the split).
        backbone_options: extra keyword arguments for the backbone.
    """

    data: str = "era5-t2m-uk"
    backbone: str = "simvp"
    data_sparsity: float = 0.7
    model_sparsity: float = 0.7
    epochs: int = 3
    pretrain_epochs: int | None = None
    seed: int = 0
    out: str = "runs"
    data_dir: str | None = None
    window: int | None = None
    horizon: int | None = None
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    tau_lr: float = 0.01
    limit_train_batches: float | int = 1.0
    min_usage: float = 0.05
    fill: str = "last"
    baselines: bool = True
    bench_repeats: int = 10
    latency_samples: int = 8
    n_maps: int = 3
    backbone_options: dict = field(default_factory=dict)

    def check(self) -> "CompressConfig":
        """Validate option values.

        Raises:
            ConfigError: naming the option.
        """
        for name in ("data_sparsity", "model_sparsity"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be in [0, 1), got {v}")
        for name in ("epochs", "batch_size", "bench_repeats", "latency_samples"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(self, name)}")
        if self.pretrain_epochs is not None and int(self.pretrain_epochs) < 1:
            raise ConfigError(f"--pretrain-epochs: must be >= 1, got {self.pretrain_epochs}")
        if self.n_maps < 0:
            raise ConfigError(f"--n-maps: must be >= 0, got {self.n_maps}")
        if self.data_sparsity == 0 and self.model_sparsity == 0:
            raise ConfigError("--data-sparsity / --model-sparsity: both 0 prunes nothing (that is the dense row); set at least one > 0")
        if not 0 <= self.min_usage < 1:
            raise ConfigError(f"--min-usage: must be in [0, 1), got {self.min_usage}")
        if self.fill not in ("last", "zero"):
            raise ConfigError(f"--fill: must be 'last' or 'zero', got {self.fill!r}")
        if self.lr <= 0 or self.tau_lr <= 0:
            raise ConfigError(f"--lr / --tau-lr: must be > 0, got {self.lr} / {self.tau_lr}")
        entry = get_backbone_entry(self.backbone)
        if entry.kind not in ("grid", "any") or not entry.trainable:
            raise ConfigError(f"--backbone: Dyna-Pruner gates the convolutions of a trainable grid backbone; {self.backbone} is not one")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def run_config(self) -> RunConfig:
        """The :class:`~sparsest.experiment.RunConfig` used for data loading and trainers."""
        return RunConfig(data=self.data, backbone=self.backbone, epochs=self.epochs, seed=self.seed, out=self.out,
                         data_dir=self.data_dir, window=self.window, horizon=self.horizon, batch_size=self.batch_size,
                         lr=self.lr, weight_decay=self.weight_decay, limit_train_batches=self.limit_train_batches)


class AdaptiveModule(ForecastModule):
    """:class:`~sparsest.engine.module.ForecastModule` whose optimiser gives the thresholds
    ``tau`` their own learning rate (``tau_lr``) and no weight decay. The loss is the
    module's masked MAE plus the wrapper's ``penalty()`` (Dyna-Pruner Eq. 4 + target)."""

    def __init__(self, model, scaler, lr: float, weight_decay: float, tau_lr: float):
        super().__init__(model, scaler, lr, weight_decay)
        self.tau_lr = tau_lr

    def configure_optimizers(self):
        tau = [p for n, p in self.model.named_parameters() if n == "tau"]
        rest = [p for n, p in self.model.named_parameters() if n != "tau"]
        groups = [{"params": rest, "lr": self.lr, "weight_decay": self.weight_decay}]
        if tau:
            groups.append({"params": tau, "lr": self.tau_lr, "weight_decay": 0.0})
        return torch.optim.AdamW(groups)


def _fit(rc: RunConfig, module, prep, run_dir: Path, name: str, epochs: int) -> float:
    """Train ``epochs`` epochs; keep (load) the weights of the best validation-MAE epoch."""
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename=name, monitor="val_mae",
                                               mode="min", save_top_k=1, enable_version_counter=False)
    trainer = _trainer(rc, run_dir, name, max_epochs=epochs, callbacks=[ckpt])
    trainer.fit(module, prep.loaders["train"], prep.loaders["val"])
    best = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(best["state_dict"])
    return float(ckpt.best_model_score)


def _samples(dataset, n: int) -> list[dict]:
    """``n`` single-window batches spread evenly over ``dataset``."""
    idx = np.linspace(0, len(dataset) - 1, n).round().astype(int)
    return [{k: torch.as_tensor(dataset[i][k])[None] for k in ("x", "y", "tod", "dow", "t0")} for i in idx]


def _per_sample(model, samples) -> callable:
    def fn():
        for s in samples:
            model(s["x"], s["tod"], s["dow"])
    return fn


def measure(models: dict, samples: list[dict], batch64: dict, repeats: int) -> dict:
    """GFLOPs per sample and latency (ms per sample at batch 1; ms per batch at 64).

    Args:
        models: name -> ``(model_b1, model_b64)`` (either may be None to skip), in eval
            mode; ``model_b1`` runs each window of ``samples`` alone.
        samples: single-window batches (:func:`_samples`).
        batch64: a batch of 64 windows (``x``, ``tod``, ``dow``).
        repeats: timed repeats (median reported); models are interleaved within a round.
    """
    out: dict = {name: {} for name in models}
    for name, (m1, _) in models.items():
        if m1 is not None:
            out[name]["gflops"] = float(np.mean([count_flops(lambda s=s: m1(s["x"], s["tod"], s["dow"])) for s in samples])) / 1e9
    lat1 = measure_latency_ms({n: _per_sample(m1, samples) for n, (m1, _) in models.items() if m1 is not None}, warmup=2, repeats=repeats)
    for n, v in lat1.items():
        out[n]["latency_ms_b1"] = v["median_ms"] / len(samples)
    b = batch64
    fns = {n: (lambda m=m64: m(b["x"], b["tod"], b["dow"])) for n, (_, m64) in models.items() if m64 is not None}
    lat64 = measure_latency_ms(fns, warmup=1, repeats=max(3, repeats // 2))
    for n, v in lat64.items():
        out[n]["latency_ms_b64"] = v["median_ms"]
        out[n]["gflops_b64_per_sample"] = count_flops(fns[n]) / 1e9 / b["x"].shape[0]
    return out


def measure_rows(models: dict, compact: DynaPruner, samples: list[dict], batch64: dict, repeats: int, seed: int = 0) -> dict:
    """:func:`measure` for the rows of a compress run: dense (b1, b64), Dyna-Pruner gated
    (b1), its compact model (b64), MP (b1, b64) and random gated (b1), when present."""
    dyna = models["dyna"]
    torch.manual_seed(seed)
    cost_models = {"dense": (models["dense"], models["dense"]), "dyna": (dyna, None), "compact": (None, compact)}
    if "mp" in models:
        cost_models["mp"] = (models["mp"], models["mp"])
        cost_models["random"] = (models["random"], None)
    gated = [m for m in (dyna, models.get("random")) if m is not None]
    for m in gated:
        m.mode = "gated"
    try:
        return measure(cost_models, samples, batch64, repeats)
    finally:
        for m in gated:
            m.mode = "masked"


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
    try:
        cfg = CompressConfig(**json.loads((run_dir / "config.json").read_text()))
        metrics = json.loads((run_dir / "metrics.json").read_text())
        compaction = json.loads((run_dir / "model" / "compaction.json").read_text())
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{run_dir}: not a finished compress run ({e})") from None
    say = console.print if console is not None else (lambda *a, **k: None)
    prep = prepare(cfg.run_config())
    spec = prep.spec

    def state(name):
        sd = torch.load(run_dir / "checkpoints" / f"{name}.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        return {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}

    def backbone():
        return create_backbone(cfg.backbone, spec, **cfg.backbone_options)

    def wrapper(policy):
        return DynaPruner(backbone(), spec, cfg.data_sparsity, cfg.model_sparsity, policy=policy, fill=cfg.fill)

    models = {"dense": backbone(), "dyna": wrapper("dyna")}
    models["dense"].load_state_dict(state("dense"))
    models["dyna"].load_state_dict(state("dynapruner"))
    if "mp" in metrics:
        models["mp"] = l1_filter_prune(backbone(), metrics["mp"]["pruning_ratio"])
        models["mp"].load_state_dict(state("mp"))
        models["random"] = wrapper("random")
        models["random"].load_state_dict(state("random"))
    for m in models.values():
        m.eval()
    compact = copy.deepcopy(models["dyna"])
    compact.compact(torch.tensor(compaction["usage"]), compaction["min_usage"])
    test_ds = prep.loaders["test"].dataset
    say(f"[bold]re-measuring[/] {run_dir.name}")
    costs = measure_rows(models, compact, _samples(test_ds, cfg.latency_samples), stack_batch(test_ds, 64),
                         repeats or cfg.bench_repeats, cfg.seed)
    new = _cost_entries(costs)
    (run_dir / "metrics_remeasured.json").write_text(json.dumps({**new, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))
    merged = json.loads(json.dumps(metrics))
    for key, val in new.items():
        merged.setdefault(key, {}).update(val)
    merged["remeasured"] = True
    return merged


def _cost_entries(costs: dict) -> dict:
    """metrics.json cost entries from :func:`measure_rows` output."""
    d, p, c = costs["dense"], costs["dyna"], costs["compact"]
    out = {
        "gflops": {"dense": d["gflops"], "pruned": p["gflops"], "compact_b64": c["gflops_b64_per_sample"],
                   "reduction": 1 - p["gflops"] / d["gflops"]},
        "latency_ms_b1": {"dense": d["latency_ms_b1"], "pruned": p["latency_ms_b1"], "speedup": d["latency_ms_b1"] / p["latency_ms_b1"]},
        "latency_ms_b64": {"dense": d["latency_ms_b64"], "pruned": c["latency_ms_b64"], "speedup": d["latency_ms_b64"] / c["latency_ms_b64"]},
    }
    for name in ("mp", "random"):
        if name in costs:
            out[name] = {k: v for k, v in costs[name].items() if k in ("gflops", "latency_ms_b1", "latency_ms_b64")}
    return out


def _plot_maps(model: DynaPruner, samples: list[dict], scaler, out_dir: Path, units: str) -> list[str]:
    """Per-sample PNG: last input frame, importance S with the data mask, |future change|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    mean, std = (t.float() for t in scaler.tensors())
    model.eval()
    names = []
    for s in samples:
        with torch.no_grad():
            model(s["x"], s["tod"], s["dow"])
        S = model.last["S"][0].numpy()
        keep = model.last["data_mask"][0].detach().numpy() > 0.5
        x_last = (s["x"][0, -1] * std.view(-1, 1, 1) + mean.view(-1, 1, 1))[0].numpy()  # physical, channel 0
        change = np.abs(s["y"][0, -1, 0].numpy() - x_last)
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for ax, img, title, cmap in ((axes[0], x_last, f"input, last frame ({units})", "coolwarm"),
                                     (axes[1], S, "importance S (outline: kept pixels)", "viridis"),
                                     (axes[2], change, f"|future change| at the last step ({units})", "magma")):
            im = ax.imshow(img, cmap=cmap, aspect="auto")
            fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[1].contour(keep.astype(float), levels=[0.5], colors="white", linewidths=0.6)
        fig.suptitle(f"window t0={int(s['t0'])}: data mask keeps {keep.mean():.0%} of pixels, "
                     f"{float(model.last['filter_mask'][0].mean()):.0%} of gated units active", fontsize=10)
        fig.tight_layout()
        name = f"importance_t0_{int(s['t0'])}.png"
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def _metrics(ev: dict) -> dict:
    return {"mse": ev["mse"], "mae": ev["mae"], "rmse": ev["rmse"]}


def start_run(config: CompressConfig, console=None):
    """What every Dyna-Pruner run does first: check the options, seed, load and window the
    grid data. Returns ``(say, t_start, run_config, prep)`` (``say`` prints to ``console`` or
    nowhere; ``prep`` as :func:`sparsest.experiment.prepare`).

    Raises:
        ConfigError: bad options, or ``--data`` is not a grid data set.
    """
    config.check()
    _quiet_lightning()
    say = console.print if console is not None else (lambda *a, **k: None)
    t_start = time.perf_counter()
    L.seed_everything(config.seed, verbose=False)
    rc = config.run_config()
    prep = prepare(rc)
    data = prep.data
    if data.kind != "grid":
        raise ConfigError(f"--data: Dyna-Pruner needs grid data (frames [T, C, H, W]); {data.name} is a {data.kind}")
    return say, t_start, rc, prep


def compress(config: CompressConfig, console=None) -> tuple[Path, dict]:
    """Run Dyna-Pruner and its baselines; return ``(run_dir, metrics)``.

    Written to ``<out>/<time>_<data>_<backbone>_dynapruner_sd<s_d>_sw<s_w>_seed<k>.partial``
    and renamed without ``.partial`` only when finished, so a failed run never touches an
    earlier one. Contents: ``config.json``, ``metrics.json`` (keys ``mse``, ``mae``,
    ``gflops``, ``latency_ms_b1``, ``latency_ms_b64`` each with ``dense`` / ``pruned``;
    rows ``mp`` and ``random``; ``robustness``; ``compaction``), ``importance_maps/*.png``,
    ``model/`` (``dynapruner_state.pt`` state dict of the compact Dyna-Pruner,
    ``compact.pt`` the whole compact module for ``torch.load(..., weights_only=False)``,
    ``compact.ts`` the same model as TorchScript, ``torch.jit.load(path)(x)`` with x
    ``[B, T, C, H, W]`` scaled (absent if it cannot be exported: ``metrics.json``
    ``compaction.torchscript_error`` says why; on success ``compaction.torchscript`` says
    how, script or trace), ``compaction.json``), ``checkpoints/``, ``logs/``.

    Raises:
        SparsestError: bad data or options (one-line message naming the file / option).
    """
    say, t_start, rc, prep = start_run(config, console)
    data, spec = prep.data, prep.spec
    say(f"[bold]data[/] {data.name}: H x W = {spec.height} x {spec.width}, C = {spec.n_channels}, "
        f"T = {spec.window} -> S = {spec.horizon}, train windows {len(prep.loaders['train'].dataset)}")
    stem = (f"{time.strftime('%Y%m%d-%H%M%S')}_{data.name}_{config.backbone}_dynapruner"
            f"_sd{config.data_sparsity:g}_sw{config.model_sparsity:g}_seed{config.seed}")
    final_dir = _unique_dir(Path(config.out), stem)
    run_dir = final_dir.with_name(final_dir.name + ".partial")
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    times: dict = {}
    pre_epochs = config.pretrain_epochs or config.epochs

    def module_for(model):
        return AdaptiveModule(model, prep.scaler, config.lr, config.weight_decay, config.tau_lr)

    # ---- shared dense pre-training
    t0 = time.perf_counter()
    backbone = create_backbone(config.backbone, spec, **config.backbone_options)
    say(f"[bold]dense pre-training[/] {config.backbone}: {pre_epochs} epochs")
    _fit(rc, module_for(backbone), prep, run_dir, "pretrain", pre_epochs)
    pretrained = copy.deepcopy(backbone)
    times["pretrain"] = time.perf_counter() - t0

    models: dict = {}
    say(f"[bold]dense[/] {config.epochs} more epochs")
    t0 = time.perf_counter()
    _fit(rc, module_for(backbone), prep, run_dir, "dense", config.epochs)
    models["dense"] = backbone.eval()
    times["dense"] = time.perf_counter() - t0

    def wrapper(policy):
        return DynaPruner(copy.deepcopy(pretrained), spec, config.data_sparsity, config.model_sparsity, policy=policy, fill=config.fill)

    say(f"[bold]Dyna-Pruner[/] s_d={config.data_sparsity:g}, s_w={config.model_sparsity:g}: {config.epochs} epochs")
    t0 = time.perf_counter()
    dyna = wrapper("dyna")
    dyna.calibrate_thresholds(next(iter(prep.loaders["train"]))["x"])
    _fit(rc, module_for(dyna), prep, run_dir, "dynapruner", config.epochs)
    models["dyna"] = dyna.eval()
    times["dyna"] = time.perf_counter() - t0

    test_ds = prep.loaders["test"].dataset
    samples = _samples(test_ds, config.latency_samples)
    dyna.mode = "gated"
    dyna_flops = float(np.mean([count_flops(lambda s=s: dyna(s["x"], s["tod"], s["dow"])) for s in samples]))
    dyna.mode = "masked"
    mp_info: dict = {}
    if config.baselines:
        x1 = samples[0]["x"]
        mp_info["torch_pruning_error"] = torch_pruning_error(pretrained, x1)
        ratio = match_flops_ratio(pretrained, x1, dyna_flops)
        mp_info.update({"pruning_ratio": ratio, "engine": "own L1 channel slicing (sparsest.pruning.adaptive.baselines)"})
        say(f"[bold]MP[/] L1 pruning ratio {ratio:.3f} (FLOPs matched to Dyna-Pruner), {config.epochs} epochs"
            + (f"; Torch-Pruning cannot cut {config.backbone}: {mp_info['torch_pruning_error']}" if mp_info["torch_pruning_error"] else ""))
        t0 = time.perf_counter()
        mp = l1_filter_prune(pretrained, ratio)
        _fit(rc, module_for(mp), prep, run_dir, "mp", config.epochs)
        models["mp"] = mp.eval()
        times["mp"] = time.perf_counter() - t0
        say(f"[bold]random[/] random data and unit masks at the same sparsities, {config.epochs} epochs")
        t0 = time.perf_counter()
        rnd = wrapper("random")
        _fit(rc, module_for(rnd), prep, run_dir, "random", config.epochs)
        models["random"] = rnd.eval()
        times["random"] = time.perf_counter() - t0

    # ---- static compaction from training-set usage
    say(f"[bold]compaction[/] removing units active for < {config.min_usage:.0%} of training samples")
    usage = dyna.filter_usage(prep.loaders["train"])
    compact = copy.deepcopy(dyna)
    compaction = compact.compact(usage, config.min_usage)
    compact.eval()

    # ---- accuracy
    say("[bold]evaluation[/] test MSE / MAE")
    L.seed_everything(config.seed + 1, verbose=False)  # the random row's masks at test time
    ev = {name: _metrics(evaluate(m, prep.loaders["test"], prep.scaler, spec.horizon)["all"]) for name, m in models.items()}
    ev["compact"] = _metrics(evaluate(compact, prep.loaders["test"], prep.scaler, spec.horizon)["all"])

    # ---- costs, all models interleaved
    say("[bold]efficiency[/] GFLOPs and latency, interleaved (batch 1 per sample, batch 64)")
    costs = measure_rows(models, compact, samples, stack_batch(test_ds, 64), config.bench_repeats, config.seed)

    # ---- active fraction per test sample
    active = []
    with torch.no_grad():
        for batch in prep.loaders["test"]:
            dyna(batch["x"], batch["tod"], batch["dow"])
            active.append(dyna.last["filter_mask"].detach().mean(1))
    active = torch.cat(active)

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
    maps = _plot_maps(dyna, _samples(test_ds, config.n_maps), prep.scaler, run_dir / "importance_maps", data.units) if config.n_maps else []
    model_dir = run_dir / "model"
    model_dir.mkdir()
    torch.save(compact.state_dict(), model_dir / "dynapruner_state.pt")
    torch.save(compact, model_dir / "compact.pt")
    scripted, ts_info = to_torchscript(compact, torch.cat([s["x"] for s in samples[:2]]))
    if scripted is not None:
        torch.jit.save(scripted, str(model_dir / "compact.ts"))
        compaction["torchscript"] = {"path": "model/compact.ts", **ts_info}
    else:
        compaction["torchscript_error"] = ts_info["error"]
        if "script_error" in ts_info:
            compaction["torchscript_script_error"] = ts_info["script_error"]
    (model_dir / "compaction.json").write_text(json.dumps({**compaction, "gates": compact.gate_names,
                                                           "usage": usage.tolist()}, indent=1))

    cost = _cost_entries(costs)
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
    metrics["mse_increase_pct"] = 100 * (metrics["mse"]["pruned"] / metrics["mse"]["dense"] - 1)
    metrics["time_s"] = {**times, "total": time.perf_counter() - t_start}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    os.replace(run_dir, final_dir)
    return final_dir, metrics


def summary(metrics: dict, console, run_dir: Path | None = None) -> None:
    """Rich table of one compress run (accuracy, GFLOPs, latency per row)."""
    from rich.table import Table

    t = Table(title=f"{metrics['data']} · {metrics['backbone']} · Dyna-Pruner s_d={metrics['data_sparsity']:g} s_w={metrics['model_sparsity']:g}")
    for col in ("row", f"MSE ({metrics['units']}²)", f"MAE ({metrics['units']})", "GFLOPs/sample", "ms b1", "ms b64"):
        t.add_column(col, justify="left" if col == "row" else "right")
    rows = [("dense", metrics["mse"]["dense"], metrics["mae"]["dense"], metrics["gflops"]["dense"],
             metrics["latency_ms_b1"]["dense"], metrics["latency_ms_b64"]["dense"]),
            ("Dyna-Pruner", metrics["mse"]["pruned"], metrics["mae"]["pruned"], metrics["gflops"]["pruned"],
             metrics["latency_ms_b1"]["pruned"], metrics["latency_ms_b64"]["pruned"])]
    for name in ("mp", "random"):
        if name in metrics:
            r = metrics[name]
            rows.append((name.upper() if name == "mp" else name, r["mse"], r["mae"], r["gflops"], r["latency_ms_b1"], r.get("latency_ms_b64")))
    for r in rows:
        t.add_row(r[0], *(f"{v:.4f}" if v is not None else "-" for v in r[1:4]), *(f"{v:.1f}" if v is not None else "-" for v in r[4:]))
    console.print(t)
    console.print(f"GFLOPs -{100 * metrics['gflops']['reduction']:.1f}%, batch-1 speedup x{metrics['latency_ms_b1']['speedup']:.2f}, "
                  f"compact batch-64 speedup x{metrics['latency_ms_b64']['speedup']:.2f}, MSE {metrics['mse_increase_pct']:+.2f}% vs dense")
    if run_dir is not None:
        console.print(f"run directory: {run_dir}")


# ---------------------------------------------------------------- command line and bench

COMPRESS_HELP = {
    "data": "grid data set name (see `sparsest datasets`) or grid file [default: era5-t2m-uk]",
    "backbone": "grid backbone: simvp, tau, convlstm (see `sparsest backbones`) [default: simvp]",
    "data_sparsity": "s_d: fraction of pixels pruned per sample, in [0, 1); 0 = no data mask (channel gating only) [default: 0.7]",
    "model_sparsity": "s_w: target fraction of gated channels off per sample, in [0, 1); 0 = no channel gating (data mask only); "
                      "not both 0 [default: 0.7]",
    "epochs": "training epochs of every row (dense, Dyna-Pruner, MP, random) after the shared dense pre-training [default: 3]",
    "pretrain_epochs": "dense pre-training epochs [default: --epochs]",
    "seed": "random seed [default: 0]",
    "out": "parent folder for run directories; each run gets a new one [default: runs]",
    "data_dir": "folder with the named data sets [default: $SPARSEST_DATA_DIR, else ../shared/data]",
    "batch_size": "windows per training batch [default: 32]",
    "lr": "learning rate (AdamW) [default: 0.002]",
    "tau_lr": "learning rate of the learnable thresholds [default: 0.01]",
    "limit_train_batches": "batches per epoch: fraction (<= 1.0) or count, for quick runs [default: 1.0]",
    "min_usage": "static compact model: remove channels active for fewer than this fraction of training samples [default: 0.05]",
    "fill": "what pruned pixels show the backbone: last (their last value) or zero (paper's X*M) [default: last]",
    "bench_repeats": "timed repeats per model in the latency measurement (median) [default: 10]",
    "n_maps": "importance-map PNGs to write [default: 3]",
}


def add_compress_parser(sub):
    """The ``sparsest compress`` subparser (wired by :mod:`sparsest.cli`)."""
    p = sub.add_parser(
        "compress",
        help="Dyna-Pruner: input-adaptive data + channel co-pruning of a grid backbone, with MP and random baselines",
        description="Pre-train a dense grid backbone, then train dense / Dyna-Pruner / MP / random with the same budget; "
        "write metrics.json (MSE, MAE, GFLOPs, latency at batch 1 and 64, robustness), importance-map PNGs and the "
        "compressed model to a new run directory.",
    )
    types = {f.name: str(f.type).replace("'", "") for f in dataclasses.fields(CompressConfig)}
    for name, text in COMPRESS_HELP.items():
        conv = {"int": int, "float": float, "int | None": int, "str | None": str, "str": str}.get(types[name], str)
        if name == "limit_train_batches":
            conv = lambda v: float(v) if "." in v else int(v)  # noqa: E731
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=conv, default=argparse_suppress(), help=text)
    p.add_argument("--no-baselines", dest="baselines", action="store_false", default=argparse_suppress(),
                   help="skip the MP and random rows (faster)")
    return p


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def run_compress_cli(args, console) -> int:
    """Handler of ``sparsest compress``: build the config, run, print the summary."""
    values = {k: v for k, v in vars(args).items() if k != "command"}
    config = CompressConfig(**values)
    run_dir, metrics = compress(config, console=console)
    summary(metrics, console, run_dir)
    return 0


def table_rows(metrics_list: list[tuple[dict, Path | None]]):
    """Table I (one row per backbone x method) and Table II (robustness) as DataFrames."""
    import pandas as pd

    t1, t2 = [], []
    for m, run_dir in metrics_list:
        base = {"dataset": m["data"], "backbone": m["backbone"], "seed": m["seed"]}
        dense_mse, dense_gf = m["mse"]["dense"], m["gflops"]["dense"]
        rows = [("Dense", m["mse"]["dense"], m["mae"]["dense"], m["gflops"]["dense"], m["latency_ms_b1"]["dense"], m["latency_ms_b64"]["dense"])]
        if "mp" in m:
            r = m["mp"]
            rows.append(("MP (L1, matched FLOPs)", r["mse"], r["mae"], r["gflops"], r["latency_ms_b1"], r.get("latency_ms_b64")))
            r = m["random"]
            rows.append(("Random", r["mse"], r["mae"], r["gflops"], r["latency_ms_b1"], r.get("latency_ms_b64")))
        rows.append(("Dyna-Pruner", m["mse"]["pruned"], m["mae"]["pruned"], m["gflops"]["pruned"], m["latency_ms_b1"]["pruned"],
                     m["latency_ms_b64"]["pruned"]))
        for method, mse, mae, gf, l1, l64 in rows:
            t1.append({**base, "method": method, "mse": mse, "mse_change_%": 100 * (mse / dense_mse - 1), "mae": mae,
                       "gflops": gf, "gflops_change_%": 100 * (gf / dense_gf - 1), "latency_ms_b1": l1,
                       "speedup_b1": m["latency_ms_b1"]["dense"] / l1 if l1 else None,
                       "latency_ms_b64": l64, "speedup_b64": (m["latency_ms_b64"]["dense"] / l64) if l64 else None,
                       "run_dir": str(run_dir) if run_dir else ""})
        names = {"dense": "Dense", "random": "Random", "dyna": "Dyna-Pruner"}
        for key, r in m["robustness"].items():
            row = {**base, "method": names[key], "clean_mse": r["clean"]}
            for k, v in r.items():
                if k != "clean":
                    row[k] = v
                    row[k + "_change_%"] = None if v is None else 100 * (v / r["clean"] - 1)
            t2.append(row)
    return pd.DataFrame(t1), pd.DataFrame(t2)


def write_bench_tables(metrics_list, out: Path, header: str) -> dict[str, Path]:
    """Write ``dynapruner_table1.{md,csv}`` and ``dynapruner_table2.{md,csv}`` under ``out``."""
    from .bench import _md

    out.mkdir(parents=True, exist_ok=True)
    t1, t2 = table_rows(metrics_list)
    paths = {}
    for name, df, title in (("dynapruner_table1", t1.drop(columns=["run_dir"]), "Table I: Dyna-Pruner vs dense, MP and random (test MSE / MAE, GFLOPs per sample, latency)"),
                            ("dynapruner_table2", t2, "Table II: robustness, test MSE under Gaussian input noise (sigma, scaled units) and mask failure")):
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(f"### {title}\n\n{header}\n\n{_md(df)}\n")
        paths[name] = out / f"{name}.md"
    t1.to_csv(out / "dynapruner_runs.csv", index=False)
    return paths


def _suite_options(args) -> dict:
    """CompressConfig options shared by every run of the bench suite (``--set``,
    ``--epochs``, ``--quick``, ``--data-dir``).

    Raises:
        ConfigError: a bad ``--set`` key.
    """
    from .cli import _parse_set

    opts = _parse_set(args.set, CompressConfig)
    if args.epochs is not None:
        opts["epochs"] = args.epochs
    if args.quick:
        opts = {"epochs": 1, "limit_train_batches": 3, "bench_repeats": 3, "latency_samples": 2, "n_maps": 1, **opts}
    if args.data_dir is not None:
        opts["data_dir"] = args.data_dir
    return opts


def _grid_datasets(names, console) -> list[str]:
    from .datasets import get_dataset_entry

    datasets = []
    for name in names:
        try:
            kind = get_dataset_entry(name).kind
        except Exception:  # noqa: BLE001 - a path: let compress() decide
            kind = "grid"
        if kind == "grid":
            datasets.append(name)
        else:
            console.print(f"dyna-pruner suite: skipping {name} ({kind} data; Dyna-Pruner gates grid backbones)")
    if not datasets:
        raise ConfigError("--datasets: the dyna-pruner suite needs a grid data set, e.g. era5-t2m-uk")
    return datasets


def bench_suite(args, console) -> int:
    """``sparsest bench --suite dyna-pruner``: the paper's Tables I-IV of Dyna-Pruner.

    ``args.tables`` picks them (default 1 2): Tables I (accuracy and cost vs dense, MP and
    random) and II (robustness) come from one :func:`compress` run per data set x backbone
    x seed (backbones default simvp convlstm tau); Tables III (sensitivity to s_d, s_w)
    and IV (ablation) from one :func:`sparsest.compress_study.run_study` per data set x
    backbone x seed (backbones default simvp, as the paper). Also reads
    ``args.datasets`` (grid ones only), ``args.backbones``, ``args.seeds``, ``args.epochs``,
    ``args.quick`` (1 epoch of 3 batches), ``args.data_dir``, ``args.set`` (CompressConfig
    keys), ``args.from_runs`` and ``args.out``; writes ``dynapruner_table<k>.{md,csv}``
    there and every run under ``<out>/runs``.

    With ``--from-runs`` nothing is trained: compress runs give Tables I-II, study runs
    (``method: dynapruner-study``) Tables III-IV; without ``--tables`` every table the runs
    support is written.

    Raises:
        ConfigError: no grid data set given, a bad ``--set`` key or ``--tables`` value, or
            (``--from-runs``) no finished run for a requested table.
    """
    import platform

    from .compress_study import METHOD as STUDY
    from .compress_study import run_study, write_study_tables

    out = Path(args.out)
    requested = getattr(args, "tables", None)
    if requested is not None and not set(requested) <= {1, 2, 3, 4}:
        raise ConfigError(f"--tables: the dyna-pruner suite has Tables 1, 2, 3 and 4, got {requested}")
    metrics_list, studies = [], []
    t0 = time.perf_counter()
    if getattr(args, "from_runs", None):
        for d in args.from_runs:
            for mpath in sorted(Path(d).glob("*/metrics.json")):
                if mpath.parent.name.endswith(".partial"):
                    continue
                m = json.loads(mpath.read_text())
                if m.get("method") == "dynapruner":
                    metrics_list.append((m, mpath.parent))
                elif m.get("method") == STUDY:
                    studies.append((m, mpath.parent))
        if not metrics_list and not studies:
            raise ConfigError(f"--from-runs: no finished Dyna-Pruner run under {', '.join(args.from_runs)}")
        tables = set(requested) if requested else ({1, 2} if metrics_list else set()) | {t for m, _ in studies for t in m["tables"]}
        if tables & {1, 2} and not metrics_list:
            raise ConfigError(f"--tables 1 2: no finished compress run (Tables I-II) under {', '.join(args.from_runs)}")
        source = f"rebuilt from {len(metrics_list) + len(studies)} run directories"
    else:
        tables = set(requested or (1, 2))
        datasets = _grid_datasets(args.datasets, console)
        opts = _suite_options(args)
        jobs = []
        if tables & {1, 2}:
            jobs += [("compress", d, b, s) for d in datasets for b in (args.backbones or ["simvp", "convlstm", "tau"]) for s in args.seeds]
        if tables & {3, 4}:
            jobs += [("study", d, b, s) for d in datasets for b in (args.backbones or ["simvp"]) for s in args.seeds]
        for i, (what, d, b, s) in enumerate(jobs, 1):
            console.print(f"[{i}/{len(jobs)}] {what} {d} {b} seed {s} ({time.perf_counter() - t0:.0f} s so far)")
            cfg = CompressConfig(data=d, backbone=b, seed=s, out=str(out / "runs"), **opts)
            if what == "compress":
                run_dir, m = compress(cfg, console=console)
                summary(m, console, run_dir)
                metrics_list.append((m, run_dir))
            else:
                run_dir, m = run_study(cfg, tables=sorted(tables & {3, 4}), console=console)
                console.print(f"run directory: {run_dir}")
                studies.append((m, run_dir))
        source = f"{'quick' if args.quick else 'full'} mode; {(time.perf_counter() - t0) / 60:.1f} min"
    header = (f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; "
              f"{time.strftime('%Y-%m-%d')}; {source}.")
    paths = {}
    if tables & {1, 2}:
        paths.update(write_bench_tables(metrics_list, out, header + " Latency: ms per sample at batch 1 (Dyna-Pruner: gated "
                                        "execution), ms per batch at 64 (Dyna-Pruner: static compact model), models interleaved "
                                        "in one measurement."))
    if tables & {3, 4}:
        budgets = sorted({f"{m['pretrain_epochs']} + {m['epochs']}" for m, _ in studies})
        paths.update(write_study_tables(studies, out, header + f" Epochs (shared dense pre-training + per row): {', '.join(budgets)}. "
                                        "Latency: ms per window at batch 1, Dyna-Pruner rows on their gated path, all rows of a "
                                        "run interleaved in one measurement.", sorted(tables & {3, 4})))
    for p in paths.values():
        console.print(p.read_text(), markup=False, highlight=False)
    console.print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 0


__all__ = ["CompressConfig", "compress", "remeasure", "summary", "bench_suite", "add_compress_parser", "run_compress_cli", "measure",
           "measure_rows", "AdaptiveModule"]
