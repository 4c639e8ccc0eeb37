"""Options: one builder for every command; every bad value is one line naming it."""

import pytest

from sparsest.bench.options import SUITE_OPTIONS
from sparsest.cli import main
from sparsest.engine.options import build_options, load_yaml, parse_set
from sparsest.errors import ConfigError
from sparsest.methods.dynapruner.config import CompressConfig
from sparsest.methods.dynst.config import RunConfig
from sparsest.methods.stprune.config import TrainConfig

COMMANDS = {"run": RunConfig, "train": TrainConfig, "compress": CompressConfig}


def one_line_error(capsys, argv, *needles):
    code = main(argv)
    err = capsys.readouterr().err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("value, needle", [
    ("1.7", "valid integer"), ("abc", "valid integer"), ("0", ">= 1"), ("-3", ">= 1"),
])
@pytest.mark.parametrize("command", ["run", "train", "compress"])
def test_epochs_checked_for_every_command(capsys, command, value, needle):
    one_line_error(capsys, [command, "--epochs", value], "--epochs", needle)


@pytest.mark.parametrize("command", ["run", "train", "compress"])
@pytest.mark.parametrize("flag_, value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "0"), ("--weight-decay", "-1"),
                                          ("--seed", "-1"), ("--seed", str(2**32)), ("--batch-size", "0"),
                                          ("--limit-train-batches", "1.5"), ("--limit-train-batches", "0"),
                                          ("--devices", "0"), ("--devices", "x"), ("--window", "0")])
def test_shared_options_checked_for_every_command(capsys, command, flag_, value):
    one_line_error(capsys, [command, flag_, value], flag_)


@pytest.mark.parametrize("command", ["run", "train", "compress"])
def test_config_and_set_for_every_command(tmp_path, capsys, command):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1.7\n")
    one_line_error(capsys, [command, "--config", str(cfg)], "c.yaml", "epochs", "fractional")
    cfg.write_text("epochs: null\n")
    one_line_error(capsys, [command, "--config", str(cfg)], "c.yaml", "epochs")
    cfg.write_text("epochs: [1, 2]\n")
    one_line_error(capsys, [command, "--config", str(cfg)], "c.yaml", "epochs")
    cfg.write_text("epochs: true\n")
    one_line_error(capsys, [command, "--config", str(cfg)], "c.yaml", "epochs", "number")
    cfg.write_text("lr: .nan\n")
    one_line_error(capsys, [command, "--config", str(cfg)], "c.yaml", "lr", "finite")
    cfg.write_text("epoch: 3\n")
    one_line_error(capsys, [command, "--config", str(cfg)], "c.yaml", "epoch", "did you mean epochs")
    one_line_error(capsys, [command, "--set", "epochs=0"], "--set epochs", ">= 1")
    one_line_error(capsys, [command, "--set", "epochs"], "--set", "KEY=VALUE")
    one_line_error(capsys, [command, "--set", "bogus=1"], "--set bogus", "unknown")


def test_yaml_strings_are_converted_or_refused():
    assert build_options(RunConfig, ("c.yaml", {"sparsity": "0.3"})).sensor_sparsity == 0.3  # converted
    with pytest.raises(ConfigError, match="c.yaml: sparsity"):
        build_options(RunConfig, ("c.yaml", {"sparsity": "most"}))
    with pytest.raises(ConfigError, match="c.yaml: data: input should be a valid string"):
        build_options(RunConfig, ("c.yaml", {"data": 3}))


def test_old_names_are_aliases_and_not_both():
    assert build_options(RunConfig, ("cli", {"sparsity": "0.2"})).sensor_sparsity == 0.2
    with pytest.raises(ConfigError, match="given twice"):
        build_options(RunConfig, ("cli", {"sparsity": "0.2", "sensor_sparsity": "0.4"}))


def test_unused_shared_options_are_refused(capsys):
    # compress trains every row exactly --epochs (no early stopping) on grid data (no graph)
    for flag_ in ("--patience", "--adjacency", "--locations"):
        code = main(["compress", flag_, "3"])
        assert code == 2 and "unrecognized arguments" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="patience: unknown option"):
        build_options(CompressConfig, ("c.yaml", {"patience": 3}))
    assert "patience" not in CompressConfig().to_dict()


