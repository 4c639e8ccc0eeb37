"""``sparsest plan``: the largest sensor sparsity within a validation-error budget, in one search.

The planner stops at the budget and never returns a keep-set over it on validation (also when
already the first checkpoint is over it: every sensor then stays on); it goes to
``--max-sparsity`` when the budget allows; ``--resume`` after a SIGKILL mid-search ends with the
same curve and chosen point; bad options are one line. Tiny data: 12 sensors, 2 epochs of 3
batches, checkpoints every 0.25 of sparsity with one fine-tuning epoch each.
"""

import json

import numpy as np
import pandas as pd
import pytest

from sparsest.cli import main

from .engine.test_resume import check_resume
from .test_cli import assert_one_line_error, run_cli, signals, write_csv

N = 12
QUICK = ["--window", "6", "--horizon", "3", "--epochs", "2", "--limit-train-batches", "3", "--batch-size", "16",
         "--bench-repeats", "1", "--bench-batch", "8", "--checkpoint-step", "0.25", "--checkpoint-finetune-epochs", "1"]
LARGE = "5"  # +500%: every checkpoint is within, the search goes to --max-sparsity


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    return str(write_csv(d / "sig.csv", signals(T=300, N=N)))


def plan_run(capsys, out, data, max_increase, *extra):
    code, text, err = run_cli(["plan", "--data", data, "--max-increase", str(max_increase), "--out", str(out), *QUICK, *extra],
                              capsys)
    assert code == 0, err[-2000:]
    (run_dir,) = [p for p in out.iterdir() if not p.name.endswith(".partial")]
    return run_dir, json.loads((run_dir / "metrics.json").read_text()), text


def best(p, metric="mae"):
    """The checkpoint's budget error: the lower upper-confidence bound of its two keep-sets."""
    key = f"val_{metric}"
    assert p[f"{key}_ub"] >= p[key] and p[f"{key}_qr_ub"] >= p[f"{key}_qr"]  # a bound never below the estimate
    return min(p[f"{key}_ub"], p[f"{key}_qr_ub"])


def check_invariants(m, run_dir):
    """The chosen keep-set is the largest-sparsity checkpoint within the budget; every earlier
    checkpoint was within, the search stopped at the first one over it (or at max sparsity)."""
    b, c, curve = m["budget"], m["chosen"], m["curve"]
    key = f"val_{b['metric']}"
    assert b["threshold"] == pytest.approx((1 + b["max_increase"]) * b["dense_val"])
    assert b["val_hours_missing"] == []  # no timestamps: no hour of the day to miss
    for p in curve:  # factor: the calibration (full / short fine-tuning), at most 1
        assert 0 < p["budget_factor"] <= 1 and p["budget_factor"] == c["budget_factor"]
        assert p["within_budget"] == (p["budget_factor"] * best(p, b["metric"]) <= b["threshold"] or p["verified"])
    assert all(p["within_budget"] for p in curve[:-1])
    if m["stopped"] == "budget":
        assert not curve[-1]["within_budget"]
    else:
        assert m["stopped"] == "max_sparsity" and curve[-1]["within_budget"]
        assert curve[-1]["target_sparsity"] + m["checkpoint_step"] > m["max_sparsity"]
    within = [p for p in curve if p["within_budget"]]
    assert c["val"] <= c["budget_error"] <= b["threshold"]  # never over the budget on validation (nor its bound)
    full = {f["k"]: f for f in c["full_finetunes"]}  # every full fine-tuning is reported, with its verdict
    assert all(f["within_budget"] == (f["budget_error"] <= b["threshold"]) and f[key] <= f["budget_error"]
               for f in full.values())
    assert all(full[p["k"]]["within_budget"] for p in curve if p["verified"])
    if within:
        # the largest checkpoint within the budget, unless its full fine-tuning was over it: then the
        # largest verified one (full fine-tuning within), or without one the largest within on its short one
        p = within[-1]
        if p["k"] in full and not full[p["k"]]["within_budget"] and p["budget_factor"] < 1:
            p = next(q for q in curve if q["k"] == max(k for k, f in full.items() if f["within_budget"]))
        assert c["sparsity"] == pytest.approx(p["sparsity"]) and c["n_kept"] == p["n_kept"] == m["n_kept"]
        assert p["k"] in full and c["val_full_finetune"] == full[p["k"]][key]
        assert (run_dir / c["weights"]).is_file() and (run_dir / "checkpoints" / "pruned.ckpt").is_file()
        assert c["scheme"] == p["better"] and c["budget_checkpoint"] == best(p, b["metric"])
        assert c["budget_error"] <= c["budget_checkpoint"] + 1e-9  # the better of the full and the short fine-tuning
    else:
        assert c["sparsity"] == 0 and c["scheme"] == "dense" and m["n_kept"] == m["n_sensors"]
    assert {key, f"{key}_qr", "sparsity", "n_kept", "within_budget", "seconds"} <= set(curve[0])
    assert c["test"] == m["pruned"][b["metric"]] and c["dense_test"] == m["dense"][b["metric"]]
    assert m["search_seconds"] > 0 and m["time_s"]["search"] == m["search_seconds"]
    table = pd.read_csv(run_dir / "plan.csv")
    assert list(table.columns) == ["sensor_id", "latitude", "longitude", "score", "kept"]
    assert len(table) == N and table["kept"].sum() == m["n_kept"] and table["score"].between(0, 1).all()
    sensors = json.loads((run_dir / "deploy" / "sensors.json").read_text())
    assert sorted(sensors["kept_sensors"]) == sorted(table.loc[table["kept"] == 1, "sensor_id"].astype(str))
    assert (run_dir / "report.html").is_file() and (run_dir / "state" / "plan.json").is_file()


