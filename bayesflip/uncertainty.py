"""Predictive uncertainty: Monte Carlo predictive samples and their summaries.

- :func:`mc_predict` draws ``num_samples`` **independent** posterior samples of a
  model's output for every input. Each sample is its own forward pass (so each
  has its own weight perturbation ``ΔW``); the passes run inside one compiled
  ``tf.while_loop`` per input batch instead of a Python loop of ``predict``
  calls. (Tiling an input ``T`` times inside one flipout batch would *not* do:
  the copies share ``ΔW`` and differ only by random signs.)
- Classification: :func:`predictive_entropy` (total), :func:`expected_entropy`
  (aleatoric) and :func:`mutual_information` (epistemic) with
  ``H[E_s p_s] = E_s H[p_s] + I``.
- Regression with mean and scale heads: :func:`regression_uncertainty`
  (total = aleatoric + epistemic variance), :func:`predictive_cdf` and
  :func:`prediction_interval` of the equal-weight Gaussian mixture.
- Out-of-distribution detection with any score: :func:`ood_auroc`,
  :func:`ood_aupr`.

Entropies are in nats. Functions given a ``tf.Tensor`` return a ``tf.Tensor``
(usable inside ``tf.function``); given array-likes they return NumPy arrays.
"""

from __future__ import annotations

import warnings
import weakref
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from scipy import special

from bayesflip._checks import (
    PROBS_ATOL,
    check_on_simplex,
    check_positive_int,
    check_real,
    warn_probabilities_as_logits,
)
from bayesflip._keras_compat import clear_losses, flatten_layers

__all__ = [
    "mc_predict",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "RegressionUncertainty",
    "regression_uncertainty",
    "predictive_cdf",
    "prediction_interval",
    "ood_auroc",
    "ood_aupr",
]


# --------------------------------------------------------------------------- helpers
def _as_float_tensor(fn: str, arg: str, value, min_rank: int) -> tuple[tf.Tensor, bool]:
    """Convert to a float tensor; check rank, emptiness and finiteness (eagerly)."""
    is_tensor = tf.is_tensor(value)
    if not is_tensor:
        arr = np.asarray(value)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{fn}: `{arg}` must be numeric, got dtype {arr.dtype}.")
        value = tf.convert_to_tensor(arr.astype(np.float64) if arr.dtype != np.float32 else arr)
    t = value if value.dtype.is_floating else tf.cast(value, tf.float32)
    rank = t.shape.rank
    if rank is not None and rank < min_rank:
        raise ValueError(f"{fn}: `{arg}` must have rank >= {min_rank}, got shape {tuple(t.shape)}.")
    if rank is not None and any(d == 0 for d in t.shape):
        raise ValueError(f"{fn}: got an empty input (`{arg}` has shape {tuple(t.shape)}).")
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(t))):
        raise ValueError(f"{fn}: `{arg}` contains NaN or infinite values.")
    return t, is_tensor


def _probs_and_logp(fn: str, arg: str, value, from_logits: bool, min_rank: int):
    t, is_tensor = _as_float_tensor(fn, arg + (" (logits)" if from_logits else ""), value, min_rank)
    if from_logits:
        if tf.executing_eagerly() and bool(_on_simplex(t)):
            warn_probabilities_as_logits(fn, f"the `{arg}` passed as logits", stacklevel=4)
        logp = tf.nn.log_softmax(t, axis=-1)
        return tf.exp(logp), logp, is_tensor
    if tf.executing_eagerly():
        check_on_simplex(fn, arg, t)
    p = tf.clip_by_value(t, 0.0, 1.0)
    return p, None, is_tensor


def _entropy(p: tf.Tensor, logp: tf.Tensor | None) -> tf.Tensor:
    if logp is None:
        h = -tf.reduce_sum(tf.math.xlogy(p, p), axis=-1)
    else:
        h = -tf.reduce_sum(p * logp, axis=-1)
    return tf.maximum(h, 0.0) + 0.0  # entropy >= 0; "+ 0.0" turns -0.0 into 0.0