def test_ignored_data_options_are_refused(tmp_path, capsys):
    (tmp_path / "adj.csv").write_text("1\n")
    one_line_error(capsys, ["run", "--adjacency", str(tmp_path / "adj.csv"), "--out", str(tmp_path)], "--adjacency", "own data")
    one_line_error(capsys, ["train", "--locations", str(tmp_path / "adj.csv"), "--out", str(tmp_path)], "--locations")


def test_alias_bomb_and_big_files_are_refused(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\n")
    with pytest.raises(ConfigError, match="expands to more than"):
        load_yaml(bomb)
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "y" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_yaml(big)
    with pytest.raises(ConfigError, match="not valid YAML"):
        (tmp_path / "bad.yaml").write_text("a: [1,\n")
        load_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(tmp_path / "list.yaml")


def test_unusable_out_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    one_line_error(capsys, ["run", "--out", str(f), "--epochs", "1"], "--out", "not a folder")
    one_line_error(capsys, ["train", "--out", str(f / "sub"), "--epochs", "1"], "--out")


def test_lightning_options_are_one_line(capsys):
    one_line_error(capsys, ["run", "--accelerator", "tpu"], "--accelerator tpu")
    one_line_error(capsys, ["train", "--strategy", "nonsense"], "--strategy nonsense")


def test_bench_suites_take_only_their_own_options(capsys, tmp_path):
    one_line_error(capsys, ["bench", "--tables", "3"], "--tables", "dyna-pruner")
    one_line_error(capsys, ["bench", "--suite", "st-prune", "--sparsities", "0.2"], "--sparsities", "dynst")
    one_line_error(capsys, ["bench", "--sparsities", "1.2"], "--sparsities", "[0, 1)")
    one_line_error(capsys, ["bench", "--suite", "dyna-pruner", "--tables", "5"], "--tables")
    one_line_error(capsys, ["bench", "--seeds", "-1"], "--seeds")
    one_line_error(capsys, ["bench", "--set", "epochs=0"], "--set epochs", ">= 1")
    one_line_error(capsys, ["bench", "--suite", "st-prune", "--set", "scheme=dynst"], "--set scheme", "unknown")
    cfg = tmp_path / "b.yaml"
    cfg.write_text("suite: dyna-pruner\ntables: [7]\n")
    one_line_error(capsys, ["bench", "--config", str(cfg)], "b.yaml", "tables")
    assert set(SUITE_OPTIONS) == {"dynst", "st-prune", "dyna-pruner"}


def test_parse_set_values_are_yaml_scalars():
    values = parse_set(["batch_size=16", "lr=1e-3", "data=x.csv"], TrainConfig)
    assert values["batch_size"] == 16 and values["data"] == "x.csv"
    assert build_options(TrainConfig, ("--set", values)).lr == 1e-3  # YAML 1.1 reads 1e-3 as text; converted


def test_config_yaml_round_trips(tmp_path):
    for cls in COMMANDS.values():
        opts = cls()
        again = build_options(cls, ("config.yaml", opts.to_dict()))
        assert again.to_dict() == opts.to_dict()


@pytest.mark.parametrize("value, needle", [("-1", ">= 0"), ("abc", "valid number"), ("nan", "finite")])
@pytest.mark.parametrize("command", ["run", "train", "compress"])
def test_grad_clip_checked_for_every_command(capsys, command, value, needle):
    one_line_error(capsys, [command, "--grad-clip", value], "--grad-clip", needle)


def test_grad_clip_reaches_the_trainer(tmp_path):
    from sparsest.engine.fit import make_trainer
    from sparsest.engine.run import RunDirectory

    run = RunDirectory(tmp_path)
    for cls in COMMANDS.values():
        assert cls().grad_clip == 5.0  # BasicTS' default
        trainer = make_trainer(build_options(cls, ("cli", {"grad_clip": "2.5"})), run, "t", max_epochs=1, progress=False)
        assert trainer.gradient_clip_val == 2.5 and trainer.gradient_clip_algorithm == "norm"
        off = make_trainer(build_options(cls, ("--set", {"grad_clip": 0})), run, "t", max_epochs=1, progress=False)
        assert off.gradient_clip_val is None  # 0 = no clipping
    with pytest.raises(ConfigError, match="--set grad_clip: must be >= 0"):
        build_options(TrainConfig, ("--set", {"grad_clip": -1}))


@pytest.mark.parametrize("argv, needle", [
    (["--split", "0.7", "0.3"], "three fractions"), (["--split", "0.7", "0.2", "0.2"], "sum to 1"),
    (["--split", "0", "0.5", "0.5"], "> 0"), (["--split", "0.7", "nan", "0.3"], "finite"),
    (["--split", "0.7", "x", "0.3"], "valid number"),
])
@pytest.mark.parametrize("command", ["run", "train", "compress", "plan"])
def test_split_checked_for_every_command(capsys, command, argv, needle):
    one_line_error(capsys, [command, *argv], "--split", needle)


def test_split_from_a_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("split: 0.7\n")
    one_line_error(capsys, ["run", "--config", str(cfg)], "c.yaml", "split", "list")
    assert build_options(RunConfig, ("c.yaml", {"split": ["0.6", 0.2, 0.2]})).split == [0.6, 0.2, 0.2]
    assert RunConfig().split == [0.7, 0.1, 0.2]


def test_split_reaches_the_loaders(tmp_path):
    import numpy as np
    import pandas as pd

    from sparsest.engine.options import CommonOptions
    from sparsest.engine.prepare import prepare

    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 3)).astype(np.float32)
    v[100:, :] += 50  # validation and test rows far from the training rows: the scaler must not see them
    pd.DataFrame(v, columns=["a", "b", "c"]).to_csv(tmp_path / "sig.csv", index=False)
    prep = prepare(CommonOptions(data=str(tmp_path / "sig.csv"), window=4, horizon=2, split=[0.5, 0.3, 0.2]))
    assert (prep.split.train, prep.split.val, prep.split.test) == ((0, 100), (100, 160), (160, 200))
    assert [len(prep.loaders[k].dataset) for k in ("train", "val", "test")] == [95, 55, 35]  # steps - 6 + 1 windows
    assert prep.split_line() == "  split train 95 windows, val 55 windows, test 35 windows"
    assert float(prep.scaler.mean.ravel()[0]) == pytest.approx(float(v[:100].mean()), abs=1e-4)
    default = prepare(CommonOptions(data=str(tmp_path / "sig.csv"), window=4, horizon=2))
    assert (default.split.train, default.split.val, default.split.test) == ((0, 140), (140, 160), (160, 200))


