"""Sample pruning (ST-Prune, InfoBatch, random, static): scores, strata rescaling, schedule,
sampler sharding, determinism, the LR schedule under pruned epochs, and a tiny end to end."""

import json
import math

import lightning as L
import numpy as np
import pytest
import torch

from sparsest.data.core import SpatioTemporalData
from sparsest.data.windows import StandardScaler, WindowDataset
from sparsest.engine.module import ForecastModule, node_losses
from sparsest.errors import ConfigError
from sparsest.pruning.samples import (
    TRAINER_KWARGS, EpochFractionLR, IndexedDataset, PrunedSampler, PruningOptions, SelectionPolicy,
    build_sample_pruning, complexity_score, cosine, prune_ratio_at, quantile_strata, window_stationarity,
)
from sparsest.pruning.samples.policy import allocate, epoch_generator, select_st_prune

from tests.conftest import requires_shared


def test_complexity_score_sees_local_anomaly():
    flat = torch.full((1, 20), 1.0)
    spike = torch.zeros(1, 20)
    spike[0, 0] = 20.0  # same mean, error on one node
    assert torch.allclose(flat.mean(1), spike.mean(1))
    assert complexity_score(spike, beta=1.0, topk_fraction=0.1) > complexity_score(flat, beta=1.0, topk_fraction=0.1)
    assert torch.allclose(complexity_score(spike, beta=0.0), spike.mean(1))
    with pytest.raises(ValueError):
        complexity_score(flat, topk_fraction=0.0)


