"""Backbone options: shared constructor names, named errors for unknown / wrong-kind options,
one-line summaries, and duplicate registrations (backbones and data sets)."""

import hashlib
import inspect

import numpy as np
import pytest
import torch

from sparsest.backbones import (
    DataSpec,
    check_backbone_options,
    create_backbone,
    get_backbone_entry,
    get_backbone_options,
    list_backbones,
    register_backbone,
)
from sparsest.backbones.grid.convlstm import ConvLSTM
from sparsest.backbones.grid.simvp import SimVP
from sparsest.backbones.grid.tau import TAU
from sparsest.backbones.grid.vit import ViT
from sparsest.backbones.registry import _REGISTRY as BACKBONES
from sparsest.datasets import _REGISTRY as DATASETS
from sparsest.datasets import get_dataset_entry, register_dataset
from sparsest.errors import ConfigError

GRID = DataSpec("grid", window=4, horizon=3, n_channels=2, n_nodes=9 * 11, height=9, width=11, patch_size=3)
GRAPH = DataSpec("graph", window=6, horizon=4, n_channels=2, n_nodes=5, steps_per_day=24)
GRID_CLASSES = {"simvp": SimVP, "tau": TAU, "convlstm": ConvLSTM, "vit": ViT}


@pytest.fixture
def scratch_names():
    """Names registered by a test are removed afterwards."""
    before_b, before_d = set(BACKBONES), set(DATASETS)
    yield
    for n in set(BACKBONES) - before_b:
        del BACKBONES[n]
    for n in set(DATASETS) - before_d:
        del DATASETS[n]


# --- 1. shared constructor names -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRID_CLASSES))
def test_grid_constructors_use_the_graph_names(name):
    params = inspect.signature(GRID_CLASSES[name]).parameters
    for shared in ("input_size", "window", "horizon", "hidden_size"):
        assert shared in params, shared
    for old in ("in_channels", "c_in", "channels", "hid_s", "hidden", "dim", "heads", "in_steps", "out_steps", "pred_len"):
        assert old not in params, old
    opts = get_backbone_options(name)
    assert opts is not None and "hidden_size" in opts
    assert not {"input_size", "window", "horizon", "height", "width"} & set(opts)  # filled from the data


def _width(name, model):
    return {
        "simvp": lambda m: m.encoder[0].conv.out_channels,
        "tau": lambda m: m.encoder[0].conv.out_channels,
        "convlstm": lambda m: m.stem.conv.out_channels,
        "vit": lambda m: m.embed.out_features,
    }[name](model)


@pytest.mark.parametrize("name", sorted(GRID_CLASSES))
def test_hidden_size_sets_the_width(name):
    kw = {"n_heads": 2} if name == "vit" else {}
    model = create_backbone(name, GRID, hidden_size=8, **kw)
    assert _width(name, model) == 8
    assert _width(name, create_backbone(name, GRID, hidden_size=12, **kw)) == 12
    with torch.no_grad():
        assert model(torch.randn(1, 4, 2, 9, 11)).shape == (1, 3, 2, 9, 11)


# state-dict keys and shapes as written by the code before the renames (old option names
# hid_s / hidden / dim / heads), so checkpoints saved then still load
STATE_DICT = {
    "simvp": (dict(hidden_size=8, hid_t=16), 134, "4a08e21042b0dfcf"),
    "tau": (dict(hidden_size=8, hid_t=16), 142, "7eb243af2dc953f0"),
    "convlstm": (dict(hidden_size=8), 18, "77676c402751cd03"),
    "vit": (dict(hidden_size=16, n_heads=2, decoder_depth=1), 68, "de8d164e40f521b0"),
}


@pytest.mark.parametrize("name", sorted(STATE_DICT))
def test_state_dict_keys_unchanged(name):
    kw, n_keys, digest = STATE_DICT[name]
    sd = create_backbone(name, GRID, **kw).state_dict()
    text = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(sd.items()))
    assert len(sd) == n_keys
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == digest


# --- 2. unknown / wrong-kind options ---------------------------------------------------


def test_unknown_option_is_named():
    with pytest.raises(ConfigError) as e:
        create_backbone("simvp", GRID, hiden_size=8)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--backbone-options: simvp has no option 'hiden_size'")
    assert "did you mean 'hidden_size'" in msg and "it takes: hidden_size, hid_t" in msg


@pytest.mark.parametrize("name", list_backbones(trainable=True))
def test_every_backbone_rejects_an_unknown_option(name):
    spec = GRID if get_backbone_entry(name).kind == "grid" else GRAPH
    with pytest.raises(ConfigError, match=f"{name} has no option 'no_such_option'"):
        create_backbone(name, spec, no_such_option=1)


