"""Engine overhead: one training epoch of STID through sparsest's engine vs a plain PyTorch loop.

Both paths train the same STID model (same initial weights each pair) on the same training
loader of ``metr-la-week`` (207 sensors, 12 -> 12 steps, batch 32; a synthetic series of the
same shape when ``../shared/data`` is absent), with the same AdamW optimiser and the same
masked-MAE loss (:class:`sparsest.engine.module.ForecastModule`'s ``training_step``):

- engine: :func:`sparsest.engine.fit.make_trainer` (Lightning) with the engine's per-epoch
  resume checkpoint (:class:`~sparsest.engine.fit.ResumeState`), no validation, no progress bar;
- plain: ``for batch in loader: loss = module.training_step(batch); backward; clip (as the
  engine, ``--grad-clip``); step``.

Pairs are interleaved in one process (order alternating), after one warm-up pair; the
script prints every pair and the median ratio engine / plain (target <= 1.05).

    OMP_NUM_THREADS=1 python benchmarks/engine_overhead.py --pairs 7
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _prep(batch_size: int):
    from sparsest.datasets import default_data_dir
    from sparsest.engine.options import CommonOptions
    from sparsest.engine.prepare import prepare

    d = default_data_dir()
    if d is not None and (d / "metr-la-week").is_dir():
        return prepare(CommonOptions(data="metr-la-week", batch_size=batch_size)), "metr-la-week"
    import numpy as np

    tmp = Path(tempfile.mkdtemp()) / "synthetic.npy"
    t = np.arange(2016)[:, None]
    np.save(tmp, (60 + 10 * np.sin(2 * np.pi * t / 288 + np.arange(207)) + np.random.default_rng(0).normal(size=(2016, 207)))
            .astype(np.float32))
    return prepare(CommonOptions(data=str(tmp), batch_size=batch_size)), "synthetic [2016, 207]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=7, help="timed pairs (median reported) [default: 7]")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    if args.pairs < 5:
        ap.error("--pairs: at least 5")

    from sparsest.backbones import create_backbone
    from sparsest.engine.fit import ResumeState, make_trainer, quiet_lightning
    from sparsest.engine.module import ForecastModule
    from sparsest.engine.options import CommonOptions
    from sparsest.engine.run import RunDirectory

    quiet_lightning()
    torch.manual_seed(0)
    prep, data_name = _prep(args.batch_size)
    loader = prep.loaders["train"]
    init = create_backbone("stid", prep.spec)
    opts = CommonOptions()
    work = Path(tempfile.mkdtemp())

    def engine_epoch() -> float:
        module = ForecastModule(copy.deepcopy(init), prep.scaler)
        rd = RunDirectory(work)
        for sub in ("checkpoints", "logs", "state"):
            (work / sub).mkdir(exist_ok=True)
        trainer = make_trainer(opts, rd, "overhead", max_epochs=1, validate=False, progress=False,
                               callbacks=[ResumeState(work / "checkpoints" / "overhead-last.ckpt", [prep.generator])])
        t0 = time.perf_counter()
        trainer.fit(module, loader)
        return time.perf_counter() - t0

    def plain_epoch() -> float:
        module = ForecastModule(copy.deepcopy(init), prep.scaler)
        opt = module.configure_optimizers()
        module.train()
        t0 = time.perf_counter()
        for i, batch in enumerate(loader):
            loss = module.training_step(batch, i)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if opts.grad_clip > 0:  # what the engine's trainer does (--grad-clip)
                torch.nn.utils.clip_grad_norm_(module.parameters(), opts.grad_clip)
            opt.step()
        return time.perf_counter() - t0

    import warnings

    warnings.filterwarnings("ignore")
    engine_epoch(), plain_epoch()  # warm-up
    ratios = []
    print(f"{data_name}, {len(loader.dataset)} training windows, batch {args.batch_size}, {len(loader)} steps per epoch")
    for k in range(args.pairs):
        if k % 2 == 0:
            e, p = engine_epoch(), plain_epoch()
        else:
            p, e = plain_epoch(), engine_epoch()
        ratios.append(e / p)
        print(f"pair {k + 1}: engine {e:.3f} s, plain {p:.3f} s, ratio {e / p:.3f}", flush=True)
    print(f"median ratio engine / plain over {args.pairs} pairs: {statistics.median(ratios):.3f} (target <= 1.05)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