def _out(t: tf.Tensor, is_tensor: bool):
    return t if is_tensor else t.numpy()


# --------------------------------------------------------------------------- entropies
def predictive_entropy(probs, from_logits: bool = False):
    """Entropy ``H[p] = −Σ_k p_k log p_k`` over the last axis (total uncertainty of a predictive).

    Args:
        probs: probabilities ``(..., K)`` (e.g. the MC-averaged predictive of
            :func:`mc_predict`), or logits with ``from_logits=True``.
        from_logits: whether ``probs`` holds logits.

    Returns:
        Entropies in nats, shape ``probs.shape[:-1]``.

    Example:
    >>> predictive_entropy([[0.5, 0.5], [1.0, 0.0]]).round(4).tolist()
    [0.6931, 0.0]
    """
    p, logp, is_tensor = _probs_and_logp("predictive_entropy", "probs", probs, from_logits, 1)
    return _out(_entropy(p, logp), is_tensor)


def expected_entropy(sample_probs, from_logits: bool = False):
    """Expected entropy ``E_s H[p_s]`` over posterior samples (aleatoric uncertainty).

    Args:
        sample_probs: per-sample probabilities ``(S, N, K)`` (sample axis first,
            as returned by ``mc_predict(..., return_samples=True)``), or logits
            with ``from_logits=True``.
        from_logits: whether ``sample_probs`` holds logits.

    Returns:
        Shape ``(N,)`` (generally ``sample_probs.shape[1:-1]``), in nats.

    Example:
    >>> expected_entropy([[[0.5, 0.5]], [[1.0, 0.0]]]).round(4).tolist()
    [0.3466]
    """
    p, logp, is_tensor = _probs_and_logp("expected_entropy", "sample_probs", sample_probs, from_logits, 2)
    return _out(tf.reduce_mean(_entropy(p, logp), axis=0), is_tensor)


def mutual_information(sample_probs, from_logits: bool = False):
    """Mutual information ``I = H[E_s p_s] − E_s H[p_s]`` (epistemic uncertainty, BALD).

    The decomposition ``predictive_entropy(mean) = expected_entropy + mutual_information``
    holds exactly; tiny negative round-off is clipped to 0.

    Args:
        sample_probs: per-sample probabilities ``(S, N, K)``, or logits with
            ``from_logits=True``.
        from_logits: whether ``sample_probs`` holds logits.

    Returns:
        Shape ``(N,)``, in nats, ``>= 0``.

    Example:
    >>> mutual_information([[[1.0, 0.0]], [[0.0, 1.0]]]).round(4).tolist()
    [0.6931]
    """
    p, logp, is_tensor = _probs_and_logp("mutual_information", "sample_probs", sample_probs, from_logits, 2)
    mean = tf.reduce_mean(p, axis=0)
    mi = _entropy(mean, None) - tf.reduce_mean(_entropy(p, logp), axis=0)
    return _out(tf.maximum(mi, 0.0), is_tensor)


# --------------------------------------------------------------------------- MC predictive
_SAMPLERS: "weakref.WeakKeyDictionary[keras.layers.Layer, dict]" = weakref.WeakKeyDictionary()
#: Inverse links applied to each draw (``from_logits``, and the heads of :mod:`bayesflip.heads`).
_LINKS = {"softmax": lambda t: tf.nn.softmax(t, axis=-1), "sigmoid": tf.sigmoid}


def _mode_key(model) -> tuple:
    from bayesflip.inference import variational_layers

    layers = variational_layers(model)
    modes = tuple(bool(layer.use_posterior_mean) for layer in layers)
    return modes


