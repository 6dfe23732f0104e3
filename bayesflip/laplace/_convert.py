"""A fitted Laplace posterior as bayesflip layers: a copy of the model whose covered layers sample it.

- diagonal: :class:`~bayesflip.posteriors.MeanFieldGaussian` with ``loc`` the
  trained weights and ``scale = softplus(rho)`` the posterior standard deviation
  (``min_scale = 0``, so the scale is exact up to float32 rounding), estimator
  ``flipout``;
- Kronecker-factored: :class:`~bayesflip.posteriors.MatrixNormal` with the
  eigenbasis factors (``L_A = Q_A``, ``L_B = Q_B``, ``S = (c a_i b_j + δ)^(-1/2)``;
  the bias its own ``1 × K`` block), estimator ``shared``.

Every converted layer has a Bayesian bias, the prior ``Normal(0, δ^(-1/2))`` of
its prior precision and ``kl_weight = 1/N`` (the per-example ELBO, should the
model be trained further).
"""

from __future__ import annotations

import keras
import numpy as np

from bayesflip import layers as bl
from bayesflip import posteriors as posteriors_lib
from bayesflip import priors as priors_lib
from bayesflip.convert import _CONVERSIONS
from bayesflip.random import softplus_inverse


def _layer_args(layer) -> tuple[type, dict]:
    config = layer.get_config()
    if isinstance(layer, bl.DenseFlipout):
        return bl.DenseFlipout, {k: config[k] for k in ("units", "activation", "use_bias")}
    for keras_cls, (cls, args, _) in _CONVERSIONS.items():
        if type(layer) is keras_cls:
            return cls, args(layer)
    raise ValueError(f"to_bayesian_model: no bayesflip layer for {type(layer).__name__} '{layer.name}'.")


def to_bayesian_model(la, seed: int | None = 0) -> keras.Model:
    """Build the converted copy of ``la.model`` (see :meth:`LaplaceApproximation.to_bayesian_model`)."""
    from bayesflip.inference import variational_layers

    structure = la.structure
    if structure == "full":
        raise ValueError(
            "LaplaceApproximation.to_bayesian_model: structure='full' has no layer posterior family "
            "(its covariance couples every weight of the layer); fit with structure='kron' or 'diag'."
        )
    parts = la.parts
    covered = {id(layer): i for i, layer in enumerate(parts.covered)}
    delta = la.prior_precision_per_group
    kl_weight = 1.0 / la.num_examples
    originals: dict[int, tuple] = {}
    kept: list[tuple] = []

    def clone(layer):
        if not isinstance(layer, keras.layers.Layer):
            return layer
        if id(layer) not in covered:
            new = layer.__class__.from_config(layer.get_config())
            kept.append((layer, new))
            return new
        group = covered[id(layer)]
        cls, args = _layer_args(layer)
        args["use_bias"] = True
        new = cls(
            **args,
            bayesian_bias=True,
            estimator="flipout" if structure == "diag" else "shared",
            posterior=posteriors_lib.MeanFieldGaussian()
            if structure == "diag"
            else posteriors_lib.MatrixNormal(),
            prior=priors_lib.Normal(0.0, float(delta[group]) ** -0.5),
            init_scale=1e-2,
            min_scale=0.0,
            kl_weight=kl_weight,
            seed=None if seed is None else seed + group,
            name=layer.name,
            dtype=layer.dtype_policy,
        )
        originals[id(new)] = (layer, new, group)
        return new

    result = keras.models.clone_model(parts.model, clone_function=clone, recursive=True)
    for old, new in kept:
        if old.weights:
            new.set_weights(old.get_weights())
    mean_mode = {id(layer) for layer in variational_layers(parts.model)}
    for old, new in kept:
        if id(old) in mean_mode:  # a bayesflip layer the approximation was fitted in posterior-mean mode
            new.use_posterior_mean = True
    for old, new, group in originals.values():
        _assign(la, old, new, group)
    if la.likelihood == "regression" and parts.head is not None:
        head = [new for old, new in kept if old is parts.head][0]
        raw = softplus_inverse(np.maximum(float(la.sigma_noise) - head.min_scale, 1e-6))
        head.raw_scale.assign(np.full(head.raw_scale.shape, raw, np.float32))
    return result


def _assign(la, old, new, group: int) -> None:
    from bayesflip.laplace._model import _weights_of

    if old is la.parts.last:
        kernel, bias = la.parts.kernel, la.parts.bias
    elif isinstance(old, bl.DenseFlipout):
        kernel, bias = _weights_of(old)
    else:
        kernel = np.asarray(old.kernel.numpy(), np.float64)
        bias = None if old.bias is None else np.asarray(old.bias.numpy(), np.float64)
    if bias is None:
        bias = np.zeros(kernel.shape[-1])
    k_post, b_post = new.kernel_posterior, new.bias
    k_post.loc.assign(kernel.astype("float32"))
    b_post.loc.assign(bias.astype("float32"))
    curv = la.curvature
    c = la.curvature_scale
    delta = la.prior_precision_per_group
    if la.structure == "diag":
        if la.subset == "last_layer":
            var_k, var_b = curv.variances(delta, c)
        else:
            variances = [v for (i, _), v in zip(curv.variables, curv.variances(delta, c)) if i == group]
            var_k = variances[0]
            var_b = variances[1] if len(variances) > 1 else np.full(kernel.shape[-1], 1.0 / delta[group])
        k_post.rho.assign(softplus_inverse(np.sqrt(var_k)).astype("float32"))
        b_post.rho.assign(softplus_inverse(np.sqrt(var_b)).astype("float32"))
        return
    if la.subset == "all":
        curv, delta = curv.per_layer[group], delta[group : group + 1]
    k_post.assign_factors(curv.q_a, curv.q_b, curv.kernel_scale(delta, c))
    b_post.assign_factors(np.ones((1, 1)), curv.q_b, curv.bias_scale(delta, c)[None])