def test_hours_of_the_day_a_split_misses(tmp_path):
    import numpy as np
    import pandas as pd

    from sparsest.engine.options import CommonOptions
    from sparsest.data.segments import hour_ranges
    from sparsest.engine.prepare import prepare

    v = np.random.default_rng(0).normal(size=(240, 2)).astype(np.float32)  # 10 days of hourly readings
    df = pd.DataFrame(v, columns=["a", "b"])
    df.insert(0, "time", pd.date_range("2026-01-05", periods=240, freq="h"))
    df.to_csv(tmp_path / "sig.csv", index=False)
    prep = prepare(CommonOptions(data=str(tmp_path / "sig.csv"), window=4, horizon=2))
    # validation rows 168..191 (day 8): windows of 6 steps end at 05:00..23:00
    assert prep.split.val == (168, 192) and prep.hours_missing("val") == [0, 1, 2, 3, 4]
    assert hour_ranges(prep.hours_missing("val")) == "00:00-04:59"
    assert prep.hours_missing("train") == [] and "(2026-01-12T00:00 .. 2026-01-12T23:00)" in prep.split_line()
    longer = prepare(CommonOptions(data=str(tmp_path / "sig.csv"), window=4, horizon=2, split=[0.6, 0.2, 0.2]))
    assert longer.hours_missing("val") == []
    assert hour_ranges([0, 1, 5, 23]) == "00:00-01:59, 05:00-05:59, 23:00-23:59"
    from sparsest.report.sections import _hours_fact

    assert _hours_fact({"val_hours_missing": [15, 16, 17]}) == [
        ("validation misses", "15:00-17:59 (3 of 24 hours of the day): the budget cannot see what switched-off sensors "
                              "cost then (--split)")]
    assert _hours_fact({"val_hours_missing": []}) == _hours_fact({}) == []  # plans of before, and full coverage