@pytest.mark.parametrize("old", [("simvp", "hid_s"), ("tau", "hid_s"), ("convlstm", "hidden"), ("vit", "dim"), ("vit", "heads")])
def test_old_names_are_rejected_by_name(old):
    name, key = old
    with pytest.raises(ConfigError, match=f"no option '{key}'"):
        create_backbone(name, GRID, **{key: 8})


def test_data_fields_are_not_options():
    with pytest.raises(ConfigError, match="simvp sets 'window' from the data"):
        create_backbone("simvp", GRID, window=3)
    with pytest.raises(ConfigError, match="stid sets 'n_nodes' from the data"):
        create_backbone("stid", GRAPH, n_nodes=3)


def test_baselines_take_no_options():
    with pytest.raises(ConfigError, match="persistence has no option 'hidden_size'; it takes none"):
        create_backbone("persistence", GRID, hidden_size=8)


@pytest.mark.parametrize(
    "name, key, value",
    [("simvp", "hidden_size", "8"), ("simvp", "hidden_size", 8.0), ("convlstm", "hidden_size", True),
     ("convlstm", "residual", 1), ("vit", "mlp_ratio", "2"), ("convlstm", "feed", 0), ("stid", "dropout", "0.1")],
)
def test_wrong_kind_is_named(name, key, value):
    spec = GRID if get_backbone_entry(name).kind == "grid" else GRAPH
    with pytest.raises(ConfigError, match=f"{name} option '{key}' takes"):
        create_backbone(name, spec, **{key: value})


def test_right_kinds_pass():
    check_backbone_options("vit", {"mlp_ratio": 2, "hidden_size": np.int64(8), "residual": np.bool_(False)})
    check_backbone_options("gwn", {"output_size": 1, "dropout": 0.0})
    model = create_backbone("stid", GRAPH, hidden_size=None, dropout=0)  # None: the default
    assert model is not None


def test_errors_from_the_model_are_not_rewritten():
    with pytest.raises(ValueError, match="feed must be") as e:
        create_backbone("convlstm", GRID, feed="nope")
    assert not isinstance(e.value, ConfigError)


def test_entry_options_and_unknowable_options(scratch_names):
    @register_backbone("test-explicit", kind="any", summary="test")
    def explicit(spec, *, width: int = 4):
        return torch.nn.Linear(width, width)

    assert list(get_backbone_options("test-explicit")) == ["width"]
    assert create_backbone("test-explicit", GRID, width=3).in_features == 3
    with pytest.raises(ConfigError, match="test-explicit has no option 'widht'.*it takes: width"):
        create_backbone("test-explicit", GRID, widht=3)

    @register_backbone("test-opaque", kind="any", summary="test")
    def opaque(spec, **kwargs):  # no class to inspect: options are not checked here
        return torch.nn.Linear(kwargs["width"], 1)

    assert get_backbone_options("test-opaque") is None
    assert create_backbone("test-opaque", GRID, width=3).in_features == 3
    with pytest.raises(KeyError):
        create_backbone("test-opaque", GRID, other=3)


# --- 3. duplicate registrations; 5. one-line summaries ----------------------------------


def test_backbone_registered_twice(scratch_names):
    with pytest.raises(ValueError, match="backbone 'simvp' registered twice"):
        register_backbone("simvp", kind="grid", summary="again")(lambda spec: None)
    assert get_backbone_entry("simvp").fn.__name__ == "simvp"


def test_dataset_registered_twice(scratch_names):
    def loader(data_dir):
        raise AssertionError

    register_dataset("test-twice", "graph", "first", window=2, horizon=1)(loader)
    with pytest.raises(ValueError, match="data set 'test-twice' registered twice"):
        register_dataset("test-twice", "grid", "second", window=3, horizon=2)(loader)
    assert get_dataset_entry("test-twice").summary == "first"
    with pytest.raises(ValueError, match="data set 'ghcnd-us' registered twice"):
        register_dataset("ghcnd-us", "graph", "again", window=7, horizon=7)(loader)


@pytest.mark.parametrize("name", list_backbones())
def test_summary_is_one_line(name):
    summary = get_backbone_entry(name).summary
    assert summary and summary == summary.strip() and "\n" not in summary and "\r" not in summary


def test_multiline_summary_refused(scratch_names):
    with pytest.raises(ValueError, match="one line"):
        register_backbone("test-multiline", kind="any", summary="two\nlines")(lambda spec: None)
    assert "test-multiline" not in list_backbones()
