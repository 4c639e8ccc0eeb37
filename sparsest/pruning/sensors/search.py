"""Sensor-search schemes as plans of phases, run by one Lightning callback.

A plan is a list of :class:`Phase`: train the network (mask scores frozen) or the mask
scores (network frozen) for some optimiser steps, then apply actions: prune to a number of
switched-off sensors by smallest |m| (Eq. 4), or drop / regrow by accumulated gradient at
fixed sparsity (Eqs. 5-7). The schemes of the paper's Table 4 are plans:

- ``dynst-paper``: rounds of (network R, mask M, prune p%, drop / regrow q%); no drop /
  regrow after the last round, so every regrown sensor is re-verified by a later prune.
- ``iterative``: the same rounds without drop / regrow.
- ``one-shot``: network ``rounds * R`` steps, mask ``rounds * M`` steps, prune once.
- ``dst``: a random keep-set at the target sparsity from the start, then rounds of
  (network R, mask M, drop / regrow); RigL-style, the swap fraction starts at
  ``sparsity / rounds`` and decays with a cosine to ``q`` (Evci et al., ICML 2020).
- ``random``: a random keep-set at the target sparsity, no search.
- ``dynst`` (the default), ``qr``, ``keep-set``: no network-training phases; the keep-set
  comes from :mod:`.placement` (QR start + drop / regrow by the measured full-field
  validation loss; QR placement; a user's file).

Every scheme is followed by the same fine-tuning (keep-set fixed, scores frozen) in
:func:`sparsest.experiment.run`, so the random keep-set gets the same fine-tuning budget.

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Alg. 1, Eqs. 3-7, Table 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import lightning as L
import torch

from ...errors import ConfigError
from ..masks import (
    drop_regrow,
    n_to_prune,
    prune_smallest,
    pruning_schedule,
    random_keep,
)
from .options import PLACEMENT_SCHEMES, SCHEMES
from .wrapper import SensorMaskedForecaster


@dataclass
class Phase:
    """Train ``what`` ("network" or "mask") for ``steps`` optimiser steps, then ``actions``.

    Actions: ``("prune", n_off_total)`` switches off kept sensors with the smallest |m|
    until ``n_off_total`` are off; ``("drop_regrow", n_swap)`` exchanges ``n_swap`` sensors.
    """

    what: str
    steps: int
    actions: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class SearchSettings:
    """Hyper-parameters of the sensor search.

    Attributes:
        sparsity: target fraction of sensors switched off, in [0, 1).
        rounds: pruning rounds (paper: 10).
        network_steps: R, optimiser steps on the network per round.
        mask_steps: M, optimiser steps on the mask scores per round.
        regrow_fraction: q, fraction of all sensors exchanged per drop / regrow (q << p).
    """

    sparsity: float = 0.3
    rounds: int = 10
    network_steps: int = 25
    mask_steps: int = 10
    regrow_fraction: float = 0.01


def build_plan(scheme: str, n_sensors: int, s: SearchSettings) -> tuple[list[Phase], bool]:
    """The phases of ``scheme``; the bool says whether to start from a random keep-set.

    Raises:
        ConfigError: unknown scheme or non-positive step counts.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"--scheme: unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if s.network_steps < 0 or s.mask_steps < 1 or s.rounds < 1:
        raise ConfigError("--round-steps must be >= 0, --mask-steps and --rounds >= 1")
    n_swap = max(1, int(round(s.regrow_fraction * n_sensors))) if s.regrow_fraction > 0 else 0
    R, M = s.network_steps, s.mask_steps
    if scheme == "random":
        return [], True
    if scheme in PLACEMENT_SCHEMES:  # the keep-set comes from :mod:`.placement`
        return [], False
    if scheme == "one-shot":
        return [Phase("network", R * s.rounds), Phase("mask", M * s.rounds, [("prune", n_to_prune(n_sensors, s.sparsity))])], False
    if scheme == "dst":
        start = max(n_swap, int(round(s.sparsity / s.rounds * n_sensors)))
        plan = []
        for r in range(s.rounds):
            cos = 0.5 * (1 + math.cos(math.pi * r / s.rounds))
            k = int(round(n_swap + (start - n_swap) * cos))
            plan += [Phase("network", R), Phase("mask", M, [("drop_regrow", k)])]
        return plan, True
    plan = []
    schedule = pruning_schedule(n_sensors, s.sparsity, s.rounds)
    for r, n_off in enumerate(schedule):
        actions = [("prune", n_off)]
        if scheme == "dynst-paper" and r < s.rounds - 1 and n_swap:
            actions.append(("drop_regrow", n_swap))
        plan += [Phase("network", R), Phase("mask", M, actions)]
    return plan, False