def test_plan_goes_to_max_sparsity_then_stops_at_a_budget_it_crosses(tmp_path, capsys, data):
    # --reference dense: the budget errors of the three runs below are against the same dense model
    run_dir, m, text = plan_run(capsys, tmp_path / "large", data, LARGE, "--reference", "dense")
    check_invariants(m, run_dir)
    assert m["reference"]["kind"] == "dense" and not (run_dir / "checkpoints" / "dense-ft.ckpt").exists()
    curve = m["curve"]
    assert m["stopped"] == "max_sparsity" and [p["n_kept"] for p in curve] == [9, 6, 3]
    assert m["chosen"]["n_kept"] == 3 and "chosen: sensor sparsity 0.750" in text
    page = (run_dir / "report.html").read_text()
    assert "Accuracy against sparsity" in page and "Validation error against sparsity" in page and "sparsest plan" in page
    assert "budget error: upper 95 % bound" in page and m["budget"]["confidence"] == 0.95
    # the exported model serves sparsest predict like a run's
    assert main(["predict", str(run_dir), "--data", data, "--out", str(tmp_path / "forecast.csv")]) == 0
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert forecast["sensor_id"].nunique() == N and np.isfinite(forecast["value"]).all()

    # a budget between the first and the second checkpoint's errors, no calibration (the full fine-tuning is as
    # short as the checkpoints'): the same search stops at the second
    e1, e2 = best(curve[0]), best(curve[1])
    assert e1 < e2, curve
    budget = (e1 + e2) / 2 / m["budget"]["dense_val"] - 1
    run_dir2, m2, _ = plan_run(capsys, tmp_path / "crossed", data, budget, "--finetune-epochs", "1", "--reference", "dense")
    check_invariants(m2, run_dir2)
    assert m2["stopped"] == "budget" and len(m2["curve"]) == 2 and m2["chosen"]["n_kept"] == 9
    assert [best(p) for p in m2["curve"]] == pytest.approx([e1, e2]) and m2["chosen"]["budget_factor"] == 1
    assert [f["k"] for f in m2["chosen"]["full_finetunes"]] == [1]  # only the chosen one

    # with calibration (full fine-tuning 2 epochs): the first checkpoint over the budget is fully fine-tuned first;
    # within the budget there, the search goes on with the calibrated factor past it
    run_dir3, m3, text3 = plan_run(capsys, tmp_path / "calibrated", data, budget, "--reference", "dense")
    check_invariants(m3, run_dir3)
    c3 = m3["chosen"]
    full3 = {f["k"]: f for f in c3["full_finetunes"]}
    assert 2 in full3
    if full3[2]["within_budget"]:
        assert c3["budget_factor"] < 1 and c3["n_kept"] <= 6 and "calibrated" in text3
    else:
        assert c3["budget_factor"] == 1 and c3["n_kept"] == 9