def test_stationarity_and_strata():
    t = torch.arange(12.0)
    stationary = torch.sin(t)[None, :, None, None].repeat(1, 1, 3, 1)  # [1, T, N, C]
    shifted = stationary.clone()
    shifted[:, 6:] += 5.0
    s = window_stationarity(torch.cat([stationary, shifted]))
    assert s[1] > s[0] + 4.0
    strata = quantile_strata(torch.tensor([5.0, 1.0, 3.0, 2.0, 4.0, 0.0, 7.0, 6.0]), 4)
    assert strata.tolist() == [2, 0, 1, 1, 2, 0, 3, 3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strata_rescaling_keeps_each_stratums_loss_weight(seed):
    g = torch.Generator().manual_seed(seed)
    n = 203
    scores = torch.rand(n, generator=g) ** 3  # skewed: most below the mean
    strata = torch.randint(0, 5, (n,), generator=g)
    keep = 80
    sel = select_st_prune(scores, strata, keep, epoch_generator(seed, 3), hard_cap=0.5, rescale="mass")
    assert sel.n_kept == keep
    kept = torch.zeros(n, dtype=torch.bool)
    kept[sel.indices] = True
    hard = kept & (sel.weights == 1.0) & (scores > scores.mean())
    low = ~hard  # every window not kept outright is in the low pool
    for s in range(5):
        in_s = low & (strata == s)
        # weights of kept low-score windows of stratum s sum to the stratum's low-score count
        assert math.isclose(float(sel.weights[in_s & kept].sum()), float(in_s.sum()), rel_tol=1e-5)
    # the hard windows kept outright are the highest-scoring ones, capped at hard_cap * keep
    assert int(hard.sum()) <= keep // 2
    assert float(scores[hard].min()) >= float(scores[low].max())
    # "strata" (the default): same windows; hard ones weight 1; the low pool's weights are the
    # "mass" ones over their mean, so every stratum keeps its share of the low pool's loss
    st = select_st_prune(scores, strata, keep, epoch_generator(seed, 3), hard_cap=0.5)
    assert torch.equal(st.indices, sel.indices)
    low_kept = low & kept
    assert torch.equal(st.weights[hard], torch.ones(int(hard.sum())))
    assert math.isclose(float(st.weights[low_kept].mean()), 1.0, rel_tol=1e-5)
    for s in range(5):
        in_s = low & (strata == s)
        share = float(st.weights[in_s & kept].sum() / st.weights[low_kept].sum())
        assert math.isclose(share, float(in_s.sum()) / float(low.sum()), rel_tol=1e-5)


def test_strata_rescaling_is_unbiased_in_expectation():
    n = 60
    scores = torch.linspace(0, 1, n) ** 4
    strata = torch.arange(n) % 3
    acc = torch.zeros(n)
    reps = 1000
    for e in range(reps):
        sel = select_st_prune(scores, strata, 30, epoch_generator(0, e), rescale="mass")
        w = torch.zeros(n)
        w[sel.indices] = sel.weights[sel.indices]
        acc += w
    # every window's expected weight is 1 (hard ones are always kept at weight 1)
    assert torch.allclose(acc / reps, torch.ones(n), atol=0.25)
    for s in range(3):
        assert math.isclose(float(acc[strata == s].sum() / reps), float((strata == s).sum()), rel_tol=1e-4)


def test_allocate_proportional_and_bounded():
    sizes = torch.tensor([50, 30, 0, 2])
    per = allocate(sizes, 20)
    assert int(per.sum()) == 20 and per[2] == 0 and (per <= sizes).all() and (per[[0, 1, 3]] >= 1).all()
    assert allocate(sizes, 1000).tolist() == sizes.tolist()


def test_schedule_anneals_to_full_data():
    epochs = 16
    rs = [prune_ratio_at(e, epochs, 0.7) for e in range(epochs)]
    assert rs[0] == 0.0  # warm-up: scores unknown
    assert rs[1:14] == [0.7] * 13
    assert rs[14:] == [0.0, 0.0]  # epoch + 1 > 0.875 * 16: full data (boundary: test_infobatch.py)
    for method in ("st-prune", "infobatch", "infobatch-budget", "random"):
        pol = SelectionPolicy(method, 100, 0.7, epochs=epochs, seed=0)
        scores = torch.rand(100, dtype=torch.float64)
        strata = torch.arange(100) % 4
        assert pol.select(5, scores, strata).n_kept < 100
        last = pol.select(epochs - 1, scores, strata)
        assert last.n_kept == 100 and torch.all(last.weights == 1)
    static = SelectionPolicy("static", 100, 0.7, epochs=epochs, seed=0)
    assert static.select(epochs - 1, torch.rand(100), None).n_kept == 30  # static never anneals


def test_same_seed_same_kept_sets():
    n = 500
    scores = torch.rand(n, generator=torch.Generator().manual_seed(3)).double()
    strata = torch.arange(n) % 4
    for method in ("st-prune", "infobatch", "infobatch-budget", "random"):
        a = [SelectionPolicy(method, n, 0.3, 20, seed=7).select(e, scores, strata).indices for e in range(1, 6)]
        b = [SelectionPolicy(method, n, 0.3, 20, seed=7).select(e, scores, strata).indices for e in range(1, 6)]
        c = SelectionPolicy(method, n, 0.3, 20, seed=8).select(1, scores, strata).indices
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert not torch.equal(a[0], a[1])  # dynamic: a new draw every epoch
        assert not torch.equal(a[0], c)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_sampler_shards_disjoint_and_complete(world):
    kept = torch.tensor(sorted(np.random.default_rng(0).choice(97, 61, replace=False).tolist()))
    shards = []
    for rank in range(world):
        s = PrunedSampler(97, seed=5, rank=rank, world_size=world)
        s.set_selection(kept)
        s.set_epoch(4)
        shards.append(list(s))
        assert len(shards[-1]) == len(s) == math.ceil(61 / world)
    real = [[i for i in sh if i < 97] for sh in shards]
    flat = [i for sh in real for i in sh]
    assert len(flat) == len(set(flat)) == 61 and set(flat) == set(kept.tolist())
    pads = [i - 97 for sh in shards for i in sh if i >= 97]
    assert len(pads) == world * math.ceil(61 / world) - 61 and set(pads) <= set(kept.tolist())
    view = IndexedDataset([{"x": torch.zeros(1)}] * 97)
    if pads:
        item = view[pads[0] + 97]
        assert item["pad"] and float(item["weight"]) == 0.0 and item["index"] == pads[0]


def test_options_errors():
    with pytest.raises(ConfigError, match="--sample-pruning"):
        PruningOptions("bogus").check()
    with pytest.raises(ConfigError, match="--prune-ratio"):
        PruningOptions("random", 1.0).check()
    with pytest.raises(ConfigError, match="--rescale"):
        PruningOptions("st-prune", rescale="unbiased").check()
    with pytest.raises(ConfigError, match="--hard-cap"):
        PruningOptions("st-prune", hard_cap=0.0).check()


def _tiny_data(T=300, N=5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    v = (np.sin(2 * np.pi * t / 24 + np.arange(N)) + 0.1 * rng.normal(size=(T, N)))[..., None].astype(np.float32)
    return SpatioTemporalData(values=v, kind="graph", name="tiny", source="tiny", steps_per_day=24)


class _Lin(torch.nn.Module):
    def __init__(self, T, S):
        super().__init__()
        self.lin = torch.nn.Linear(T, S)

    def forward(self, x, tod, dow):  # [B, T, N, C] -> [B, S, N, C]
        return self.lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _fit(method, epochs=4, ratio=0.6, seed=0, extra=()):
    data = _tiny_data()
    scaler = StandardScaler.fit(data, (0, 200))
    ds = WindowDataset(data, (0, 200), 6, 3, scaler)
    L.seed_everything(seed, verbose=False)
    module = ForecastModule(_Lin(6, 3), scaler)
    sp = build_sample_pruning(ds, 16, PruningOptions(method, ratio), epochs, seed)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[sp.callback, *extra], **TRAINER_KWARGS)
    trainer.fit(module, sp.loader)
    return sp, trainer, module, len(ds)


def test_module_weighted_loss_and_node_losses():
    data = _tiny_data()
    scaler = StandardScaler.fit(data, (0, 200))
    ds = IndexedDataset(WindowDataset(data, (0, 200), 6, 3, scaler))
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    module = ForecastModule(_Lin(6, 3), scaler)
    plain = module.training_step({k: v for k, v in batch.items() if k != "weight"}, 0)
    assert "sample_node_loss" not in plain
    module.record_sample_loss = True
    out = module.training_step(batch, 0)  # weights 1: same loss
    assert torch.allclose(out["loss"], plain["loss"])
    assert out["sample_node_loss"].shape == (4, 5) and not out["sample_node_loss"].requires_grad
    assert torch.allclose(out["sample_node_loss"].mean(), plain["loss"], atol=1e-6)
    batch["weight"] = torch.tensor([2.0, 0.0, 0.0, 0.0])
    w = module.training_step(batch, 0)["loss"]
    assert torch.allclose(w, out["sample_node_loss"][0].mean() * 2 / 4, atol=1e-6)
    err = torch.rand(2, 3, 4, 5, 6)  # grid [B, S, C, H, W]
    assert node_losses(err, torch.ones_like(err)).shape == (2, 30)


def test_training_records_scores_and_prunes():
    sp, trainer, module, n = _fit("st-prune", epochs=8)
    kept = [h["kept"] for h in sp.callback.history[:8]]
    assert kept[0] == n and kept[1:7] == [round(0.4 * n)] * 6 and kept[7] == n  # warm-up, pruned, annealed
    assert torch.isfinite(sp.callback.scores).all()  # every window scored from the training forward
    assert sp.callback.samples_seen == sum(kept)
    ov = sp.callback.overhead(module)
    assert ov["step_time_s"] > 0 and ov["overhead_s"] > 0 and ov["module_s"] > 0


class _ConstantValMAE(L.Callback):
    """Logs a validation MAE that never improves (early stopping fires after ``patience``)."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.callback_metrics["val_mae"] = torch.tensor(1.0)


@pytest.mark.parametrize("method", ["st-prune", "infobatch", "random"])
def test_early_stop_during_pruned_epochs_runs_the_annealed_epoch_first(method):
    from sparsest.engine.fit import DeferringEarlyStopping

    es = DeferringEarlyStopping(monitor="val_mae", mode="min", patience=1)
    sp, trainer, module, n = _fit(method, epochs=8, extra=(_ConstantValMAE(), es))
    kept = [h["kept"] for h in sp.callback.history]
    assert trainer.current_epoch == 3  # fired after epoch 1 (pruned), then epoch 2 on the full data, then stopped
    assert kept[0] == n and kept[1] < n and kept[2] == n and [h["epoch"] for h in sp.callback.history[:3]] == [0, 1, 2]
    assert sp.callback.samples_seen == sum(kept[:3])
    assert sp.policy.anneal_from == 2 and sp.callback.stop_at == 2
    state = sp.callback.state_dict()  # a resumed run keeps the moved boundary and the stop
    assert (state["anneal_from"], state["stop_at"]) == (2, 2)


def test_no_deferral_without_annealing():
    from sparsest.engine.fit import DeferringEarlyStopping
    from sparsest.pruning.samples.policy import annealed_epochs

    assert [annealed_epochs(e) for e in (8, 10, 16, None)] == [1, 2, 2, 0] and annealed_epochs(8, 1.0) == 0
    es = DeferringEarlyStopping(monitor="val_mae", mode="min", patience=1)
    sp, trainer, module, n = _fit("static", epochs=8, extra=(_ConstantValMAE(), es))  # static never anneals: stops at once
    assert trainer.current_epoch == 2 and sp.policy.anneal_from is None
    es = DeferringEarlyStopping(monitor="val_mae", mode="min", patience=6)
    sp, trainer, module, n = _fit("st-prune", epochs=8, extra=(_ConstantValMAE(), es))  # fires at epoch 6: epoch 7 is full anyway
    assert trainer.current_epoch == 7 and sp.policy.anneal_from is None


def test_chunked_scoring_gives_the_scores_of_per_batch_scoring(monkeypatch):
    from sparsest.pruning.samples import callback

    chunked = _fit("st-prune", epochs=3)[0].callback.scores  # default chunk: one scoring call per epoch here
    monkeypatch.setattr(callback, "SCORE_CHUNK", 1)  # every batch scored as it ends
    per_batch = _fit("st-prune", epochs=3)[0].callback.scores
    assert torch.isfinite(chunked).all() and torch.equal(chunked, per_batch)


def test_window_statistics_from_the_series_equal_the_window_by_window_ones():
    from torch.utils.data import DataLoader

    from sparsest.data.windows import collate_windows
    from sparsest.pruning.samples.scores import window_complexity, window_statistics

    data = _tiny_data(N=70)  # more entries than one column chunk
    rng = np.random.default_rng(1)
    data.values[rng.random(data.values.shape) < 0.2] = np.nan  # missing readings
    data.values[40:60, 3] = np.nan  # an outage
    scaler = StandardScaler.fit(data, (0, 200))
    ds = WindowDataset(data, (0, 200), 7, 3, scaler, runs=[(0, 90), (110, 200)])  # windows never cross the gap
    fast_c, fast_s = window_statistics(ds)
    b = next(iter(DataLoader(ds, batch_size=len(ds), collate_fn=collate_windows)))
    assert fast_c.shape == fast_s.shape == (len(ds),)
    assert torch.allclose(fast_c, window_complexity(b["x"], b["x_mask"]), atol=1e-5)
    assert torch.allclose(fast_s, window_stationarity(b["x"], b["x_mask"]), atol=1e-5)


def test_lr_schedule_follows_pruned_epoch_lengths():
    epochs = 4
    lr_cb = EpochFractionLR(epochs)
    sp, trainer, module, n = _fit("random", epochs=epochs, ratio=0.75, extra=(lr_cb,))
    per_epoch = {}
    for e, b, lr in lr_cb.trace:
        per_epoch.setdefault(e, []).append((b, lr))
    counts = [len(per_epoch[e]) for e in range(epochs)]
    assert counts[0] > counts[1]  # pruned epochs are shorter
    for e in range(epochs):
        nb = counts[e]
        for b, lr in per_epoch[e]:
            assert math.isclose(lr, module.lr * cosine((e + b / nb) / epochs), rel_tol=1e-9)
    # the last step sits at the end of the schedule, not short of it
    assert lr_cb.trace[-1][2] < module.lr * cosine(0.9)


@requires_shared
def test_sparsest_train_end_to_end(tmp_path, capsys):
    from sparsest.cli import main

    code = main(["train", "--data", "ghcnd-us", "--backbone", "stid", "--sample-pruning", "st-prune", "--prune-ratio", "0.5",
                 "--epochs", "3", "--out", str(tmp_path)])
    assert code == 0
    (run,) = [p for p in tmp_path.iterdir()]
    assert not run.name.endswith(".partial")
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["test"]) == {"mae", "rmse", "mape"} and m["test"]["mae"] > 0
    assert len(m["epoch_time_s"]) == 3 and m["train_time_s"] > 0 and m["best_val_mae"] > 0
    assert m["samples_seen"] == sum(m["kept_per_epoch"]) and m["kept_per_epoch"][1] < m["kept_per_epoch"][0]
    code = main(["train", "--data", "ghcnd-us", "--prune-ratio", "2", "--sample-pruning", "random", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--prune-ratio" in err and len(err.strip().splitlines()) == 1


def _signals_csv(path, T=240, N=5):
    import pandas as pd

    v = _tiny_data(T, N).values[..., 0]
    pd.DataFrame(v, columns=[f"s{i}" for i in range(N)]).to_csv(path, index=False)
    return path


def test_dynst_run_composes_with_sample_pruning(tmp_path, capsys):
    from sparsest.cli import main

    csv = _signals_csv(tmp_path / "sig.csv")
    code = main(["run", "--data", str(csv), "--out", str(tmp_path / "runs"), "--epochs", "3", "--scheme", "dynst-paper", "--rounds", "2",
                 "--round-steps", "2", "--mask-steps", "2", "--patience", "2", "--window", "6", "--horizon", "3",
                 "--batch-size", "8", "--bench-repeats", "1", "--sample-pruning", "st-prune", "--prune-ratio", "0.5"])
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    assert "sample_pruning: st-prune" in (run / "config.yaml").read_text()
    dense_log = (run / "logs" / "dense" / "metrics.csv").read_text().splitlines()
    assert len(dense_log) > 1


def test_bench_suite_quick(tmp_path, capsys):
    from sparsest.cli import main

    csv = _signals_csv(tmp_path / "sig.csv")
    code = main(["bench", "--suite", "st-prune", "--quick", "--datasets", str(csv), "--out", str(tmp_path / "b"),
                 "--set", "window=6", "horizon=3"])
    assert code == 0, capsys.readouterr().err
    import pandas as pd

    res = pd.read_csv(tmp_path / "b" / "results.csv")
    assert set(res.method) == {"none", "st-prune", "infobatch", "infobatch-budget", "random", "static"}
    assert (res[res.method != "none"].budget.isin([0.3, 0.7])).all()
    assert (tmp_path / "b" / "figure4.png").stat().st_size > 0
    assert "Requirement 2" in (tmp_path / "b" / "stprune_tables.md").read_text()
    from sparsest.bench.stprune import persistence_val_mae

    req1 = pd.read_csv(tmp_path / "b" / "req1_runs.csv")
    full_dir = res[res.method == "none"].run_dir.iloc[0]
    pv = persistence_val_mae(full_dir)  # persistence on the run's own validation split, from its config.yaml
    assert math.isfinite(pv) and pv > 0 and (req1.persistence_val_mae == pv).all()
    assert math.isnan(persistence_val_mae(tmp_path / "no-such-run"))


def test_summarize_pairs_merged_sweeps_with_their_own_full_run(tmp_path):
    """Time ratios of a merged table use the full-data run of the same sweep (same machine load)."""
    import pandas as pd

    from sparsest.bench.stprune import summarize

    def row(sweep, method, budget, epoch_s, mae):
        return {"sweep": sweep, "dataset": "d", "backbone": "b", "seed": 0, "method": method, "budget": budget,
                "val_mae": json.dumps([mae + 0.5, mae]), "cum_time_s": json.dumps([epoch_s, 2 * epoch_s]),
                "best_val_mae": mae, "train_time_s": 2 * epoch_s, "test_mae": mae, "mean_epoch_time_s": epoch_s,
                "samples_seen": 100 if method == "none" else 50, "overhead_pct": 1.0}

    rows = [row("A", "none", 1.0, 10.0, 3.0), row("A", "st-prune", 0.5, 5.0, 3.1),
            row("B", "none", 1.0, 4.0, 3.0), row("B", "random", 0.5, 2.0, 3.2)]  # sweep B ran on an idle machine
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    r1 = summarize(tmp_path / "m.csv", tmp_path / "out")["req1"].set_index("method")
    assert r1.loc["st-prune", "epoch_time_frac"] == pytest.approx(0.5)
    assert r1.loc["random", "epoch_time_frac"] == pytest.approx(0.5)  # not 2.0 / 10.0


def test_seed_spread_margin_against_the_lowest_rival():
    """ST-Prune's margin is taken over the rival with the lowest mean, paired seed by seed,
    beside the full-data runs' seed spread (hand-worked numbers)."""
    import pandas as pd

    from sparsest.bench.stprune import seed_spread

    rows = []
    for seed, (full, st, ib, rnd) in enumerate([(1.00, 1.01, 1.00, 1.03), (1.02, 1.00, 1.02, 1.03)]):
        for method, mae, budget in [("none", full, 1.0), ("st-prune", st, 0.5), ("infobatch", ib, 0.5), ("random", rnd, 0.5)]:
            rows.append({"dataset": "d", "backbone": "b", "seed": seed, "method": method, "budget": budget, "test_mae": mae})
    rows.append({"dataset": "d", "backbone": "b", "seed": 0, "method": "random", "budget": 0.9, "test_mae": 1.0})
    out = seed_spread(pd.DataFrame(rows))
    assert list(out.budget) == [0.5]  # no ST-Prune row at 0.9
    r = out.iloc[0]
    assert r.lowest_rival == "infobatch" and r.rival_mae == pytest.approx(1.01) and r.seeds == 2
    assert r.st_margin_pct == pytest.approx(100 * (1.005 / 1.01 - 1))
    paired = [100 * (1.01 / 1.00 - 1), 100 * (1.00 / 1.02 - 1)]
    assert r.paired_mean_pct == pytest.approx(sum(paired) / 2)
    assert r.paired_sd_pct == pytest.approx(abs(paired[0] - paired[1]) / 2 ** 0.5)
    assert r.full_sd_pct == pytest.approx(100 * (0.02 / 2 ** 0.5) / 1.01)
    assert bool(r.within_full_sd)  # a 0.5% margin against a 1.4% seed spread
