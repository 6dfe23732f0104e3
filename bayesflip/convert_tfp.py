"""Migration from ``tfp.layers``: a trained ``tf_keras`` + TFP model → the equivalent Keras 3 bayesflip model.

TFP's variational layers only run on ``tf_keras`` (Keras 2). :func:`from_tfp`
rebuilds such a model in Keras 3 with bayesflip layers and copies the trained
posterior:

==================================================  ==========================================
TFP (``tf_keras``)                                  bayesflip (Keras 3)
==================================================  ==========================================
``DenseFlipout``                                    ``DenseFlipout``
``DenseReparameterization``                         ``DenseReparameterization`` (``shared``)
``DenseLocalReparameterization``                    ``DenseLocalReparameterization`` (``local``)
``Convolution{1,2,3}DFlipout``                      ``Conv{1,2,3}DFlipout``
``Convolution{1,2,3}DReparameterization``           ``Conv{1,2,3}DFlipout(estimator="shared")``
``kernel_posterior_loc``                            ``kernel_posterior.loc``
``kernel_posterior_untransformed_scale``            ``kernel_posterior.rho`` (same softplus)
TFP's additive scale floor ``eps(float32)``         ``min_scale = eps(float32)``
``bias_posterior_loc`` (deterministic bias)         ``bias``
``kernel_prior_fn`` default / a ``tfd.Normal``      ``priors.Normal(loc, scale)``
``seed``                                            ``seed``
==================================================  ==========================================

So ``scale = eps + softplus(untransformed_scale)`` is reproduced exactly, and
posterior-mean predictions agree to float precision (tested). Ordinary
``tf_keras`` layers are rebuilt from their config in Keras 3 with their weights.
See ``docs/migrating_from_tfp.md`` for every TFP argument.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from bayesflip import layers as bl
from bayesflip import priors

__all__ = ["from_tfp"]

_FLOOR = float(np.finfo(np.float32).eps)  # TFP's default_loc_scale_fn: eps + softplus(untransformed_scale)

#: TFP class name -> (bayesflip class, estimator, rank or None for dense).
_MAP = {
    "DenseFlipout": (bl.DenseFlipout, "flipout", None),
    "DenseReparameterization": (bl.DenseFlipout, "shared", None),
    "DenseLocalReparameterization": (bl.DenseFlipout, "local", None),
    "Conv1DFlipout": (bl.Conv1DFlipout, "flipout", 1),
    "Conv2DFlipout": (bl.Conv2DFlipout, "flipout", 2),
    "Conv3DFlipout": (bl.Conv3DFlipout, "flipout", 3),
    "Conv1DReparameterization": (bl.Conv1DFlipout, "shared", 1),
    "Conv2DReparameterization": (bl.Conv2DFlipout, "shared", 2),
    "Conv3DReparameterization": (bl.Conv3DFlipout, "shared", 3),
}
_ALIASES = {
    f"Convolution{r}D{k}": f"Conv{r}D{k}" for r in (1, 2, 3) for k in ("Flipout", "Reparameterization")
}
_DENSE_CLASSES = {
    "flipout": bl.DenseFlipout,
    "shared": bl.DenseReparameterization,
    "local": bl.DenseLocalReparameterization,
}


def _is_tfp_layer(layer) -> bool:
    return type(layer).__module__.startswith("tensorflow_probability.python.layers")


def _tfp_kind(layer) -> str | None:
    name = type(layer).__name__
    name = _ALIASES.get(name, name)
    return name if name in _MAP else None


def _weight(layer, suffix):
    for w in layer.weights:
        if w.name.split(":")[0].endswith(suffix):
            return w.numpy()
    return None


def _is_default(fn, qualname_prefix: str) -> bool:
    return getattr(fn, "__qualname__", "").startswith(qualname_prefix) and getattr(
        fn, "__module__", ""
    ).startswith("tensorflow_probability")


def _normal_prior(owner: str, arg: str, dist) -> priors.Normal:
    """``priors.Normal`` equal to a built TFP prior, or a ValueError naming ``arg``."""
    import tensorflow as tf

    base = getattr(dist, "distribution", dist)  # tfd.Independent(tfd.Normal) or tfd.Normal
    if type(base).__name__ != "Normal":
        raise ValueError(
            f"from_tfp: {owner}: `{arg}` builds a {type(base).__name__} prior; only TFP's default N(0, 1) and "
            f"tfd.Normal priors map to bayesflip (priors.Normal). Convert with a supported prior, or rebuild "
            f"this layer with a bayesflip prior (bayesflip.priors) and copy the posterior yourself."
        )
    loc = np.asarray(tf.convert_to_tensor(base.loc))
    scale = np.asarray(tf.convert_to_tensor(base.scale))
    if loc.size == 0 or np.ptp(loc) != 0 or np.ptp(scale) != 0:
        raise ValueError(
            f"from_tfp: {owner}: `{arg}` is a tfd.Normal with per-weight parameters; bayesflip's "
            f"priors.Normal has one loc and scale for every weight."
        )
    return priors.Normal(float(loc.ravel()[0]), float(scale.ravel()[0]))


def _convert_layer(layer, kl_weight):
    kind = _tfp_kind(layer)
    owner = f"{type(layer).__name__} '{layer.name}'"
    if kind is None:
        raise ValueError(
            f"from_tfp: {owner} is a TFP layer without a bayesflip counterpart; supported: "
            f"{sorted(_MAP)} (and the Convolution*D aliases)."
        )
    if not layer.built:
        raise ValueError(f"from_tfp: {owner} is not built; call the tf_keras model on a batch first.")
    cls, estimator, rank = _MAP[kind]
    if not _is_default(layer.kernel_posterior_fn, "default_mean_field_normal_fn"):
        raise ValueError(
            f"from_tfp: {owner}: a custom `kernel_posterior_fn` ({getattr(layer.kernel_posterior_fn, '__qualname__', '?')}) "
            f"cannot be mapped; bayesflip posteriors are mean-field Normal with scale = min_scale + softplus(rho), "
            f"as TFP's default_mean_field_normal_fn()."
        )
    prior = _normal_prior(owner, "kernel_prior_fn", layer.kernel_prior)
    divergence = layer.kernel_divergence_fn
    default_divergence = "<lambda>" in getattr(divergence, "__qualname__", "") and getattr(
        divergence, "__module__", ""
    ).startswith("tensorflow_probability")
    if not default_divergence:
        if kl_weight is None:
            raise ValueError(
                f"from_tfp: {owner}: a custom `kernel_divergence_fn` cannot be read back (e.g. the idiom "
                f"`lambda q, p, _: kl(q, p) / N`); pass from_tfp(model, kl_weight=1 / N) "
                f"(bayesflip: bayesflip.set_kl_weight(model, num_examples=N))."
            )
    bias_scale = _weight(layer, "bias_posterior_untransformed_scale")
    bayesian_bias = bias_scale is not None
    use_bias = layer.bias_posterior_fn is not None
    if use_bias and not _is_default(layer.bias_posterior_fn, "default_mean_field_normal_fn"):
        raise ValueError(
            f"from_tfp: {owner}: a custom `bias_posterior_fn` cannot be mapped (expected TFP's "
            f"default_mean_field_normal_fn, singular or not)."
        )
    if bayesian_bias:
        if layer.bias_prior_fn is None:
            raise ValueError(
                f"from_tfp: {owner}: a Bayesian bias (`bias_posterior_fn` with a scale) without `bias_prior_fn` "
                f"has no bayesflip counterpart: bayesflip puts the layer's prior on the bias too."
            )
        bias_prior = _normal_prior(owner, "bias_prior_fn", layer.bias_prior)
        if bias_prior.get_config() != prior.get_config():
            raise ValueError(
                f"from_tfp: {owner}: `bias_prior_fn` differs from `kernel_prior_fn`; bayesflip has one prior per layer."
            )
    elif use_bias and layer.bias_prior_fn is not None:
        raise ValueError(
            f"from_tfp: {owner}: `bias_prior_fn` on a deterministic bias has no bayesflip counterpart."
        )
    seed = getattr(layer, "seed", None)  # only the flipout layers take a seed
    seed = seed if isinstance(seed, int) and seed >= 0 else None
    common = dict(
        activation=keras.activations.get(getattr(layer.activation, "__name__", None) or "linear"),
        prior=prior,
        min_scale=_FLOOR,
        init_scale=1e-2,
        kl_weight=kl_weight,
        seed=seed,
        bayesian_bias=bayesian_bias,
        use_bias=use_bias,
        name=layer.name,
    )
    if rank is None:
        new = _DENSE_CLASSES[estimator](layer.units, **common)
    else:
        new = cls(
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            data_format=layer.data_format,
            dilation_rate=layer.dilation_rate,
            estimator=estimator,
            **common,
        )

    def copy(new_layer):
        post = new_layer.kernel_posterior
        post.loc.assign(_weight(layer, "kernel_posterior_loc"))
        post.rho.assign(_weight(layer, "kernel_posterior_untransformed_scale"))
        if use_bias:
            loc = _weight(layer, "bias_posterior_loc")
            if bayesian_bias:
                new_layer.bias.loc.assign(loc)
                new_layer.bias.rho.assign(bias_scale)
            else:
                new_layer.bias.assign(loc)

    return new, copy


def _convert_plain(layer):
    config = layer.get_config()
    try:
        cls = getattr(keras.layers, type(layer).__name__, None)
        if cls is None:
            raise ValueError("Keras 3 has no layer class of that name")
        new = cls.from_config(config)
    except Exception as err:  # noqa: BLE001 - reported with the layer's name
        raise ValueError(
            f"from_tfp: cannot rebuild tf_keras layer {type(layer).__name__} '{layer.name}' in Keras 3 "
            f"from its config: {err}"
        ) from None
    weights = layer.get_weights()

    def copy(new_layer):
        if weights:
            new_layer.set_weights(weights)

    return new, copy


def from_tfp(model: Any, *, kl_weight: float | None = None) -> keras.Model:
    """Convert a ``tf_keras`` model with ``tfp.layers`` variational layers into a Keras 3 bayesflip model.

    Sequential and functional models are supported; TFP's variational layers
    become bayesflip layers (see the module table) with the trained posterior
    (loc, softplus-parameterised scale with TFP's ``eps`` floor, bias) and the
    prior copied; every other layer is rebuilt from its ``tf_keras`` config.

    Args:
        model: a built ``tf_keras.Model`` (``Sequential`` or functional).
        kl_weight: KL weight of the converted layers (usually ``1 / N``; see
            :func:`bayesflip.set_kl_weight`). Required when a layer has a custom
            ``kernel_divergence_fn`` (such as ``lambda q, p, _: kl(q, p) / N``),
            whose scaling cannot be read back; otherwise ``None`` (unset).

    Returns:
        A built Keras 3 model whose posterior-mean predictions equal the TFP
        model's with its posterior means substituted.

    Raises:
        TypeError: ``model`` is not a ``tf_keras`` model (e.g. a Keras 3 model).
        ValueError: no TFP variational layer, or a layer/argument that has no
            bayesflip counterpart (named in the message).

    Example:
    >>> import tf_keras, tensorflow_probability as tfp, numpy as np
    >>> tfp_model = tf_keras.Sequential([tf_keras.Input((4,)), tfp.layers.DenseFlipout(3, seed=1)])
    >>> model = from_tfp(tfp_model)
    >>> type(model.layers[0]).__name__, model.layers[0].min_scale == float(np.finfo("float32").eps)
    ('DenseFlipout', True)
    """
    fn = "from_tfp"
    try:
        import tf_keras
    except ImportError as err:  # pragma: no cover - tf-keras is a dependency
        raise ImportError(f"{fn} needs tf-keras (pip install tf-keras): {err}") from None
    if isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"{fn}: `model` is already a Keras 3 model ('{model.name}'); from_tfp converts tf_keras models "
            f"with tfp.layers. For a deterministic Keras 3 model use bayesflip.convert.to_bayesian."
        )
    if not isinstance(model, tf_keras.Model):
        raise TypeError(
            f"{fn}: `model` must be a tf_keras model with tfp.layers, got {type(model).__name__}."
        )
    tfp_layers = [layer for layer in model.layers if _is_tfp_layer(layer)]
    if not tfp_layers:
        raise ValueError(
            f"{fn}: tf_keras model '{model.name}' has no tfp.layers variational layer; use "
            f"bayesflip.convert.to_bayesian on a Keras 3 model instead."
        )

    def convert(layer):
        return _convert_layer(layer, kl_weight) if _is_tfp_layer(layer) else _convert_plain(layer)

    copies = []
    if isinstance(model, tf_keras.Sequential):
        shape = model.input_shape
        if isinstance(shape, list):
            raise ValueError(f"{fn}: Sequential model '{model.name}' has several inputs.")
        new_layers = []
        for layer in model.layers:
            new, copy = convert(layer)
            new_layers.append(new)
            copies.append((new, copy))
        out = keras.Sequential(
            [keras.Input(shape[1:], dtype=model.inputs[0].dtype.name), *new_layers], name=model.name
        )
    else:
        config = model.get_config()
        by_name = {layer.name: layer for layer in model.layers}
        tensors = {}
        for entry in config["layers"]:
            layer = by_name[entry["name"]]
            if type(layer).__name__ == "InputLayer":
                shape = layer.get_config()["batch_input_shape"]
                tensors[(layer.name, 0)] = [keras.Input(shape[1:], dtype=layer.dtype, name=layer.name)]
                continue
            new, copy = convert(layer)
            copies.append((new, copy))
            for node_index, node in enumerate(entry["inbound_nodes"]):
                args = node["args"] if isinstance(node, dict) else node
                refs = _node_refs(args)
                inputs = [tensors[(name, ni)][ti] for name, ni, ti in refs]
                result = new(inputs[0] if len(inputs) == 1 else inputs)
                tensors[(layer.name, node_index)] = (
                    list(result) if isinstance(result, (list, tuple)) else [result]
                )
        ins = [tensors[(n, ni)][ti] for n, ni, ti in config["input_layers"]]
        outs = [tensors[(n, ni)][ti] for n, ni, ti in config["output_layers"]]
        out = keras.Model(
            ins[0] if len(ins) == 1 else ins, outs[0] if len(outs) == 1 else outs, name=model.name
        )
    for new, copy in copies:
        copy(new)
    return out


def _node_refs(node) -> list[tuple[str, int, int]]:
    """``(layer_name, node_index, tensor_index)`` of a tf_keras inbound node in either config format."""
    refs = []
    for item in node:
        if isinstance(item, dict) and "config" in item:  # new format: {"class_name": "__keras_tensor__", ...}
            refs.append(tuple(item["config"]["keras_history"]))
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            refs.append((item[0], int(item[1]), int(item[2])))
        elif isinstance(item, (list, tuple)):
            refs.extend(_node_refs(item))
    return refs
