"""The joint search space over the last-stage architecture and the fine-tuning hyperparameters.

A space is a flat, ordered list of parameters. Conditional structure (the units of a second
dense layer only matter when there are two, the backbone learning-rate multiplier only when
blocks are unfrozen) is resolved by :meth:`SearchSpace.active`, not by nesting: a flat space
maps one-to-one onto a hyperopt space, so configurations from any source (defaults, the
knowledge base, another run) can be handed to TPE as history without translation tricks.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transfer_automl.errors import InputError

Config = dict[str, Any]

#: Parameters added to the space after trials had been recorded without them (in knowledge
#: bases, seeds, meta-datasets); such a trial took the parameter's default ("off"), and is
#: read back with it.
ADDED_LATER = ("fusion",)


@dataclass(frozen=True)
class Choice:
    """A categorical parameter; ``weights`` bias random sampling (cheap options first)."""

    name: str
    options: tuple[Any, ...]
    weights: tuple[float, ...] | None = None

    def validate(self, value: Any) -> Any:
        if value not in self.options:
            raise InputError(f"{self.name}: expected one of {list(self.options)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Float:
    """A continuous parameter, sampled uniformly or log-uniformly between ``low`` and ``high``."""

    name: str
    low: float
    high: float
    log: bool = False

    def validate(self, value: Any) -> float:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{self.name}: expected a number, got {value!r}") from None
        if not self.low <= value <= self.high:
            raise InputError(f"{self.name}: expected a value in [{self.low}, {self.high}], got {value}")
        return value


Param = Choice | Float


@dataclass(frozen=True)
class SearchSpace:
    """An ordered collection of parameters plus the default configuration.

    Attributes:
        params: the parameters, in a fixed order.
        default: a complete configuration tried first when nothing better is known: the
            strong transfer baseline (frozen backbone, linear head on pooled features).
    """

    params: tuple[Param, ...]
    default: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.validate(self.default)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def validate(self, config: Mapping[str, Any]) -> Config:
        """Check a complete configuration and return it normalised (floats as floats)."""
        missing = [n for n in self.names if n not in config]
        if missing:
            raise InputError(f"configuration lacks {missing}; give every parameter of the space")
        return {p.name: p.validate(config[p.name]) for p in self.params}

    def complete(self, partial: Mapping[str, Any]) -> Config:
        """Fill the parameters a partial configuration leaves out from the default.

        The default's exact solver is not inherited by a configuration it cannot train
        (see :meth:`repair`); an optimizer given explicitly is kept as given.
        """
        unknown = sorted(set(partial) - set(self.names))
        if unknown:
            raise InputError(f"unknown parameters {unknown}; known: {list(self.names)}")
        merged = {**self.default, **partial}
        return self.validate(merged if "optimizer" in partial else self.repair(merged))

    def fix(self, **values: Any) -> "SearchSpace":
        """A copy of this space with the given parameters held at one value each."""
        unknown = sorted(set(values) - set(self.names))
        if unknown:
            raise InputError(f"unknown parameters {unknown}; known: {list(self.names)}")
        params = tuple(Choice(p.name, (values[p.name],)) if p.name in values else p
                       for p in self.params)
        return SearchSpace(params, {**self.default, **values})

    def restrict(self, **options: Sequence[Any]) -> "SearchSpace":
        """A copy in which the given categorical parameters keep only ``options``.

        The default moves to the first allowed option where it falls outside.
        """
        params, default = [], dict(self.default)
        for p in self.params:
            if p.name in options:
                allowed = tuple(o for o in p.options if o in options[p.name])
                if not isinstance(p, Choice) or not allowed:
                    raise InputError(f"{p.name}: cannot restrict to {list(options[p.name])}")
                weights = None
                if p.weights:
                    weights = tuple(w for o, w in zip(p.options, p.weights) if o in allowed)
                p = Choice(p.name, allowed, weights)
                if default[p.name] not in allowed:
                    default[p.name] = allowed[0]
            params.append(p)
        return SearchSpace(tuple(params), default)

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` is a valid point of this space."""
        try:
            self.validate(config)
        except InputError:
            return False
        return True

    def active(self, config: Mapping[str, Any]) -> Config:
        """The parameters that influence the model for this configuration (for display)."""
        return active_settings(config)

    def repair(self, config: Mapping[str, Any]) -> Config:
        """``config`` with the exact solver swapped out where it cannot train the model.

        ``"lbfgs"`` solves a linear head on cached pooled features exactly; a sampler that
        draws it together with hidden layers or unfrozen blocks gets the space's first
        gradient optimizer instead. A space that offers no gradient optimizer is left alone
        (the trial then fails with the reason).
        """
        config = dict(config)
        if config.get("optimizer") == "lbfgs" and not exact_solvable(config):
            gradient = [o for o in self.param("optimizer").options if o != "lbfgs"]
            if gradient:
                config["optimizer"] = gradient[0]
        return config

    def to_hyperopt(self) -> dict[str, Any]:
        """The same space as hyperopt expressions (one flat label per parameter)."""
        from hyperopt import hp

        out: dict[str, Any] = {}
        for p in self.params:
            if isinstance(p, Choice) and p.weights:
                total = sum(p.weights)
                out[p.name] = hp.pchoice(p.name, [(w / total, o) for w, o in zip(p.weights, p.options)])
            elif isinstance(p, Choice):
                out[p.name] = hp.choice(p.name, list(p.options))
            elif p.log:
                out[p.name] = hp.loguniform(p.name, math.log(p.low), math.log(p.high))
            else:
                out[p.name] = hp.uniform(p.name, p.low, p.high)
        return out

    def to_vals(self, config: Mapping[str, Any]) -> dict[str, list]:
        """Encode a configuration the way hyperopt stores it (choice options as indices)."""
        vals: dict[str, list] = {}
        for p in self.params:
            value = config[p.name]
            vals[p.name] = [p.options.index(value) if isinstance(p, Choice) else float(value)]
        return vals

    def from_vals(self, vals: Mapping[str, Sequence]) -> Config:
        """Decode hyperopt's ``vals`` back into a configuration."""
        config: Config = {}
        for p in self.params:
            raw = vals[p.name][0]
            config[p.name] = p.options[int(raw)] if isinstance(p, Choice) else float(raw)
        return config


