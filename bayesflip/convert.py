"""Turn a deterministic Keras model into a Bayesian one.

:func:`to_bayesian` clones a built ``Sequential`` or functional model (nested
models included), replacing every ``Dense``, ``Conv1D/2D/3D``,
``Conv1D/2D/3DTranspose``, ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``,
``LSTM``, ``GRU`` and ``Embedding`` layer by its
flipout counterpart and keeping every other layer, and the graph, intact.
With ``moped_delta`` (the default) the posterior is initialised from the
trained weights as in MOPED (Krishnan et al., AAAI 2020): posterior mean
``loc = w``, posterior scale ``δ·|w|``, and a Gaussian prior centred on ``w``
(:class:`bayesflip.priors.CenteredNormal`). In posterior-mean mode the
converted model predicts exactly what the original did.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from bayesflip import layers as bl
from bayesflip import priors as priors_lib
from bayesflip import random as rnd
from bayesflip._checks import check_real
from bayesflip.posteriors import GaussianPosterior

__all__ = ["to_bayesian", "from_tfp", "conversions"]


def _conv_args(layer, transpose: bool) -> dict:
    c = layer.get_config()
    args = {
        k: c[k]
        for k in (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "data_format",
            "dilation_rate",
            "activation",
            "use_bias",
        )
    }
    if transpose:
        args["output_padding"] = c.get("output_padding")
    else:
        args["groups"] = c.get("groups", 1)
    return args


def _depthwise_args(layer, separable: bool) -> dict:
    c = layer.get_config()
    keys = ["kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate"]
    keys += ["activation", "use_bias"] + (["filters"] if separable else [])
    return {k: c[k] for k in keys}


def _dense_args(layer) -> dict:
    c = layer.get_config()
    return {k: c[k] for k in ("units", "activation", "use_bias")}


def _rnn_args(layer) -> dict:
    c = layer.get_config()
    keys = [
        "units",
        "activation",
        "recurrent_activation",
        "use_bias",
        "return_sequences",
        "return_state",
        "go_backwards",
        "unroll",
    ]
    if isinstance(layer, keras.layers.LSTM):
        keys.append("unit_forget_bias")
    return {k: c[k] for k in keys}


def _embedding_args(layer) -> dict:
    c = layer.get_config()
    return {k: c[k] for k in ("input_dim", "output_dim", "mask_zero")}


def _rnn_unsupported(layer) -> str | None:
    c = layer.get_config()
    reasons = []
    if c.get("dropout") or c.get("recurrent_dropout"):
        reasons.append("dropout/recurrent_dropout > 0")
    if c.get("stateful"):
        reasons.append("stateful=True")
    if isinstance(layer, keras.layers.GRU) and not c.get("reset_after", True):
        reasons.append("reset_after=False")
    return ", ".join(reasons) or None


# Keras class -> (bayesflip class, argument extractor, names of the weights in
# ``get_weights()`` order, mapped to posterior attributes / plain weights).
_CONVERSIONS: dict[type, tuple] = {
    keras.layers.Dense: (bl.DenseFlipout, _dense_args, ("kernel_posterior", "bias")),
    keras.layers.Conv1D: (bl.Conv1DFlipout, lambda l: _conv_args(l, False), ("kernel_posterior", "bias")),
    keras.layers.Conv2D: (bl.Conv2DFlipout, lambda l: _conv_args(l, False), ("kernel_posterior", "bias")),
    keras.layers.Conv3D: (bl.Conv3DFlipout, lambda l: _conv_args(l, False), ("kernel_posterior", "bias")),
    keras.layers.Conv1DTranspose: (
        bl.Conv1DTransposeFlipout,
        lambda l: _conv_args(l, True),
        ("kernel_posterior", "bias"),
    ),
    keras.layers.Conv2DTranspose: (
        bl.Conv2DTransposeFlipout,
        lambda l: _conv_args(l, True),
        ("kernel_posterior", "bias"),
    ),
    keras.layers.Conv3DTranspose: (
        bl.Conv3DTransposeFlipout,
        lambda l: _conv_args(l, True),
        ("kernel_posterior", "bias"),
    ),
    keras.layers.LSTM: (bl.LSTMFlipout, _rnn_args, ("kernel_posterior", "recurrent_posterior", "bias")),
    keras.layers.GRU: (bl.GRUFlipout, _rnn_args, ("kernel_posterior", "recurrent_posterior", "bias")),
    keras.layers.Embedding: (bl.EmbeddingFlipout, _embedding_args, ("embeddings_posterior",)),
    keras.layers.DepthwiseConv1D: (
        bl.DepthwiseConv1DFlipout,
        lambda l: _depthwise_args(l, False),
        ("kernel_posterior", "bias"),
    ),
    keras.layers.DepthwiseConv2D: (
        bl.DepthwiseConv2DFlipout,
        lambda l: _depthwise_args(l, False),
        ("kernel_posterior", "bias"),
    ),
    keras.layers.SeparableConv1D: (
        bl.SeparableConv1DFlipout,
        lambda l: _depthwise_args(l, True),
        ("depthwise_kernel", "pointwise_kernel", "bias"),
    ),
    keras.layers.SeparableConv2D: (
        bl.SeparableConv2DFlipout,
        lambda l: _depthwise_args(l, True),
        ("depthwise_kernel", "pointwise_kernel", "bias"),
    ),
}


def _unsupported_reason(layer) -> str | None:
    if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        return _rnn_unsupported(layer)
    if isinstance(layer, keras.layers.Dense) and getattr(layer, "lora_enabled", False):
        return "LoRA enabled"
    return None


#: Layers that stay deterministic by design: their weights are statistics and
#: per-channel affine parameters around the linear ops, not a linear op of their own.
_NORMALIZATION: tuple[type, ...] = tuple(
    getattr(keras.layers, name)
    for name in (
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "UnitNormalization",
        "Normalization",
    )
    if hasattr(keras.layers, name)
)


def _summary(num_converted: int, normalization: list[str], skipped: list[str]) -> str:
    """What :func:`to_bayesian` left deterministic, and why."""
    parts = [f"to_bayesian: {num_converted} layer(s) converted to flipout"]
    if normalization:
        counts = ", ".join(f"{name}: {normalization.count(name)}" for name in dict.fromkeys(normalization))
        parts.append(f"{len(normalization)} normalisation layer(s) stay deterministic by design ({counts})")
    if skipped:
        parts.append(
            f"{len(skipped)} layer(s) with weights have no flipout counterpart and stay deterministic: "
            f"{', '.join(skipped)}"
        )
    return "; ".join(parts) + "."


def conversions() -> dict[type, type]:
    """The layers :func:`to_bayesian` converts: ``{Keras class: bayesflip class}`` (a new dict).

    Example:
    >>> conversions()[keras.layers.Dense].__name__
    'DenseFlipout'
    """
    return {keras_cls: entry[0] for keras_cls, entry in _CONVERSIONS.items()}


def __getattr__(name: str) -> Any:
    if name == "CONVERSIONS":
        warnings.warn(
            "bayesflip.convert.CONVERSIONS is deprecated and will be removed: use "
            "bayesflip.convert.conversions() ({Keras class: bayesflip class}).",
            DeprecationWarning,
            stacklevel=2,
        )
        table: Mapping[type, tuple] = types.MappingProxyType(_CONVERSIONS)
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_bayesian(
    model: keras.Model,
    *,
    moped_delta: float | None = 0.1,
    prior_scale: float = 1.0,
    prior: priors_lib.Prior | str | dict | None = None,
    copy_weights: bool = True,
    estimator: str = "flipout",
    init_scale: float = 1e-2,
    min_scale: float = 1e-6,
    kl_weight: float | None = None,
    seed: int | None = 0,
    strict: bool = False,
) -> keras.Model:
    """A Bayesian (flipout) copy of a deterministic Keras model.

    Supported layers (exact classes): ``Dense``, ``Conv1D/2D/3D``,
    ``Conv1D/2D/3DTranspose``, ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``
    (both kernels Bayesian), ``LSTM``/``GRU`` (without dropout, not
    stateful, GRU with ``reset_after=True``) and ``Embedding``. Every other
    layer is cloned unchanged with its weights. A ``UserWarning`` summarises
    the layers with weights left deterministic: normalisation layers
    (``BatchNormalization``, ``LayerNormalization``, ``GroupNormalization``,
    ``RMSNormalization``, ``Normalization``) by design, counted by class; any
    other one by name and class, as having no flipout counterpart (with
    ``strict`` these raise a ``ValueError``). The original model is not
    modified. Weight regularizers of converted layers are dropped (the KL
    term takes their place).

    Args:
        model: a built ``Sequential`` or functional model.
        moped_delta: MOPED initialisation when not ``None``: posterior mean =
            trained weight ``w``, posterior scale ``moped_delta·|w|`` (floored
            just above ``min_scale``), prior :class:`~bayesflip.priors.CenteredNormal`
            ``N(w, prior_scale²)``. Needs ``copy_weights``.
        prior_scale: scale of the MOPED prior.
        prior: prior of the converted layers when ``moped_delta`` is ``None``
            (see :func:`bayesflip.priors.get`).
        copy_weights: initialise posterior means (and deterministic biases)
            from the trained weights; when False, the converted layers start
            from their initializers.
        estimator: estimator of the converted layers (recurrent and embedding
            layers support ``"flipout"`` and ``"shared"``).
        init_scale: initial posterior scale when ``moped_delta`` is ``None``.
        min_scale, kl_weight: passed to every converted layer.
        seed: base seed; converted layer ``i`` gets ``seed + i`` (``None``:
            random seeds).
        strict: raise instead of warning when a layer with weights other than
            a normalisation layer is left deterministic.

    Returns:
        A new ``keras.Model`` of the same kind with the same inputs/outputs.

    Example:
    >>> import keras, numpy as np, bayesflip
    >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
    ...                         keras.layers.Dense(2)])
    >>> bnn = to_bayesian(net, moped_delta=0.1)
    >>> [type(l).__name__ for l in bnn.layers]
    ['DenseFlipout', 'DenseFlipout']
    >>> x = np.ones((2, 3), "float32")
    >>> with bayesflip.posterior_mean(bnn):
    ...     bool(np.allclose(bnn(x), net(x), rtol=1e-6, atol=1e-7))
    True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"to_bayesian expects a keras.Model (Sequential or functional), got {type(model).__name__}."
        )
    if not model.built or not hasattr(model, "inputs") or not model.inputs:
        raise ValueError(
            f"to_bayesian: model '{model.name}' must be a built Sequential or functional model with known "
            "inputs "
            "(start it with keras.Input); subclassed models cannot be cloned layer by layer."
        )
    if moped_delta is not None:
        moped_delta = check_real("to_bayesian", "moped_delta", moped_delta, low=0)
        if not copy_weights:
            raise ValueError(
                "to_bayesian: `moped_delta` initialises from the trained weights; it needs copy_weights=True."
            )
        prior_scale = check_real("to_bayesian", "prior_scale", prior_scale, low=0)
        if prior is not None:
            raise ValueError(
                "to_bayesian: `prior` is replaced by the MOPED prior; pass moped_delta=None to use it."
            )
    if seed is not None:
        seed = rnd.resolve_seed(seed, caller="to_bayesian")

    converted: dict[int, tuple[keras.layers.Layer, keras.layers.Layer]] = {}
    kept: list[tuple[keras.layers.Layer, keras.layers.Layer]] = []
    skipped: list[str] = []
    normalization: list[str] = []
    counter = [0]

    def clone(layer):
        if not isinstance(layer, keras.layers.Layer):  # a bare op in the graph (e.g. a mask comparison)
            return layer
        entry = _CONVERSIONS.get(type(layer))
        reason = _unsupported_reason(layer) if entry else None
        if entry is None or reason is not None:
            new = layer.__class__.from_config(layer.get_config())
            kept.append((layer, new))
            if layer.weights and entry is None and isinstance(layer, _NORMALIZATION):
                normalization.append(type(layer).__name__)
            elif layer.weights:
                skipped.append(f"'{layer.name}' ({type(layer).__name__}{': ' + reason if reason else ''})")
            return new
        cls, args, _ = entry
        layer_seed = None if seed is None else seed + counter[0]
        counter[0] += 1
        new = cls(
            **args(layer),
            estimator=estimator,
            prior=priors_lib.CenteredNormal(prior_scale) if moped_delta is not None else prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=layer_seed,
            name=layer.name,
            dtype=layer.dtype_policy,
        )
        converted[id(new)] = (layer, new)
        return new

    result = keras.models.clone_model(model, clone_function=clone, recursive=True)

    for old, new in kept:
        if old.weights:
            new.set_weights(old.get_weights())
    for old, new in converted.values():
        if copy_weights:
            _copy_weights(old, new, moped_delta, min_scale)

    if skipped or normalization:
        message = _summary(len(converted), normalization, skipped)
        if strict and skipped:
            raise ValueError(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    if not converted:
        raise ValueError(f"to_bayesian: model '{model.name}' has no layer that can be made Bayesian.")
    return result


def _copy_weights(old, new, moped_delta, min_scale) -> None:
    _, _, targets = _CONVERSIONS[type(old)]
    for value, target in zip(old.get_weights(), targets):
        attr = getattr(new, target)
        if attr is None:
            continue
        if isinstance(attr, GaussianPosterior):
            attr.loc.assign(value)
            if moped_delta is not None:
                # scale = min_scale + softplus(rho) = max(δ|w|, min_scale + 1e-6)
                excess = np.maximum(moped_delta * np.abs(value.astype("float64")) - min_scale, 1e-6)
                rho = rnd.softplus_inverse(excess)
                attr.rho.assign(rho.astype("float32"))
                attr.prior.loc_variable.assign(value)
        else:
            attr.assign(value)


# Migration from tfp.layers (tf_keras) lives in its own module; exported here as bayesflip.convert.from_tfp.
from bayesflip.convert_tfp import from_tfp  # noqa: E402