def init_keep(model: SensorMaskedForecaster, scheme: str, settings: SearchSettings, seed: int) -> None:
    """Set the starting keep-set: all sensors, or a seeded random one for dst / random."""
    _, random_start = build_plan(scheme, model.n_sensors, settings)
    if random_start and settings.sparsity > 0:
        g = torch.Generator().manual_seed(seed)
        model.keep.copy_(random_keep(model.n_sensors, settings.sparsity, g))
    else:
        model.keep.fill_(True)


def plan_steps(plan: list[Phase]) -> int:
    """Total optimiser steps of a plan."""
    return sum(p.steps for p in plan)


class SensorSearch(L.Callback):
    """Runs a plan of phases on a :class:`SensorMaskedForecaster` during ``Trainer.fit``.

    Use with ``max_steps = plan_steps(plan)``. Freezing is by ``requires_grad``: AdamW skips
    parameters whose gradient is ``None``, so one optimiser serves both phases.

    Attributes:
        history: one dict per action with the step, action, sensors dropped / regrown and
            the sparsity after it (written to the run's ``search_history``).
    """

    def __init__(self, model: SensorMaskedForecaster, plan: list[Phase]):
        self.model = model
        self.plan = [p for p in plan if p.steps > 0 or p.actions]
        self.history: list[dict] = []
        self._phase = 0
        self._done = 0
        self._restored = False

    @property
    def state_key(self) -> str:
        return "SensorSearch"

    def state_dict(self) -> dict:
        """Where in the plan the search is (phase, steps done in it) and the history so far;
        the scores, keep-set and gradient accumulators are module state (checkpointed)."""
        return {"phase": self._phase, "done": self._done, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self._phase, self._done, self.history = int(state["phase"]), int(state["done"]), list(state["history"])
        self._restored = True
        set_phase(self.model, self.plan[self._phase].what if self._phase < len(self.plan) else "finetune")

    def describe(self) -> str:
        """Progress line: round, what trains now, sensors off."""
        rounds = max(1, sum(1 for p in self.plan if p.what == "mask"))
        done_rounds = sum(1 for p in self.plan[: self._phase] if p.what == "mask")
        what = self.plan[self._phase].what if self._phase < len(self.plan) else "done"
        return f"round {min(done_rounds + 1, rounds)}/{rounds}, {what}, {int((~self.model.keep).sum())} sensors off"

    def _enter(self, i: int) -> None:
        self._phase = i
        self._done = 0
        if i >= len(self.plan):
            set_phase(self.model, "finetune")
            return
        set_phase(self.model, self.plan[i].what)
        if self.plan[i].steps == 0:
            self._finish_phase()

    def _finish_phase(self) -> None:
        for action, n in self.plan[self._phase].actions:
            self.apply(action, n)
        self._enter(self._phase + 1)

    def apply(self, action: str, n: int) -> None:
        """Apply one action now (also usable outside training)."""
        m = self.model
        with torch.no_grad():
            if action == "prune":
                n_more = n - int((~m.keep).sum())
                if n_more > 0:
                    m.keep.copy_(prune_smallest(m.scores, m.keep, n_more))
                self.history.append({"action": "prune", "n_off": int((~m.keep).sum()), "sparsity": m.sparsity})
            elif action == "drop_regrow":
                new, dropped, regrown = drop_regrow(m.grad_acc, m.keep, n)
                m.keep.copy_(new)
                if regrown.numel():
                    # a regrown sensor restarts from the median |m| of the kept ones, so the
                    # next prune judges it after it has trained, not by its old small score
                    m.scores[regrown] = m.scores[m.keep].abs().median()
                m.grad_acc.zero_()
                self.history.append(
                    {"action": "drop_regrow", "dropped": dropped.tolist(), "regrown": regrown.tolist(), "sparsity": m.sparsity}
                )
            else:
                raise ValueError(f"unknown action {action!r}")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._restored:  # resumed mid-search: the phase was restored with the checkpoint
            self._restored = False
            return
        self._enter(0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._phase >= len(self.plan):
            return
        self._done += 1
        if self._done >= self.plan[self._phase].steps:
            self._finish_phase()

    def on_train_end(self, trainer, pl_module) -> None:
        while self._phase < len(self.plan):  # fit stopped early: still reach the target
            self._finish_phase()
        set_phase(self.model, "finetune")


def set_phase(model: SensorMaskedForecaster, what: str) -> None:
    """Freeze / unfreeze for a phase: "network", "mask" or "finetune" (= network, no tracking)."""
    train_mask = what == "mask"
    model.scores.requires_grad_(train_mask)
    for name, p in model.named_parameters():
        if name != "scores":
            p.requires_grad_(not train_mask)
    model.track_grad = train_mask