def _graph_key(model) -> tuple:
    """Everything a trace reads as a Python value and bakes into the compiled sampler.

    Per variational layer its ``estimator`` (switched by
    :func:`bayesflip.diagnostics.use_estimator`) and posterior-mean mode, and for
    every layer its dtype policy (the casts). A change in any of them must select
    (or build) another compiled sampler, never reuse a stale one.
    """
    from bayesflip.inference import variational_layers

    variational = tuple(
        (layer.name, getattr(layer, "estimator", None), bool(layer.use_posterior_mean))
        for layer in variational_layers(model)
    )
    layers = flatten_layers(model, include_self=True)
    policies = tuple(getattr(getattr(layer, "dtype_policy", None), "name", None) for layer in layers)
    return variational, policies


def _on_simplex(t: tf.Tensor) -> tf.Tensor:
    """Scalar bool: every row of ``t`` (last axis, >= 2 entries) lies on the probability simplex."""
    if t.shape.rank is None or t.shape.rank < 1 or t.shape[-1] is None or t.shape[-1] < 2:
        return tf.constant(False)
    inside = tf.logical_and(tf.reduce_all(t >= -PROBS_ATOL), tf.reduce_all(t <= 1.0 + PROBS_ATOL))
    sums = tf.reduce_all(tf.abs(tf.reduce_sum(t, axis=-1) - 1.0) <= PROBS_ATOL)
    return tf.logical_and(inside, sums)


def _build_sampler(model, num_samples, return_samples, link, training, jit_compile, signature):
    # A weak reference: the cache is keyed weakly by the model, so its values must not keep it alive.
    model_ref = weakref.ref(model)

    def forward(x):
        y = model_ref()(x, training=training)
        return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), y)

    def apply_link(y):
        return y if link is None else tf.nest.map_structure(_LINKS[link], y)

    def one_pass(x):
        return apply_link(forward(x))

    def run(x):
        # Each iteration is one full forward pass: every variational layer reads
        # and advances its RNG state, i.e. draws a fresh ΔW. parallel_iterations=1
        # keeps the state reads/updates of successive passes ordered.
        raw = forward(x)
        # from_logits=True on outputs that are already probabilities: checked on the first draw.
        probs_as_logits = _on_simplex(raw) if link == "softmax" and tf.is_tensor(raw) else tf.constant(False)
        first = apply_link(raw)
        if return_samples:
            acc = tf.nest.map_structure(
                lambda t: tf.TensorArray(tf.float32, size=num_samples, element_shape=t.shape).write(0, t),
                first,
            )

            def body(i, acc):
                y = one_pass(x)
                return i + 1, tf.nest.map_structure(lambda ta, t: ta.write(i, t), acc, y)

        else:
            acc = first

            def body(i, acc):
                y = one_pass(x)
                return i + 1, tf.nest.map_structure(tf.add, acc, y)

        _, acc = tf.while_loop(
            lambda i, _: i < num_samples, body, (tf.constant(1), acc), parallel_iterations=1
        )
        if return_samples:
            return tf.nest.map_structure(lambda ta: ta.stack(), acc), probs_as_logits
        return tf.nest.map_structure(lambda t: t / num_samples, acc), probs_as_logits

    kwargs = {"jit_compile": jit_compile}
    if signature is not None:
        kwargs["input_signature"] = [signature]
    else:
        kwargs["reduce_retracing"] = True
    return tf.function(run, **kwargs)