def test_first_checkpoint_over_the_budget_keeps_every_sensor(tmp_path, capsys, data):
    # dense validation MAE at this size is far below every pruned one, so a tiny budget is crossed at once
    run_dir, m, text = plan_run(capsys, tmp_path, data, "0.0001", "--metric", "rmse", "--confidence", "0")
    check_invariants(m, run_dir)
    assert m["budget"]["metric"] == "rmse" and "val_rmse_qr" in m["curve"][0] and m["budget"]["confidence"] == 0
    p = m["curve"][0]
    assert p["val_rmse_ub"] == p["val_rmse"] and p["val_rmse_qr_ub"] == p["val_rmse_qr"]  # no bound: the error itself
    assert len(m["curve"]) == 1 and not m["curve"][0]["within_budget"]
    assert m["chosen"]["sparsity"] == 0 and m["n_kept"] == N and m["pruned"]["mae"] == m["dense"]["mae"]
    assert "every sensor" in text
    assert not (run_dir / "checkpoints" / "pruned.ckpt").exists()  # nothing to fine-tune


def test_plan_killed_mid_search_resumes_exactly(tmp_path, data):
    args = ["plan", "--data", data, "--max-increase", LARGE, *QUICK, "--checkpoint-finetune-epochs", "3"]
    check_resume(tmp_path, args, "checkpoints/check02-dynst-last.ckpt",
                 [lambda m: m["chosen"]["sparsity"], lambda m: m["chosen"]["scheme"], lambda m: m["chosen"]["val"],
                  lambda m: m["chosen"]["test"], lambda m: m["pruned"]["mae"], lambda m: m["dense"]["mae"],
                  lambda m: [(p["n_kept"], p["val_mae"], p["val_mae_qr"], p["within_budget"], p["better"])
                             for p in m["curve"]]])
    (done,) = [p for p in tmp_path.joinpath("full").iterdir() if json.loads((p / "metrics.json").read_text())["resumed"]]
    m = json.loads((done / "metrics.json").read_text())
    saved = json.loads((done / "state" / "plan.json").read_text())
    # the first checkpoint was recorded before the kill and not searched again: its wall clock is the first run's
    assert saved["points"][0]["seconds"] == m["curve"][0]["seconds"]
    # the dense training finished in the killed process: its seconds are the phase's own clock, not the reload's
    from sparsest.report.rundir import read_curve

    assert m["time_s"]["dense_train"] == pytest.approx(read_curve(done / "logs" / "dense" / "metrics.csv")["time_s"][-1])


