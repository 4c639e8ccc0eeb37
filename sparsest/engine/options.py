"""Typed options shared by every command, and the one way to build them.

Every command's options are a pydantic dataclass derived from :class:`CommonOptions`: the
fields each command shares (data, window, batch size, learning rate, epochs, seed, output
folder, Lightning's accelerator / devices / strategy, ...) are declared here once, with
their help text, range and type next to them; a command's config adds only its own. The
command line (:mod:`sparsest.cli`) builds its sub-parsers from these fields, and
:func:`build_options` turns defaults < ``--config FILE.yaml`` < ``--set KEY=VALUE`` <
command-line options into a validated object, or raises a one-line
:class:`~sparsest.errors.ConfigError` naming the option and where it came from.

Validation (pydantic): values are converted to the field's type or refused (``epochs: 1.7``,
``null``, lists, ``true`` for a number); NaN and inf are refused everywhere; ranges are
declared per field (``ge``, ``gt``, ...). Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from ..errors import ConfigError

OPTION_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False)

#: a config file may expand (YAML aliases resolved) to at most this many nodes
MAX_CONFIG_NODES = 10_000
MAX_CONFIG_BYTES = 1 << 20


def option(default: Any = dataclasses.MISSING, help: str = "", *, aliases: tuple[str, ...] = (), cli: bool = True,
           default_factory=None, **constraints) -> Any:
    """A field of an options dataclass: default, help text (shown by ``--help``), old names
    still accepted (``aliases``, e.g. ``("sparsity",)``), and pydantic constraints
    (``ge``, ``gt``, ``le``, ``lt``)."""
    extra = {"aliases": list(aliases), "cli": cli}
    if default_factory is not None:
        return Field(default_factory=default_factory, description=help, json_schema_extra=extra, **constraints)
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def flag(name: str) -> str:
    """``"batch_size"`` -> ``"--batch-size"``."""
    return "--" + name.replace("_", "-")


@dataclass(config=OPTION_CONFIG)
class Options:
    """Base of every options dataclass: refuses booleans for numbers (pydantic would read
    ``true`` as 1) and offers :meth:`check` for cross-field rules and :meth:`to_dict`."""

    UNUSED: ClassVar[tuple[str, ...]] = ()  # shared fields this command does not use

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, v, info):
        ann = str(cls.__pydantic_fields__[info.field_name].annotation)
        if isinstance(v, bool) and "bool" not in ann and ("int" in ann or "float" in ann):
            raise ValueError(f"expected a number, got {v}")
        return v

    def check(self):
        """Cross-field and registry checks (subclasses extend). Raises ConfigError."""
        return self

    def to_dict(self) -> dict:
        """Plain dict of every field the command uses (what ``config.yaml`` holds)."""
        used = fields_of(type(self))
        return {k: v for k, v in dataclasses.asdict(self).items() if k in used}


def _limit(v):
    if isinstance(v, float):
        if not 0 < v <= 1:
            raise ValueError(f"a fraction must be in (0, 1], a count a whole number >= 1, got {v}")
    elif v < 1:
        raise ValueError(f"a fraction must be in (0, 1], a count a whole number >= 1, got {v}")
    return v


@dataclass(config=OPTION_CONFIG)
class CommonOptions(Options):
    """Options every training command shares (units in brackets)."""

    data: str = option("ghcnd-us", "data set name (see `sparsest datasets`) or path to your signals / grid file "
                       "(CSV T x N with a header of sensor ids, .npz/.npy [T, N(, C)], PEMS .npz, METR-LA .h5, grid "
                       ".npz/.nc [T, (C,) H, W], TaxiBJ .h5)")
    data_dir: str | None = option(None, "folder with the named data sets (metr-la-week/, era5-t2m-uk/) "
                                  "[default: $SPARSEST_DATA_DIR, else ../shared/data beside the repository]")
    adjacency: str | None = option(None, "your adjacency (your own graph data only): dense CSV/NPY N x N, edge-list CSV "
                                   "(from,to | source,target | src,dst + weight|cost|distance), or DCRNN adj_mx.pkl")
    locations: str | None = option(None, "your sensor locations (your own graph data only): CSV with sensor_id, latitude, longitude; "
                                   "without --adjacency the graph is built from them (--knn)")
    knn: int | None = option(None, "neighbours per sensor of the graph built from --locations when no --adjacency is given "
                             "(Gaussian kernel of the haversine distance, as DCRNN) [default: 8]", ge=1)
    segments: str | None = option(None, "your segment table (your own data only): CSV start,end of the unbroken runs (row numbers "
                                  "[start, end) or timestamps, end inclusive); windows never cross a gap. Without it, gaps in the "
                                  "time column split the series")
    time_slice: str | None = option(None, "use only a slice of the (valid) time steps, START:STOP as a Python slice, e.g. "
                                    "'--time-slice=-20000:' for the last 20000 (quick runs on a long series); the --split "
                                    "is made inside it [default: all]")
    split: list[float] = option(help="train, validation and test fractions of the (valid) time axis, in time order "
                                "(chronological split, windows never cross a boundary); three numbers > 0 that sum to 1, "
                                "e.g. '--split 0.7 0.15 0.15' for a validation split of at least a day on a one-week "
                                "series [default: 0.7 0.1 0.2]", default_factory=lambda: [0.7, 0.1, 0.2])
    window: int | None = option(None, "input length T [time steps] [default: per data set, 12 for METR-LA]", ge=1)
    horizon: int | None = option(None, "forecast length S [time steps] [default: per data set, 12 for METR-LA]", ge=1)
    patch_size: int = option(4, "patch side p [pixels]; on grids each p x p patch is one sensor", ge=1)
    backbone: str = option("stid", "forecaster (see `sparsest backbones`)")
    backbone_options: dict[str, Any] = option(help="extra backbone constructor options as a YAML mapping, "
                                              "e.g. '{hidden_size: 64}'", default_factory=dict)
    batch_size: int = option(32, "windows per batch", ge=1)
    lr: float = option(2e-3, "learning rate of the network (AdamW)", gt=0)
    weight_decay: float = option(1e-4, "AdamW weight decay of the network (0 = none)", ge=0)
    grad_clip: float = option(5.0, "clip the gradient norm of every optimiser step to this (as BasicTS and the Graph "
                              "WaveNet code; 0 = no clipping)", ge=0)
    ema: float = option(0.0, "validate, select and keep an exponential moving average of the weights with this "
                        "half-life [epochs] (Lightning's EMAWeightAveraging; 0 = off, the raw weights)", ge=0, le=1000)
    epochs: int = option(40, "max training epochs", ge=1)
    patience: int = option(8, "early-stopping patience [epochs without validation-MAE gain]", ge=0)
    seed: int = option(0, "random seed (weights, batches, random choices)", ge=0, le=2**32 - 1)
    out: str = option("runs", "parent folder for run directories; each run gets a new one")
    accelerator: str = option("cpu", "Lightning accelerator: cpu, gpu, auto")
    devices: int | str = option(1, "Lightning devices per node: a count >= 1 or auto")
    strategy: str = option("auto", "Lightning strategy, e.g. ddp (several GPUs or CPU processes), ddp_spawn")
    limit_train_batches: int | float = option(1.0, "training batches per epoch: a fraction in (0, 1] or a count >= 1 "
                                              "(quick runs)")

    def check_backbone(self):
        """The registry entry of ``backbone``, with ``backbone_options`` checked against what
        it takes. Raises ConfigError naming the backbone or the option."""
        from ..backbones import check_backbone_options, get_backbone_entry

        entry = get_backbone_entry(self.backbone)
        check_backbone_options(self.backbone, self.backbone_options)
        return entry

    @field_validator("limit_train_batches")
    @classmethod
    def _check_limit(cls, v):
        return _limit(v)

    @field_validator("split")
    @classmethod
    def _check_split(cls, v):
        if len(v) != 3:
            raise ValueError(f"three fractions (train, validation, test), got {len(v)}")
        if min(v) <= 0 or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be > 0 and sum to 1, got {' '.join(f'{x:g}' for x in v)}")
        return [float(x) for x in v]

    @field_validator("devices")
    @classmethod
    def _check_devices(cls, v):
        if isinstance(v, str):
            if v.strip() == "auto":
                return "auto"
            if not v.strip().isdigit():
                raise ValueError(f"a count >= 1 or auto, got {v!r}")
            v = int(v)
        if v < 1:
            raise ValueError(f"a count >= 1 or auto, got {v}")
        return v

    @field_validator("data", "out", "accelerator", "strategy", "backbone")
    @classmethod
    def _nonempty(cls, v):
        if not v.strip():
            raise ValueError("must not be empty")
        return v


# --------------------------------------------------------------------------- fields


def fields_of(cls) -> dict:
    """``name -> pydantic FieldInfo`` of an options dataclass, in declaration order, without
    the shared fields the command does not use (its ``UNUSED`` class attribute): those are
    neither offered on its command line nor accepted from a config file."""
    unused = set(getattr(cls, "UNUSED", ()))
    return {k: v for k, v in cls.__pydantic_fields__.items() if k not in unused}


def aliases_of(cls) -> dict[str, str]:
    """Old or alternative key -> field name (e.g. ``sparsity -> sensor_sparsity``)."""
    out = {}
    for name, info in fields_of(cls).items():
        for a in (info.json_schema_extra or {}).get("aliases", []):
            out[a] = name
    return out


# --------------------------------------------------------------------------- building


def _label(source: str, key: str) -> str:
    if source == "cli":
        return flag(key)
    if source == "--set":
        return f"--set {key}"
    return f"{source}: {key}"


_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def range_text(info) -> str:
    """``"in [0, 1)"``, ``">= 1"``, ``"> 0"`` ... from a field's constraints."""
    lo = hi = None
    for m in info.metadata:
        for attr, sym in (("ge", "["), ("gt", "(")):
            if getattr(m, attr, None) is not None:
                lo = (sym, getattr(m, attr))
        for attr, sym in (("le", "]"), ("lt", ")")):
            if getattr(m, attr, None) is not None:
                hi = (sym, getattr(m, attr))
    def num(v):
        return str(v) if isinstance(v, int) else f"{v:g}"

    if lo and hi:
        return f"in {lo[0]}{num(lo[1])}, {num(hi[1])}{hi[0]}"
    if lo:
        return f"{'>=' if lo[0] == '[' else '>'} {num(lo[1])}"
    if hi:
        return f"{'<=' if hi[0] == ']' else '<'} {num(hi[1])}"
    return "in range"