def mc_predict(
    model: keras.layers.Layer,
    x,
    num_samples: int = 32,
    batch_size: int | None = None,
    return_samples: bool = False,
    *,
    from_logits: bool = False,
    training: bool = False,
    jit_compile: bool = False,
):
    """Monte Carlo predictive: ``num_samples`` independent posterior draws per input.

    Every draw is a separate forward pass of ``model`` in which each variational
    layer draws its own weight perturbation ``ΔW`` (advancing its saved RNG
    state), so the ``num_samples`` outputs of one input are independent samples
    of the posterior predictive. The passes run in one compiled
    ``tf.while_loop`` per batch of inputs (traced once per model and settings).
    Layers in posterior-mean mode (:func:`bayesflip.posterior_mean`) do not
    sample. The compiled function is keyed on what its trace bakes in (each
    layer's estimator and posterior-mean mode, the dtype policies): switching
    any of them selects or builds another one.

    Args:
        model: a Keras model or layer (built, or buildable by calling it on ``x``).
        x: inputs, an array/tensor ``(N, ...)`` or a nested structure of them
            with the same first dimension.
        num_samples: number of posterior draws ``T`` (positive int).
        batch_size: inputs per compiled call; default ``min(N, 1024)``. Memory of
            one call is about ``T × batch_size × outputs`` floats with
            ``return_samples``.
        return_samples: return all draws (sample axis first) instead of their mean.
        from_logits: apply a softmax to each draw (for models that output
            logits), so the mean is the MC-averaged predictive probability.
            Warns, like Keras' losses, when the first draw's outputs already
            lie on the probability simplex (a model ending in a softmax): a
            second softmax would silently flatten them.
        training: the ``training`` flag passed to the model (``True`` for
            MC-dropout models).
        jit_compile: compile the sampling loop with XLA.

    Returns:
        NumPy ``float32`` array ``(N, ...)`` with the mean over draws, or
        ``(T, N, ...)`` with ``return_samples=True`` (nested like the model's
        outputs for multi-output models). When the model's single output layer
        is a likelihood head (:mod:`bayesflip.heads`), the head's predictive
        instead: a :class:`bayesflip.heads.RegressionPredictive` for Gaussian and
        Student-t heads (draws in its ``samples``; ``return_samples`` is then
        ignored), the MC-averaged softmax/sigmoid probabilities (per-draw with
        ``return_samples=True``) for categorical/Bernoulli heads.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, activation="softmax", seed=0)])
    >>> x = np.ones((5, 4), "float32")
    >>> mc_predict(model, x, num_samples=8, return_samples=True).shape
    (8, 5, 3)
    >>> np.allclose(mc_predict(model, x, num_samples=8).sum(axis=-1), 1.0, atol=1e-5)
    True
    """
    fn = "mc_predict"
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"{fn}: `model` must be a Keras model or layer, got {type(model).__name__}.")
    num_samples = check_positive_int(fn, "num_samples", num_samples)
    batch_size = check_positive_int(fn, "batch_size", batch_size, allow_none=True)
    leaves = tf.nest.flatten(x)
    if not leaves:
        raise ValueError(f"{fn}: `x` is empty.")
    leaves = [t if tf.is_tensor(t) else np.asarray(t) for t in leaves]
    for leaf in leaves:
        if len(leaf.shape) == 0:
            raise ValueError(f"{fn}: inputs need a leading batch dimension, got a scalar.")
    n = int(leaves[0].shape[0])
    if any(int(leaf.shape[0]) != n for leaf in leaves):
        raise ValueError(
            f"{fn}: all inputs must share the first (batch) dimension, got {[l.shape for l in leaves]}."
        )
    if n == 0:
        raise ValueError(f"{fn}: got an empty input (batch dimension 0).")
    x = tf.nest.pack_sequence_as(x, leaves)
    batch_size = batch_size or min(n, 1024)

    if not model.built:
        model(tf.nest.map_structure(lambda t: t[:1], x))
    # A likelihood head as the output layer decides the per-draw link and the reduction.
    from bayesflip.heads import output_head

    head = output_head(model)
    link, finish = ("softmax" if from_logits else None), None
    if head is not None:
        link, return_samples, finish = head._mc_plan(bool(return_samples), bool(from_logits))
    modes = _mode_key(model)
    if modes and all(modes) and not training:
        warnings.warn(
            f"{fn}: every variational layer of '{model.name}' is in posterior-mean mode, "
            f"so all {num_samples} draws are identical.",
            stacklevel=2,
        )
    signature = None
    if len(leaves) == 1 and not isinstance(x, (list, tuple, dict)):
        signature = tf.TensorSpec([None, *leaves[0].shape[1:]], tf.as_dtype(leaves[0].dtype))
    key = (
        num_samples,
        bool(return_samples),
        link,
        bool(training),
        bool(jit_compile),
        _graph_key(model),
        signature,
    )
    cache = _SAMPLERS.setdefault(model, {})
    if key not in cache:
        cache[key] = _build_sampler(
            model, num_samples, bool(return_samples), link, training, jit_compile, signature
        )
    sampler = cache[key]

    outputs, probs_as_logits = [], False
    for start in range(0, n, batch_size):
        chunk = tf.nest.map_structure(lambda t: t[start : start + batch_size], x)
        draws, flag = sampler(chunk)
        probs_as_logits = probs_as_logits or bool(flag)
        outputs.append(tf.nest.map_structure(lambda t: t.numpy(), draws))
    if probs_as_logits:
        warn_probabilities_as_logits(fn, f"the outputs of '{model.name}'")
    # The compiled passes append their (graph) KL tensors to ``model.losses``.
    clear_losses(model)
    axis = 1 if return_samples else 0
    if len(outputs) == 1:
        result = outputs[0]
    else:
        result = tf.nest.map_structure(lambda *parts: np.concatenate(parts, axis=axis), *outputs)
    return result if finish is None else finish(result)