def test_plan_with_sample_pruning_reports_each_saving_against_its_baseline(tmp_path, capsys, data):
    """Composed: ST-Prune trains the dense model and the search's fine-tunings; the dense model
    trained on every window, in the same run, is the baseline of the budget and of each saving."""
    run_dir, m, text = plan_run(capsys, tmp_path, data, LARGE, "--sample-pruning", "st-prune", "--prune-ratio", "0.5",
                                "--checkpoint-step", "0.5")
    check_invariants(m, run_dir)
    k = m["composed"]
    assert k["sample_pruning"] == "st-prune" and k["prune_ratio"] == 0.5
    assert (run_dir / "checkpoints" / "dense_full.ckpt").is_file() and (run_dir / "checkpoints" / "dense.ckpt").is_file()
    # the budget and the test confirmation are against the full-data dense model, not the pruned-window one
    assert m["budget"]["dense_val"] == k["dense_full_data"]["val"] != k["dense_sample_pruned"]["val"]
    assert m["dense"]["mae"] == k["dense_full_data"]["test"] != k["dense_sample_pruned"]["test"]
    assert k["training"]["full_data_s"] == m["time_s"]["dense_full_train"] > 0
    assert k["training"]["ratio"] == pytest.approx(m["time_s"]["dense_train"] / m["time_s"]["dense_full_train"])
    assert k["sensors"] == {"n_sensors": N, "n_off": N - m["n_kept"], "fraction_off": m["sensor_sparsity"]}
    assert [i["batch"] for i in k["inference"]] == [1, 8] and all(i["speedup"] > 0 for i in k["inference"])
    assert k["accuracy_cost"] == pytest.approx(m["chosen"]["test"] / m["dense"]["mae"] - 1)
    assert "dense training time" in text and "all together" in text
    assert "st-prune + plan" in (run_dir / "report.md").read_text()
    # the returned model's weights are named: the deployed forecasts are those weights'
    assert (run_dir / m["chosen"]["weights"]).is_file()