def build_options(cls, *layers: tuple[str, dict]):
    """Build and check ``cls`` from layers of values, later layers winning.

    Args:
        cls: an :class:`Options` dataclass.
        layers: ``(source, {key: value})`` pairs; ``source`` is ``"cli"`` (values from the
            command line, raw strings converted by type), ``"--set"``, or a config file name.

    Returns:
        the validated, :meth:`~Options.check`-ed options.

    Raises:
        ConfigError: an unknown key (with the closest known one), a value of the wrong type,
            NaN / inf, or out of range: one line naming the option and where it came from.
    """
    known = fields_of(cls)
    alias = aliases_of(cls)
    values: dict = {}
    origin: dict = {}
    for source, layer in layers:
        canon: dict = {}
        for raw_key, value in layer.items():
            key = str(raw_key).replace("-", "_")
            key = alias.get(key, key)
            if key in canon and canon[key] != raw_key:
                raise ConfigError(f"{_label(source, str(raw_key))}: given twice (also as {canon[key]}); give one")
            canon[key] = raw_key
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
                raise ConfigError(f"{_label(source, str(raw_key))}: unknown option{hint}")
            values[key] = value
            origin[key] = (source, str(raw_key).replace("-", "_"))
    try:
        opts = cls(**values)
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        msg = err["msg"]
        if err["type"] in _RANGE_ERRORS and key in known:
            msg = f"must be {range_text(known[key])}"
        msg = msg[0].lower() + msg[1:] if msg else msg
        msg = msg.replace("value error, ", "")
        got = err.get("input")
        source, used = origin.get(key, ("cli", key))
        text = f"{_label(source, used)}: {msg}"
        if got is not None and not isinstance(got, (dict, list)) and "got" not in msg:
            text += f", got {got!r}"
        raise ConfigError(text) from None
    return opts.check()