# --------------------------------------------------------------------------- regression
class RegressionUncertainty(NamedTuple):
    """Mean and variance decomposition of a Gaussian-mixture predictive."""

    mean: np.ndarray  #: predictive mean ``E_s μ_s``
    total_variance: np.ndarray  #: ``aleatoric + epistemic``
    aleatoric_variance: np.ndarray  #: ``E_s σ_s²``
    epistemic_variance: np.ndarray  #: ``Var_s μ_s`` (population variance over samples)


def _regression_inputs(fn, sample_means, sample_scales):
    mu = np.asarray(sample_means.numpy() if tf.is_tensor(sample_means) else sample_means, dtype=np.float64)
    sd = np.asarray(sample_scales.numpy() if tf.is_tensor(sample_scales) else sample_scales, dtype=np.float64)
    if mu.shape != sd.shape:
        raise ValueError(
            f"{fn}: `sample_means` and `sample_scales` must have the same shape, got {mu.shape} and {sd.shape}."
        )
    if mu.ndim < 2:
        raise ValueError(
            f"{fn}: expected a leading sample axis, shape (num_samples, N, ...), got shape {mu.shape}."
        )
    if mu.size == 0:
        raise ValueError(f"{fn}: got an empty input (shape {mu.shape}).")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sd))):
        raise ValueError(f"{fn}: inputs contain NaN or infinite values.")
    if np.any(sd < 0):
        raise ValueError(
            f"{fn}: `sample_scales` must be >= 0 (standard deviations), got a minimum of {sd.min():.4g}."
        )
    return mu, sd


def regression_uncertainty(sample_means, sample_scales) -> RegressionUncertainty:
    """Total, aleatoric and epistemic variance from per-sample mean and scale heads.

    With ``S`` posterior draws of a heteroscedastic Gaussian head ``N(μ_s, σ_s²)``
    the predictive is the mixture ``(1/S) Σ_s N(μ_s, σ_s²)``, whose variance is
    ``E_s σ_s² + Var_s μ_s`` (law of total variance).

    Args:
        sample_means: ``(S, N, ...)`` per-draw predicted means.
        sample_scales: ``(S, N, ...)`` per-draw predicted standard deviations (>= 0).

    Returns:
        :class:`RegressionUncertainty` of arrays with shape ``(N, ...)``.

    Example:
    >>> u = regression_uncertainty([[0.0], [2.0]], [[1.0], [1.0]])
    >>> u.mean.tolist(), u.aleatoric_variance.tolist(), u.epistemic_variance.tolist(), u.total_variance.tolist()
    ([1.0], [1.0], [1.0], [2.0])
    """
    mu, sd = _regression_inputs("regression_uncertainty", sample_means, sample_scales)
    aleatoric = np.mean(sd**2, axis=0)
    epistemic = np.var(mu, axis=0)
    return RegressionUncertainty(mu.mean(axis=0), aleatoric + epistemic, aleatoric, epistemic)