@pytest.mark.parametrize("args, needles", [
    (["--sample-pruning", "st-prune", "--dense-checkpoint", "x.ckpt"], ["--sample-pruning", "--dense-checkpoint"]),
    (["--max-increase", "0"], ["--max-increase", "(0, 10]"]),
    (["--max-increase", "-0.1"], ["--max-increase", "(0, 10]"]),
    (["--max-increase", "nan"], ["--max-increase"]),
    (["--metric", "mape"], ["--metric"]),
    (["--checkpoint-step", "1"], ["--checkpoint-step", "(0, 1)"]),
    (["--checkpoint-step", "0.5", "--max-sparsity", "0.3"], ["--checkpoint-step", "--max-sparsity"]),
    (["--max-sparsity", "1"], ["--max-sparsity"]),
    (["--checkpoint-finetune-epochs", "0"], ["--checkpoint-finetune-epochs", ">= 1"]),
    (["--checkpoint-finetune-epochs", "1.5"], ["--checkpoint-finetune-epochs"]),
    (["--devices", "2"], ["--devices", "one device"]),
    (["--sensor-sparsity", "0.3"], ["--sensor-sparsity"]),  # the plan decides the sparsity
    (["--scheme", "qr"], ["--scheme"]),
    (["--set", "mask_l1=0.1"], ["mask_l1", "unknown option"]),
])
def test_bad_options_are_one_line(tmp_path, capsys, args, needles):
    code, _, err = run_cli(["plan", *args, "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, *needles)
    assert not list(tmp_path.iterdir())  # refused before any run directory


def test_plan_config_file_and_help(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("max_increase: 0.05\nscheme: qr\n")
    code, _, err = run_cli(["plan", "--config", str(tmp_path / "c.yaml")], capsys)
    assert_one_line_error(code, err, "c.yaml", "scheme")
    assert main(["plan", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--max-increase" in out and "(1 + 0.03) x the dense validation error" in out and "--resume" in out
    assert "--sensor-sparsity SENSOR_SPARSITY" not in out and "--scheme SCHEME" not in out and "--keep-set" not in out


def test_checkpoint_sizes_and_the_continued_search():
    from sparsest.pruning.sensors.frontier import checkpoint_sizes, next_keep_set, shrink
    from sparsest.pruning.sensors.placement import ReadoutSurrogate

    assert checkpoint_sizes(12, 0.25, 0.95) == [(0.25, 3), (0.5, 6), (0.75, 9)]
    sizes = checkpoint_sizes(6, 0.05, 0.99)
    offs = [n for _, n in sizes]
    assert offs == sorted(set(offs)) and offs[0] == 1 and offs[-1] == 5  # each one more sensor off, never all
    assert checkpoint_sizes(1, 0.5, 0.9) == []
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((400, 3)) @ rng.standard_normal((3, 10))  # 10 sensors spanned by 3 modes
    x = truth + 0.1 * rng.standard_normal(truth.shape)  # the "dense forecasts"
    sur = ReadoutSurrogate(x, truth, np.ones_like(truth), np.arange(400) // 80)
    keep, removed = shrink(np.ones(10, bool), sur, 7)
    assert keep.sum() == 7 and len(removed) == 3 and not keep[removed].any()
    qr = np.zeros(10, bool)
    qr[:5] = True
    nxt, info = next_keep_set(keep, qr, sur, max_swaps=3)
    assert nxt.sum() == 5 and info["start"] in ("continued", "qr") and info["swaps"] <= 3
    start = info["heldout_mae_std_start"]
    assert info["heldout_mae_std"] <= min(start.values()) + 1e-12  # drop / regrow never makes the better start worse


def _fake_search(short, threshold):
    """search_curve's result on made-up short-fine-tuned budget errors: walk up, stop at the first
    over; a verified checkpoint (k) is within whatever the factor."""
    def research(factor, announce_from=0, verified=frozenset()):
        curve = []
        for k, e in enumerate(short, 1):
            curve.append({"k": k, "val_mae": e - 0.5, "val_mae_qr": e + 1, "val_mae_ub": e, "val_mae_qr_ub": e + 2,
                          "within_budget": factor * e <= threshold or k in verified})
            if not curve[-1]["within_budget"]:
                return {"curve": curve, "stopped": "budget"}
        return {"curve": curve, "stopped": "max_sparsity"}
    return research


@pytest.mark.parametrize("full, verified, asked, factor", [
    # both verified, and where the calibrated walk stops (6) the full fine-tuning is over: 5 stays
    ({3: 0.9991, 5: 1.0185, 6: 1.03}, 5, [3, 5, 6], 0.97),
    # where the walk stops (6) the full fine-tuning holds: verified, recalibrated, the walk goes on; 7 is over
    ({3: 0.9991, 5: 1.0185, 6: 1.02, 7: 1.03}, 6, [3, 5, 6, 7], 1.02 / 1.06),
    ({3: 0.9991, 5: 1.03, 4: 1.03}, 3, [3, 5, 4], 0.97),  # the second is over in full, and the one between: the first stays
    ({3: 0.9991, 5: 1.03, 4: 1.01}, 4, [3, 5, 4], 0.97),  # bisected: the one between is verified
    ({3: 1.03}, None, [3], 1.0),  # the first over-budget checkpoint is over in full too: no calibration
    # a large factor walks to the end; the last is over in full: the one just below it first (verified), no bisection
    ({3: 0.93, 7: 1.03, 6: 1.02}, 6, [3, 7, 6], 0.93 / 1.03),
    # ... that one is over too: then bisection between the verified (3) and the smallest failed (6)
    ({3: 0.93, 7: 1.03, 6: 1.03, 4: 1.01, 5: 1.03}, 4, [3, 7, 6, 4, 5], 0.93 / 1.03),
])
def test_calibration_verifies_each_pick_with_a_full_finetuning(full, verified, asked, factor):
    from sparsest.methods.dynst.plan import calibrate

    short, threshold = [1.00, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07], 1.025
    research = _fake_search(short, threshold)
    calls = []

    def full_val(found, i):  # asked about a checkpoint of the search as it stands
        assert i < len(found["curve"]) and found["curve"][i]["k"] == i + 1
        calls.append(i)
        return full[i]

    found, v, f = calibrate(research(1.0), research, full_val, threshold, "val_mae")
    assert calls == asked and v == verified and f == pytest.approx(factor)
    assert all(p["within_budget"] for p in found["curve"][:-1])
    if v is not None:
        assert found["curve"][v]["within_budget"] and len(found["curve"]) > v + 1  # the search went on past it
    found, v, f = calibrate(research(1.0), research, full_val, threshold, "val_mae", enabled=False)
    assert v is None and f == 1.0 and len(calls) == len(asked)  # no calibration: nothing fully fine-tuned


@pytest.mark.parametrize("start", ["previous", "dense"])
def test_checkpoint_start_chains_the_short_finetunings(tmp_path, capsys, data, monkeypatch, start):
    """``--checkpoint-start previous``: each checkpoint's short fine-tuning starts from the model
    the previous checkpoint fine-tuned for the same chain (the search's, QR's); ``dense``: from
    the dense weights. The full fine-tunings start from the dense weights either way."""
    import torch

    from sparsest.methods.dynst import plan as plan_module

    real, seen = plan_module.finetune, {}

    def weights(module):
        return torch.cat([p.detach().flatten().clone() for n, p in module.model.named_parameters() if n != "scores"])

    def recording(config, prep, rd, module, name, epochs, **kw):
        before = weights(module)
        seconds = real(config, prep, rd, module, name, epochs, **kw)
        seen[name] = (before, weights(module))
        return seconds

    monkeypatch.setattr(plan_module, "finetune", recording)
    run_dir, m, _ = plan_run(capsys, tmp_path, data, LARGE, "--checkpoint-start", start)
    check_invariants(m, run_dir)
    assert m["checkpoint_start"] == start
    # --reference finetuned (default): the budget is against the dense model fine-tuned like a candidate
    ref = m["reference"]
    assert ref["kind"] == "finetuned" and ref["epochs"] == 2 and ref["seconds"] > 0 and "dense-ft" in seen
    assert (run_dir / "checkpoints" / "dense-ft.ckpt").is_file() and (run_dir / "logs" / "dense-ft").is_dir()
    assert m["budget"]["dense_val"] == m["dense_val"]["mae"] != ref["trained_val"]["mae"]
    assert torch.equal(seen["dense-ft"][0], seen["check01-dynst"][0])  # it starts from the dense weights, as they do
    assert m["time_s"]["reference_finetune"] == ref["seconds"]
    dense = seen["check01-dynst"][0]
    curve = m["curve"]
    assert len(curve) >= 2
    for p, q in zip(curve, curve[1:]):
        for chain in ("dynst", "qr"):
            name = f"check{q['k']:02d}-{chain}"
            if name not in seen:  # the same keep-set as the search's: one fine-tuning for both
                assert q["same_keep_set"]
                continue
            prev = f"check{p['k']:02d}-{chain}"
            prev = prev if prev in seen else f"check{p['k']:02d}-dynst"
            want = seen[prev][1] if start == "previous" else dense
            assert torch.equal(seen[name][0], want), name
            assert not torch.equal(seen[name][0], seen[prev][1] if start == "dense" else dense)
    fulls = [n for n in seen if n.startswith("full")]
    assert fulls and all(torch.equal(seen[n][0], dense) for n in fulls)


def test_a_fine_tuned_reference_worse_than_the_dense_model_is_not_the_budget(tmp_path, capsys, data, monkeypatch):
    """``--reference finetuned``: should the fine-tuned copy validate worse than the dense model
    as trained, the budget is against the dense model as trained (a user keeping every sensor
    keeps the better one), and metrics.json says so."""
    import torch

    from sparsest.methods.dynst import plan as plan_module

    real = plan_module.finetune

    def spoiled(config, prep, rd, module, name, epochs, **kw):
        seconds = real(config, prep, rd, module, name, epochs, **kw)
        if name == "dense-ft":  # a reference that got worse with its fine-tuning
            with torch.no_grad():
                for p in module.model.parameters():
                    p.add_(torch.randn_like(p))
        return seconds

    monkeypatch.setattr(plan_module, "finetune", spoiled)
    run_dir, m, text = plan_run(capsys, tmp_path, data, LARGE)
    check_invariants(m, run_dir)
    ref = m["reference"]
    assert ref["kind"] == "dense" and ref["finetuned_val"]["mae"] > ref["trained_val"]["mae"]
    assert m["budget"]["dense_val"] == pytest.approx(ref["trained_val"]["mae"]) == m["dense_val"]["mae"]
    assert "validates worse" in text
    assert "validated worse" in (run_dir / "report.md").read_text()  # the report names the reference it used
