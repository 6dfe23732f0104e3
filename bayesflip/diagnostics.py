"""Gradient-variance diagnostic: the flipout paper's central experiment.

Wen et al. (2018, §4.1) compare gradient estimators by the variance of
the stochastic gradient across repeated mini-batches, averaged over the weights
of a layer. :func:`gradient_variance` estimates exactly that:

1. draw ``num_repeats`` mini-batches of ``batch_size`` examples (i.i.d. with
   replacement by default, the idealised large-data-set setting in which an
   estimator with independent per-example noise has variance ∝ 1/batch);
2. for each, run one forward pass (a fresh posterior sample, drawn by each
   layer's estimator) and take the gradient of the **data term** — the mean
   per-example loss over the mini-batch — with respect to the posterior means
   (``*_loc`` variables) of the variational layers;
3. per weight, take the unbiased sample variance over the repeats, then average
   over the weights of each layer (and over all of them).

Why the data term: with an analytic KL (the default ``Normal`` prior) the KL
term's gradient with respect to the posterior means is deterministic, so the
variance of the ELBO gradient with respect to them *is* the variance of the
data-term gradient; ``include_kl=True`` adds the layers' KL losses anyway (for
Monte Carlo KL priors, whose KL gradient is random).

The estimator is switched per call with ``estimator=`` (every variational layer's
``estimator`` attribute is set for the measurement and restored afterwards).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip import inference
from bayesflip._checks import check_int, check_positive_int
from bayesflip._typing import ArrayLike
from bayesflip.inference import variational_layers
from bayesflip.layers._variational import ESTIMATORS

__all__ = ["GradientVariance", "gradient_variance", "variance_vs_batch_size", "use_estimator", "loglog_slope"]


class GradientVariance(dict):
    """Result of :func:`gradient_variance` (a ``dict`` with attribute access).

    Keys: ``total`` (mean per-weight variance over all measured weights),
    ``per_layer`` (``{layer name: mean per-weight variance}``), ``num_weights``,
    ``batch_size``, ``num_repeats``, ``estimator``, ``mean_grad_sq`` (mean
    squared mean gradient over the weights, i.e. the signal for comparison).
    """

    __getattr__ = dict.__getitem__
    # the keys read as attributes (declared for the type checker)
    total: float
    per_layer: dict[str, float]


@contextlib.contextmanager
def use_estimator(model: keras.layers.Layer, estimator: str | None) -> Iterator[keras.layers.Layer]:
    """Temporarily set the ``estimator`` of every variational layer of ``model``.

    ``None`` leaves the layers as they are. Layers whose class does not support
    the estimator (e.g. ``"local"`` on a recurrent layer) raise a ValueError.
    Entering and leaving reset the compiled ``fit``/``evaluate``/``predict``
    functions and the cached :func:`~bayesflip.uncertainty.mc_predict` samplers
    (as :func:`bayesflip.posterior_mean` does), so the estimator takes effect in
    every entry point even after the model has run.

    Example:
    >>> import keras
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((3,)), DenseFlipout(2)])
    >>> with use_estimator(m, "shared"):
    ...     m.layers[0].estimator
    'shared'
    >>> m.layers[0].estimator
    'flipout'
    """
    layers = variational_layers(model)
    if not layers:
        raise ValueError(f"use_estimator: model '{model.name}' has no bayesflip variational layers.")
    if estimator is None:
        yield model
        return
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"use_estimator: unknown estimator {estimator!r}; expected one of {list(ESTIMATORS)}."
        )
    for layer in layers:
        if estimator not in layer.supported_estimators:
            raise ValueError(
                f"use_estimator: layer '{layer.name}' ({type(layer).__name__}) supports estimators "
                f"{list(layer.supported_estimators)}, got {estimator!r}."
            )
    with inference._mode(model, layers, "estimator", estimator):
        yield model


def _loc_variables(model) -> list[tuple[str, list]]:
    out = []
    for layer in variational_layers(model):
        if not layer.built:
            raise ValueError(
                f"gradient_variance: layer '{layer.name}' is not built; call the model once first."
            )
        out.append((layer.name, [p.loc for p in layer.posteriors]))
    return out


def gradient_variance(
    model: keras.Model,
    x: ArrayLike,
    y: ArrayLike,
    loss_fn: Callable,
    batch_size: int,
    num_repeats: int = 100,
    estimator: str | None = None,
    replace: bool = True,
    include_kl: bool = False,
    seed: int = 0,
) -> GradientVariance:
    """Variance of the stochastic gradient over repeated mini-batches.

    Formula: for weight ``j`` with gradients ``g_j^{(1..R)}`` over ``R =
    num_repeats`` independent mini-batches (each with its own posterior
    sample), ``v_j = Σ_r (g_j^{(r)} - ḡ_j)² / (R - 1)``; the result averages
    ``v_j`` over the posterior means of each variational layer and over all of
    them. The gradient is of ``mean_i loss_fn(y_i, model(x)_i)`` (plus the
    layers' KL losses when ``include_kl``) with respect to the ``*_loc``
    variables.

    Args:
        model: a built Keras model containing bayesflip variational layers.
        x: inputs, array of shape ``(n, ...)``.
        y: targets, array of shape ``(n, ...)``.
        loss_fn: ``loss_fn(y_true, y_pred)`` returning per-example losses
            (shape ``(batch,)``) or a scalar mean, e.g. a ``keras.losses.Loss``.
        batch_size: mini-batch size (positive int).
        num_repeats: number of independent mini-batches (>= 2).
        estimator: ``"flipout"``, ``"shared"``, ``"local"`` or ``None`` (the
            layers' own estimators).
        replace: sample each mini-batch's examples with replacement (i.i.d.,
            default) or without (within a batch; then ``batch_size <= n``).
        include_kl: add ``sum(model.losses)`` (the weighted KL terms).
        seed: seed of the mini-batch sampling (the weight noise comes from the
            layers' own random streams).

    Returns:
        A :class:`GradientVariance`.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((3,)), DenseFlipout(1, seed=0)])
    >>> x = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    >>> r = gradient_variance(m, x, x[:, :1], keras.losses.MeanSquaredError(reduction=None), 8, 20)
    >>> r.total > 0, r.num_weights
    (True, 3)
    """
    name = "gradient_variance"
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"{name}: `model` must be a Keras model or layer, got {type(model).__name__}.")
    batch_size = check_positive_int(name, "batch_size", batch_size)
    num_repeats = check_int(name, "num_repeats", num_repeats, minimum=2)
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"{name}: `x` and `y` must be arrays with the same number of examples, got shapes {x.shape} and {y.shape}."
        )
    n = len(x)
    if not replace and batch_size > n:
        raise ValueError(f"{name}: `batch_size`={batch_size} exceeds the {n} examples (replace=False).")
    if not callable(loss_fn):
        raise TypeError(f"{name}: `loss_fn` must be callable, got {type(loss_fn).__name__}.")

    with use_estimator(model, estimator):
        groups = _loc_variables(model)
        variables = [v for _, vs in groups for v in vs]

        @tf.function(reduce_retracing=True)
        def grads_of(xb, yb):
            with tf.GradientTape() as tape:
                pred = model(xb, training=True)
                loss = tf.reduce_mean(loss_fn(yb, pred))
                if include_kl and model.losses:
                    loss = loss + tf.add_n(model.losses)
            grads = tape.gradient(loss, variables)
            return [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, variables)
            ]

        rng = np.random.default_rng(seed)
        # Welford accumulation keeps memory O(num_weights).
        mean = [np.zeros(v.shape, np.float64) for v in variables]
        m2 = [np.zeros(v.shape, np.float64) for v in variables]
        for r in range(int(num_repeats)):
            idx = rng.choice(n, size=int(batch_size), replace=replace)
            grads = grads_of(tf.constant(x[idx]), tf.constant(y[idx]))
            for k, g in enumerate(grads):
                g = g.numpy().astype(np.float64)
                delta = g - mean[k]
                mean[k] += delta / (r + 1)
                m2[k] += delta * (g - mean[k])

        var = [m / (num_repeats - 1) for m in m2]
        per_layer, k, total_sum, total_n, sig = {}, 0, 0.0, 0, 0.0
        for layer_name, vs in groups:
            s = sum(float(var[k + i].sum()) for i in range(len(vs)))
            cnt = sum(int(var[k + i].size) for i in range(len(vs)))
            sig += sum(float(np.square(mean[k + i]).sum()) for i in range(len(vs)))
            per_layer[layer_name] = s / cnt
            total_sum += s
            total_n += cnt
            k += len(vs)
        return GradientVariance(
            total=total_sum / total_n,
            per_layer=per_layer,
            num_weights=total_n,
            batch_size=int(batch_size),
            num_repeats=int(num_repeats),
            estimator=estimator
            if estimator is not None
            else sorted({l.estimator for l in variational_layers(model)}),
            mean_grad_sq=sig / total_n,
        )


def loglog_slope(batch_sizes: ArrayLike, variances: ArrayLike) -> float:
    """Least-squares slope of ``log(variance)`` against ``log(batch_size)``.

    An estimator whose per-example noise is independent has slope ``-1``.

    Args:
        batch_sizes: positive numbers.
        variances: positive numbers, same length (>= 2).

    Returns:
        The fitted slope (float).

    Example:
    >>> round(loglog_slope([1, 10, 100], [3.0, 0.3, 0.03]), 6)
    -1.0
    """
    b = np.asarray(batch_sizes, np.float64)
    v = np.asarray(variances, np.float64)
    if b.shape != v.shape or b.ndim != 1 or len(b) < 2:
        raise ValueError(
            f"loglog_slope: expects two 1-D sequences of equal length >= 2, got shapes {b.shape} and {v.shape}."
        )
    if not (np.all(b > 0) and np.all(v > 0)):
        raise ValueError("loglog_slope: batch sizes and variances must be positive.")
    slope, _ = np.polyfit(np.log(b), np.log(v), 1)
    return float(slope) if math.isfinite(slope) else float("nan")


def variance_vs_batch_size(
    model: keras.Model,
    x: ArrayLike,
    y: ArrayLike,
    loss_fn: Callable,
    batch_sizes: Sequence[int],
    num_repeats: int = 100,
    estimator: str | None = None,
    small_batch_repeats: int = 16,
    seed: int = 0,
    **kwargs: Any,
) -> dict:
    """:func:`gradient_variance` over several batch sizes, with the log-log slope.

    Batches smaller than ``small_batch_repeats`` get ``num_repeats ·
    small_batch_repeats // batch`` repeats (their gradients are cheap but
    heavy-tailed); pass ``small_batch_repeats=1`` for a flat ``num_repeats``.

    Args:
        model, x, y, loss_fn, estimator: as in :func:`gradient_variance`.
        batch_sizes: increasing positive ints (>= 2 of them).
        num_repeats: mini-batches per batch size (>= 2).
        small_batch_repeats: see above (positive int).
        seed: base seed of the mini-batch sampling (``seed + batch``).
        **kwargs: passed on to :func:`gradient_variance` (``replace``, ``include_kl``).

    Returns:
        ``{"batch_sizes", "variance", "num_repeats", "slope", "per_layer"}``,
        ``per_layer`` mapping each layer name to its list of variances.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((3,)), DenseFlipout(1, init_scale=0.5, seed=0)])
    >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    >>> loss = keras.losses.MeanSquaredError(reduction=None)
    >>> r = variance_vs_batch_size(m, x, x[:, :1], loss, [1, 8, 64], 50)
    >>> -1.3 < r["slope"] < -0.7
    True
    """
    sizes = list(batch_sizes)
    if len(sizes) < 2 or sorted(set(sizes)) != sizes:
        raise ValueError(
            f"variance_vs_batch_size: `batch_sizes` must be >= 2 increasing ints, got {batch_sizes!r}."
        )
    small_batch_repeats = check_positive_int(
        "variance_vs_batch_size", "small_batch_repeats", small_batch_repeats
    )
    variances: list[float] = []
    repeats: list[int] = []
    per_layer: dict[str, list[float]] = {}
    for b in sizes:
        reps = max(int(num_repeats), int(num_repeats) * small_batch_repeats // int(b))
        r = gradient_variance(
            model, x, y, loss_fn, b, reps, estimator=estimator, seed=seed + int(b), **kwargs
        )
        variances.append(r.total)
        repeats.append(reps)
        for name, v in r.per_layer.items():
            per_layer.setdefault(name, []).append(v)
    return {
        "batch_sizes": sizes,
        "variance": variances,
        "num_repeats": repeats,
        "slope": loglog_slope(sizes, variances),
        "per_layer": per_layer,
    }