def predictive_cdf(y, mean, scale) -> np.ndarray:
    """CDF of the Gaussian (mixture) predictive at ``y`` (the probability integral transform).

    Args:
        y: targets ``(N, ...)``.
        mean, scale: Gaussian parameters of the shape of ``y``, or with a leading
            sample axis ``(S, *y.shape)`` for the equal-weight mixture of ``S``
            posterior draws.

    Returns:
        ``F(y)`` in ``[0, 1]``, shape of ``y``.

    Example:
    >>> predictive_cdf([0.0, 1.0], [0.0, 0.0], [1.0, 1.0]).round(4).tolist()
    [0.5, 0.8413]
    """
    fn = "predictive_cdf"
    yv = np.asarray(y.numpy() if tf.is_tensor(y) else y, dtype=np.float64)
    mu = np.asarray(mean.numpy() if tf.is_tensor(mean) else mean, dtype=np.float64)
    sd = np.asarray(scale.numpy() if tf.is_tensor(scale) else scale, dtype=np.float64)
    if yv.size == 0:
        raise ValueError(f"{fn}: got an empty input (`y` has shape {yv.shape}).")
    if mu.shape != sd.shape:
        raise ValueError(f"{fn}: `mean` and `scale` must have the same shape, got {mu.shape} and {sd.shape}.")
    if mu.shape == yv.shape:
        mu, sd = mu[None], sd[None]
    elif mu.shape[1:] != yv.shape:
        raise ValueError(
            f"{fn}: `mean`/`scale` must have the shape of `y` {yv.shape} or (num_samples, *{yv.shape}), "
            f"got {mu.shape}."
        )
    if np.any(sd <= 0):
        raise ValueError(f"{fn}: `scale` must be > 0, got a minimum of {sd.min():.4g}.")
    return np.mean(special.ndtr((yv[None] - mu) / sd), axis=0)


def prediction_interval(sample_means, sample_scales, level: float = 0.95, method: str = "mixture"):
    """Central prediction interval of the Gaussian-mixture predictive.

    Args:
        sample_means: ``(S, N, ...)`` per-draw means (``S = 1`` for one Gaussian).
        sample_scales: ``(S, N, ...)`` per-draw standard deviations (> 0).
        level: coverage probability in ``(0, 1)``.
        method: ``"mixture"`` (exact quantiles of the mixture, by bisection to
            1e-10 relative width) or ``"gaussian"`` (a Gaussian with the
            mixture's mean and total variance).

    Returns:
        ``(lower, upper)`` arrays of shape ``(N, ...)``: the ``(1 − level)/2``
        and ``(1 + level)/2`` quantiles.

    Example:
    >>> lo, hi = prediction_interval([[0.0]], [[1.0]], level=0.95)
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (-1.96, 1.96)
    """
    fn = "prediction_interval"
    level = check_real(fn, "level", level, low=0, high=1)
    if method not in ("mixture", "gaussian"):
        raise ValueError(f"{fn}: `method` must be 'mixture' or 'gaussian', got {method!r}.")
    mu, sd = _regression_inputs(fn, sample_means, sample_scales)
    if np.any(sd <= 0):
        raise ValueError(f"{fn}: `sample_scales` must be > 0, got a minimum of {sd.min():.4g}.")
    qs = ((1 - level) / 2, (1 + level) / 2)
    if method == "gaussian":
        u = regression_uncertainty(mu, sd)
        z = special.ndtri(qs[1])
        half = z * np.sqrt(u.total_variance)
        return u.mean - half, u.mean + half
    return tuple(_mixture_quantile(mu, sd, q) for q in qs)