def is_active(name: str, config: Mapping[str, Any]) -> bool:
    """Whether parameter ``name`` has any effect under ``config``."""
    n_dense = config.get("n_dense", 0)
    if config.get("optimizer") == "lbfgs" and name in _GRADIENT_ONLY:
        return False
    if name.endswith("_1") and name[:-2] in _LAYER_PARAMS:
        return n_dense >= 1
    if name.endswith("_2") and name[:-2] in _LAYER_PARAMS:
        return n_dense >= 2
    if name == "backbone_lr_mult":
        return config.get("unfrozen_blocks", 0) > 0
    if name == "momentum":
        return config.get("optimizer") == "sgd"
    if name == "fusion":
        return fidelity(config) is Fidelity.FEATURES
    return True


def active_settings(config: Mapping[str, Any]) -> Config:
    """The settings of ``config`` that influence its model (``units_2`` only with two dense
    layers, the learning rate only for gradient training, ...)."""
    return {k: v for k, v in config.items() if is_active(k, config)}


def fused_backbones(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The backbones whose pooled features a trial's head reads side by side (concatenated,
    in this order), or () when it reads one backbone's (``config["backbone"]``).

    Fusion applies to heads on cached features only (no unfrozen blocks, no augmentation):
    each backbone's features are computed once, at the trial's resolution, in the same cache
    entries single-backbone trials use.
    """
    value = config.get("fusion", "none")
    if value == "none" or not is_active("fusion", config):
        return ()
    return tuple(value.split("+"))


def fusion_options(backbones: Sequence[str]) -> tuple[str, ...]:
    """``"none"``, the first two backbones together, and the first three (when there are)."""
    return ("none", *("+".join(backbones[:n]) for n in (2, 3) if len(backbones) >= n))


_LAYER_PARAMS = ("units", "activation", "dropout", "batchnorm")
# Settings of minibatch gradient training that the exact solver has no use for.
_GRADIENT_ONLY = ("learning_rate", "momentum", "batch_size", "epochs", "head_dropout")


def exact_solvable(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` is a linear head on cached pooled features: a convex problem that
    the ``"lbfgs"`` optimizer solves to its optimum instead of training by minibatches."""
    return config.get("n_dense", 0) == 0 and fidelity(config) is Fidelity.FEATURES


