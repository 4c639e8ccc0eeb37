"""Why radar fine-tunings jump: the dense fine-tuning of a finished ``sparsest compress`` run, redone
under several training variants, with the validation MAE / MSE of every epoch and the final test error.

Starts from the run's dense pre-training (``checkpoints/pretrain.ckpt``) and trains the dense
backbone ``epochs`` epochs (the run's ``--epochs``) with the run's options, once per variant:

- ``const``: as ``sparsest compress`` trains a row (AdamW, constant learning rate, raw forecast in the loss);
- ``cos``: learning rate decaying with a cosine to 1% over the epochs;
- ``frozenbn``: BatchNorm layers in eval mode while training (running statistics frozen);
- ``clip``: the loss on the forecast clipped at the data set's lower bound (gradient 0 below it);
- ``ste``: the loss on the clipped forecast, gradient passed straight through the clip;
- ``mse``: as ``const`` with the MSE loss (``--loss mse``) instead of the run's;
- ``ste-cos``: ``ste`` with the cosine learning rate of ``cos``;
- ``mse-ste``: ``ste`` with the MSE loss;
- ``mse-ste-cos``: ``mse-ste`` with the cosine learning rate.

``--lr`` replaces the run's learning rate for every variant.

Prints, per variant, the validation MAE and MSE after each epoch and the test MAE / MSE of the
last epoch, then the ``lower-bound`` forecast (no rain) on validation and test. Nothing is written.

    python benchmarks/finetune_stability.py bench_out/radar/runs2km_sd075/<run of seed 1> const cos frozenbn clip ste mse

Training is chaotic here: the same variant at another thread count gives another trajectory.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

VARIANTS = ("const", "cos", "frozenbn", "clip", "ste", "mse", "ste-cos", "mse-ste", "mse-ste-cos")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished `sparsest compress` run directory (has checkpoints/pretrain.ckpt)")
    p.add_argument("variants", nargs="+", choices=VARIANTS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, help="learning rate of every variant (default: the run's)")
    a = p.parse_args(argv)

    import lightning as L
    import torch

    from sparsest.backbones import create_backbone
    from sparsest.engine.module import ForecastModule, evaluate
    from sparsest.engine.options import build_options
    from sparsest.engine.prepare import baselines, prepare
    from sparsest.engine.run import RunDirectory
    from sparsest.methods.dynapruner.config import CompressConfig
    from sparsest.pruning.samples.callback import EpochFractionLR

    torch.set_num_threads(a.threads)
    run = Path(a.run)
    if not (run / "checkpoints" / "pretrain.ckpt").exists():
        p.error(f"{run}: no checkpoints/pretrain.ckpt (not a compress run with a finished pre-training)")
    cfg = build_options(CompressConfig, (str(run / "config.yaml"), RunDirectory(run).read_config()))
    if a.lr is not None:
        if not a.lr > 0:
            p.error(f"--lr: must be > 0, got {a.lr}")
        cfg = dataclasses.replace(cfg, lr=a.lr)
    prep = prepare(cfg)
    state = torch.load(run / "checkpoints" / "pretrain.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    floor = prep.scaler.floor
    if floor is None and any(v == "clip" or "ste" in v for v in a.variants):  # the same rule as the loop below
        p.error(f"{cfg.data}: no lower bound, so clip / ste do not apply")

    class Record(L.Callback):
        def __init__(self):
            self.values = []

        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                m = trainer.callback_metrics
                self.values.append((float(m["val_mae"]), float(m["val_mse"])))

    class FrozenBN(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            for mod in pl_module.modules():
                if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                    mod.eval()

    print(f"{cfg.data} · {cfg.backbone} · seed {cfg.seed} · {cfg.epochs} epochs from {run.name}/checkpoints/pretrain.ckpt, "
          f"loss {cfg.loss}, lr {cfg.lr}", flush=True)
    for var in a.variants:
        torch.manual_seed(0)
        model = create_backbone(cfg.backbone, prep.spec, **cfg.backbone_options)
        model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
        module = ForecastModule(model, prep.scaler, cfg.lr, cfg.weight_decay, loss="mse" if var.startswith("mse") else cfg.loss,
                                clip_forecast="ste" in var)  # the engine's straight-through clip (compress --clip-forecast)
        if var == "clip":  # the hard clip (no gradient below the bound), which the engine does not offer
            bound = (floor - module.mean) / module.std
            raw = module.forward_scaled
            module.forward_scaled = lambda batch: torch.maximum(raw(batch), bound)
        rec = Record()
        callbacks = [rec] + ([EpochFractionLR(cfg.epochs)] if var.endswith("cos") else []) + ([FrozenBN()] if var == "frozenbn" else [])
        trainer = L.Trainer(max_epochs=cfg.epochs, callbacks=callbacks, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                            gradient_clip_val=cfg.grad_clip or None, accelerator="cpu")
        module.train()
        trainer.fit(module, prep.loaders["train"], prep.loaders["val"])
        test = evaluate(model, prep.loaders["test"], prep.scaler, prep.spec.horizon)["all"]
        print(f"{var}: val MAE " + " ".join(f"{v[0]:.4f}" for v in rec.values) + " | val MSE "
              + " ".join(f"{v[1]:.4f}" for v in rec.values) + f" | test MAE {test['mae']:.5f} MSE {test['mse']:.5f}", flush=True)
    if floor is not None:
        for split in ("val", "test"):
            r = baselines(prep, split, ("lower-bound",))["lower_bound"]
            print(f"lower bound everywhere ({split}): MAE {r['mae']:.5f} MSE {r['mse']:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