def _mixture_quantile(mu: np.ndarray, sd: np.ndarray, q: float, df: np.ndarray | None = None) -> np.ndarray:
    """``q``-quantile of the equal-weight mixture (over axis 0) of Gaussian or Student-t (``df``) components."""
    if df is None:
        z, cdf = special.ndtri(q), special.ndtr
    else:
        z, cdf = special.stdtrit(df, q), lambda t: special.stdtr(df, t)
    lo = np.min(mu + z * sd, axis=0)  # each component's quantile brackets the mixture's
    hi = np.max(mu + z * sd, axis=0)
    lo = lo - 1e-12 * (1 + np.abs(lo))
    hi = hi + 1e-12 * (1 + np.abs(hi))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = np.mean(cdf((mid[None] - mu) / sd), axis=0) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(hi - lo <= 1e-10 * (1 + np.abs(mid))):
            break
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------- OOD
def _ood_scores(fn, scores_in, scores_out):
    a = np.asarray(scores_in.numpy() if tf.is_tensor(scores_in) else scores_in, dtype=np.float64).reshape(-1)
    b = np.asarray(scores_out.numpy() if tf.is_tensor(scores_out) else scores_out, dtype=np.float64).reshape(
        -1
    )
    if a.size == 0 or b.size == 0:
        raise ValueError(
            f"{fn}: needs at least one in- and one out-of-distribution score, got {a.size} and {b.size}."
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"{fn}: scores contain NaN or infinite values.")
    return a, b


def ood_auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve for telling out- from in-distribution inputs by a score.

    Higher scores must mean "more likely out of distribution" (entropy, mutual
    information, variance …; negate a confidence). Equals the probability that a
    random OOD input scores higher than a random in-distribution one, ties
    counting one half (Mann–Whitney U with mid-ranks).

    Args:
        scores_in: scores of in-distribution inputs (any shape, flattened).
        scores_out: scores of out-of-distribution inputs.

    Returns:
        AUROC in ``[0, 1]`` (0.5 = no separation).

    Example:
    >>> ood_auroc([0.1, 0.2, 0.3], [0.25, 0.9])
    0.8333333333333334
    """
    a, b = _ood_scores("ood_auroc", scores_in, scores_out)
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a, b]))  # mid-ranks for ties
    u = ranks[a.size :].sum() - b.size * (b.size + 1) / 2
    return float(u / (a.size * b.size))


def ood_aupr(scores_in, scores_out, positive: str = "out") -> float:
    """Area under the precision–recall curve (average precision) of OOD detection by a score.

    ``AP = Σ_n (R_n − R_{n−1}) P_n`` over the distinct score thresholds in
    decreasing order (no interpolation; the same definition as scikit-learn's
    ``average_precision_score``).

    Args:
        scores_in: scores of in-distribution inputs (higher = more likely OOD).
        scores_out: scores of out-of-distribution inputs.
        positive: ``"out"`` (AUPR-Out: OOD inputs are the positives) or ``"in"``
            (AUPR-In: in-distribution inputs are the positives, scores negated).

    Returns:
        Average precision in ``[0, 1]``.

    Example:
    >>> ood_aupr([0.1, 0.2, 0.3], [0.25, 0.9])
    0.8333333333333333
    """
    fn = "ood_aupr"
    if positive not in ("out", "in"):
        raise ValueError(f"{fn}: `positive` must be 'out' or 'in', got {positive!r}.")
    a, b = _ood_scores(fn, scores_in, scores_out)
    if positive == "in":
        a, b = -b, -a
    scores = np.concatenate([a, b])
    truth = np.concatenate([np.zeros(a.size), np.ones(b.size)])
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order]
    last_of_threshold = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tp = np.cumsum(truth)[last_of_threshold]
    predicted = last_of_threshold + 1
    precision = tp / predicted
    recall = tp / b.size
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