def parse_set(items: list[str], cls) -> dict:
    """``["batch_size=16", ...]`` -> ``{"batch_size": 16}`` (values parsed as YAML scalars).

    Raises:
        ConfigError: an item without ``=``, an unknown key, or a value that is not a scalar.
    """
    import yaml

    known = set(fields_of(cls)) | set(aliases_of(cls))
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set: expected KEY=VALUE, got {item!r}")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise ConfigError(f"--set {key}: unknown option" + (f"; did you mean {close[0]}?" if close else
                                                                 f"; known: {', '.join(fields_of(cls))}"))
        try:
            out[key] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key] = value
        if isinstance(out[key], str) and out[key] != value:
            out[key] = value
    return out


def _expanded_nodes(node, memo: dict) -> int:
    """Nodes of a composed YAML graph with aliases expanded (memoised: alias bombs are counted,
    not built)."""
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_CONFIG_NODES + 1  # cycles count as too big
    if isinstance(node, yaml.ScalarNode):
        n = 1
    elif isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded_nodes(c, memo) for c in node.value)
    else:
        n = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    memo[key] = n = min(n, MAX_CONFIG_NODES + 1)
    return n


def load_yaml(path: str | Path) -> dict:
    """Read a ``--config`` YAML mapping of option: value.

    Raises:
        ConfigError: missing, too large (over 1 MiB, or over 10,000 values once aliases are
            expanded: YAML alias bombs), not valid YAML, or not a mapping.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {p}: no such file")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"--config {p}: larger than 1 MiB; a config file holds a few options")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {p}: cannot read ({e.__class__.__name__})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if node is None:
        return {}
    if _expanded_nodes(node, {}) > MAX_CONFIG_NODES:
        raise ConfigError(f"{p}: expands to more than {MAX_CONFIG_NODES} values (YAML aliases); refused")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: expected a mapping of option: value, got a {type(cfg).__name__}")
    return cfg


__all__ = ["CommonOptions", "Options", "build_options", "parse_set", "load_yaml", "option", "flag", "fields_of",
           "aliases_of", "OPTION_CONFIG"]