def default_space(backbones: Sequence[str] = ("efficientnet_lite0",)) -> SearchSpace:
    """The joint head + fine-tuning space, sized for a 2-core CPU.

    Sampling weights put most random draws on cheap trials (frozen backbone, no augmentation),
    which run on cached features; fine-tuning has to earn its place through the search. The
    default configuration is multinomial logistic regression on average-pooled 224-px
    features, solved exactly (``optimizer="lbfgs"``; ``weight_decay`` is the L2 penalty on
    the mean loss, 5e-4 being scikit-learn's ``C=1`` for 1,000 training images).

    With two or more backbones, ``fusion`` lets a head on cached features read several
    backbones' pooled features side by side (see :func:`fused_backbones`).

    Args:
        backbones: catalogue names the search may choose from; the first is the default.
    """
    if not backbones:
        raise InputError("backbones: expected at least one backbone name, got none")
    layer_params: list[Param] = []
    for i in (1, 2):
        layer_params += [
            Choice(f"units_{i}", (64, 128, 256, 512)),
            Choice(f"activation_{i}", ("relu", "gelu", "swish")),
            Float(f"dropout_{i}", 0.0, 0.6),
            Choice(f"batchnorm_{i}", (False, True)),
        ]
    rest = len(backbones) - 1
    backbone_weights = (0.6, *[0.4 / rest] * rest) if rest else None
    fusion = fusion_options(backbones)
    params: list[Param] = [
        Choice("backbone", tuple(backbones), weights=backbone_weights),
        Choice("resolution", (128, 160, 192, 224), weights=(0.1, 0.15, 0.15, 0.6)),
        Choice("pooling", ("avg", "max", "avgmax")),
        *([Choice("fusion", fusion, weights=(0.7, 0.2, 0.1)[:len(fusion)])]
          if len(fusion) > 1 else []),
        Choice("n_dense", (0, 1, 2), weights=(0.5, 0.3, 0.2)),
        *layer_params,
        Float("head_dropout", 0.0, 0.6),
        Choice("optimizer", ("adam", "adamw", "sgd", "lbfgs")),
        Float("learning_rate", 1e-4, 3e-2, log=True),
        Float("momentum", 0.5, 0.99),
        Float("backbone_lr_mult", 0.01, 1.0, log=True),
        Choice("unfrozen_blocks", (0, 1, 2, 3), weights=(0.7, 0.1, 0.1, 0.1)),
        Float("weight_decay", 1e-6, 1e-2, log=True),
        Float("label_smoothing", 0.0, 0.2),
        Choice("batch_size", (16, 32, 64)),
        Choice("epochs", (5, 10, 20, 40)),
        Choice("augment", (0.0, 0.25, 0.5, 1.0), weights=(0.7, 0.1, 0.1, 0.1)),
    ]
    default = {
        "backbone": backbones[0], "resolution": 224, "pooling": "avg", "n_dense": 0,
        "units_1": 256, "activation_1": "relu", "dropout_1": 0.2, "batchnorm_1": False,
        "units_2": 128, "activation_2": "relu", "dropout_2": 0.2, "batchnorm_2": False,
        "head_dropout": 0.2, "optimizer": "lbfgs", "learning_rate": 1e-3, "momentum": 0.9,
        "backbone_lr_mult": 0.1, "unfrozen_blocks": 0, "weight_decay": 5e-4,
        "label_smoothing": 0.0, "batch_size": 32, "epochs": 40, "augment": 0.0,
        **({"fusion": "none"} if len(fusion) > 1 else {}),
    }
    return SearchSpace(tuple(params), default)


class Fidelity(str, enum.Enum):
    """How a trial runs (equal to its value as a string, as stored in results and the KB).

    ``FEATURES``: frozen backbone, no augmentation, the head trains on pooled features
    computed once. ``ACTIVATIONS``: the top blocks train on activations cached at the
    freeze boundary. ``IMAGES``: augmentation needs a forward pass per step.
    """

    FEATURES = "features"
    ACTIVATIONS = "activations"
    IMAGES = "images"

    def __str__(self) -> str:
        return self.value


def fidelity(config: Mapping[str, Any]) -> Fidelity:
    """How a trial with ``config`` runs (see :class:`Fidelity`)."""
    if config.get("augment", 0.0) > 0:
        return Fidelity.IMAGES
    return Fidelity.ACTIVATIONS if config.get("unfrozen_blocks", 0) > 0 else Fidelity.FEATURES
