"""Evolution strategies with flipout perturbations (Wen et al. 2018, §4.2).

Plain ES (Salimans et al. 2017) estimates the gradient of the Gaussian-smoothed
fitness ``J(θ) = E_ε[F(θ + σε)]`` as ``ĝ = 1/(Mσ) Σ_m F(θ + σε_m) ε_m`` — one
forward pass per perturbation ``m``. With flipout, every example ``i`` of a
mini-batch evaluates its own perturbation in one batched pass: each dense
layer draws one Gaussian ``E = σε`` for the batch and per-example random signs
``s_i`` (inputs) and ``r_i`` (outputs), so example ``i`` sees
``ΔW_i = E ∘ s_i r_iᵀ`` (marginally ``N(0, σ²)`` per weight, pseudo-independent
across examples), computed as ``x W + ((x ∘ s) E) ∘ r``. The gradient of every
layer then takes one matrix product::

    ĝ_W = 1/(Mσ²) Σ_i F_i ΔW_i = 1/(Mσ²) · E ∘ (Sᵀ (F ∘ R))

Biases are perturbed independently per example (``σ η_i``, only
``batch × units`` numbers), with ``ĝ_b = 1/(Mσ²) Σ_i F_i σ η_i``.

Antithetic sampling evaluates each example twice, with ``ΔW_i`` and ``-ΔW_i``
(``r → -r``), so a constant fitness baseline cancels exactly. Fitness shaping
optionally replaces ``F`` by its centered ranks in ``[-0.5, 0.5]``.

The random draws use :mod:`bayesflip.random` (stateless Philox, signs exactly
±1). :class:`FlipoutES` optimizes a multilayer perceptron; the explicit
one-perturbation-at-a-time estimator :meth:`FlipoutES.explicit_gradient` is the
reference (and the speed baseline in ``benchmarks/bench_es.py``).

Relation to the variational core: the flipout forward pass ``x W + ((x ∘ s) E) ∘ r + b``
is the core's own :class:`~bayesflip.layers._estimators.LinearSample` (the
arithmetic every variational layer applies), and the draws come from
:mod:`bayesflip.random` as the layers' do. The *draw* cannot go through a
:class:`~bayesflip.layers.VariationalLayer`, because ES needs three things the
layers do not offer: (1) the search distribution is a fixed isotropic
``N(θ, σ² I)`` over plain variables, with no learned scale ``ρ``, prior or KL;
(2) each bias is perturbed independently per example (``σ η_i``), where a
layer perturbs a bias once per batch and flips its sign with ``r_i``; (3) the
gradient estimate needs the drawn ``E``, ``S`` and ``R`` themselves
(``ĝ = E ∘ Sᵀ(F ∘ R)``), which a layer consumes inside its call. Its own
stream is one ``[seed, counter]`` state variable, as a layer's is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np  # noqa: F401  (the doctests use it)
import tensorflow as tf

from bayesflip import random as rnd
from bayesflip._checks import check_real, is_int
from bayesflip._typing import ArrayLike
from bayesflip.layers._estimators import LinearSample

__all__ = ["centered_ranks", "FlipoutES"]


def centered_ranks(fitness: ArrayLike) -> tf.Tensor:
    """Fitness shaping: ranks mapped linearly to ``[-0.5, 0.5]``.

    ``u_i = rank(F_i) / (M - 1) - 0.5`` (rank 0 = lowest; ties broken by
    order), as in Salimans et al. (2017). Invariant to any increasing transform
    of the fitness.

    Args:
        fitness: 1-D tensor of ``M >= 2`` fitness values.

    Returns:
        float32 tensor of the same shape.

    Example:
    >>> centered_ranks([3.0, -1.0, 10.0]).numpy().tolist()
    [0.0, -0.5, 0.5]
    """
    f = tf.convert_to_tensor(fitness)
    if f.shape.rank != 1 or (f.shape[0] is not None and f.shape[0] < 2):
        raise ValueError(f"centered_ranks: expects a 1-D tensor of at least 2 values, got shape {f.shape}.")
    m = tf.shape(f)[0]
    order = tf.argsort(f, stable=True)
    ranks = tf.scatter_nd(order[:, None], tf.range(m), tf.shape(f))
    return tf.cast(ranks, tf.float32) / tf.cast(m - 1, tf.float32) - 0.5


class FlipoutES:
    """Evolution strategies on a multilayer perceptron with flipout perturbations.

    The search distribution is ``N(θ, σ² I)`` over all kernels and biases.
    :meth:`estimate_gradient` evaluates one perturbation per example (two with
    ``antithetic``) in one batched pass and returns the ES estimate of
    ``∇_θ E[F]``, the gradient of the mean fitness (fitness = higher is better).

    Args:
        layer_sizes: ``[input_dim, hidden..., output_dim]`` (>= 2 positive ints).
        activation: hidden activation (Keras name or callable); the output is linear.
        sigma: perturbation standard deviation (> 0).
        antithetic: evaluate ``±ΔW_i`` pairs (batch of ``2B`` perturbations).
        fitness_shaping: use :func:`centered_ranks` of the fitness.
        seed: seed of the initial weights and of the perturbation stream.

    Example:
    >>> import numpy as np
    >>> es = FlipoutES([3, 8, 2], sigma=0.1, seed=0)
    >>> x = np.ones((5, 3), "float32"); y = np.zeros(5, "int64")
    >>> fit = lambda y, logits: -keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
    >>> grads, f = es.estimate_gradient(fit, x, y)
    >>> [tuple(g.shape) for g in grads], tuple(f.shape)
    ([(3, 8), (8,), (8, 2), (2,)], (10,))
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str | Callable = "tanh",
        sigma: float = 0.05,
        antithetic: bool = True,
        fitness_shaping: bool = True,
        seed: int = 0,
    ):
        sizes = list(layer_sizes) if isinstance(layer_sizes, (list, tuple)) else None
        if sizes is None or len(sizes) < 2 or any(not is_int(s) or s <= 0 for s in sizes):
            raise ValueError(
                f"FlipoutES: `layer_sizes` must be a list of >= 2 positive ints, got {layer_sizes!r}."
            )
        check_real("FlipoutES", "sigma", sigma, low=0)
        self.layer_sizes = [int(s) for s in sizes]
        self.activation = keras.activations.get(activation)
        self.sigma = float(sigma)
        self.antithetic = bool(antithetic)
        self.fitness_shaping = bool(fitness_shaping)
        self.seed = rnd.resolve_seed(seed, caller="FlipoutES")
        init = keras.initializers.GlorotUniform(seed=self.seed)
        self.params: list[tf.Variable] = []
        for i, (a, b) in enumerate(zip(self.layer_sizes[:-1], self.layer_sizes[1:])):
            self.params.append(tf.Variable(init((a, b)), name=f"kernel_{i}"))
            self.params.append(tf.Variable(tf.zeros((b,)), name=f"bias_{i}"))
        self._state = tf.Variable([self.seed, 0], dtype=tf.int64, trainable=False, name="es_rng_state")
        self._compiled: dict = {}

    # ------------------------------------------------------------- forward
    def predict(self, x: ArrayLike) -> tf.Tensor:
        """Output of the unperturbed network (the search distribution's mean)."""
        h = tf.convert_to_tensor(x, tf.float32)
        n = len(self.params) // 2
        for i in range(n):
            h = h @ self.params[2 * i] + self.params[2 * i + 1]
            if i < n - 1:
                h = self.activation(h)
        return h

    def _check_batch(self, x, y):
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape.rank != 2 or x.shape[-1] != self.layer_sizes[0]:
            raise ValueError(
                f"FlipoutES: expects inputs of shape (batch, {self.layer_sizes[0]}), got {tuple(x.shape)}."
            )
        y = tf.convert_to_tensor(y)
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"FlipoutES: `x` and `y` have different batch sizes {x.shape[0]} and {y.shape[0]}."
            )
        return x, y

    def _flipout_gradient(self, fitness_fn, x, y, seed):
        sigma = self.sigma
        if self.antithetic:
            x = tf.concat([x, x], 0)
            y = tf.concat([y, y], 0)
        b = tf.shape(x)[0]
        half = b // 2 if self.antithetic else b
        n = len(self.params) // 2
        seeds = rnd.split_seed(seed, 4 * n)
        h, noise = x, []
        for i in range(n):
            kernel, bias = self.params[2 * i], self.params[2 * i + 1]
            fan_in, fan_out = kernel.shape
            e = sigma * rnd.standard_normal(kernel.shape, seeds[4 * i])
            s = rnd.rademacher(tf.stack([half, fan_in]), seeds[4 * i + 1])
            r = rnd.rademacher(tf.stack([half, fan_out]), seeds[4 * i + 2])
            eta = sigma * rnd.standard_normal(tf.stack([half, fan_out]), seeds[4 * i + 3])
            if self.antithetic:  # the mirrored half sees -ΔW_i: same s, negated r and η
                s, r, eta = tf.concat([s, s], 0), tf.concat([r, -r], 0), tf.concat([eta, -eta], 0)
            # x W + ((x ∘ s) E) ∘ r + b (the core's flipout form), plus the per-example bias noise
            h = LinearSample(weight=kernel, bias=bias, delta=e, sign_in=s, sign_out=r)(tf.matmul, h) + eta
            if i < n - 1:
                h = self.activation(h)
            noise.append((e, s, r, eta))
        fitness = tf.reshape(tf.cast(fitness_fn(y, h), tf.float32), [-1])
        weight = centered_ranks(fitness) if self.fitness_shaping else fitness
        m = tf.cast(b, tf.float32)
        grads = []
        for e, s, r, eta in noise:
            grads.append(e * tf.matmul(s, r * weight[:, None], transpose_a=True) / (m * sigma**2))
            grads.append(tf.reduce_sum(eta * weight[:, None], 0) / (m * sigma**2))
        return grads, fitness

    def estimate_gradient(
        self, fitness_fn: Callable, x: ArrayLike, y: ArrayLike
    ) -> tuple[list[tf.Tensor], tf.Tensor]:
        """ES gradient of the mean fitness, one flipout perturbation per example.

        Args:
            fitness_fn: ``fitness_fn(y, outputs)`` → per-example fitness, shape
                ``(batch,)`` (higher is better), e.g. the negative loss. The
                compiled pass is cached per function object: pass the same
                function every step (not a fresh lambda) to avoid retracing.
            x: inputs, ``(B, input_dim)``.
            y: targets, ``(B, ...)``.

        Returns:
            ``(grads, fitness)``: a list matching ``params`` (kernel, bias
            per layer) and the per-perturbation fitness (``2B`` with antithetic
            sampling: first the ``+`` half, then the mirrored ``-`` half).
        """
        x, y = self._check_batch(x, y)
        key = ("flipout", fitness_fn)
        if key not in self._compiled:
            self._compiled[key] = tf.function(lambda x, y, s: self._flipout_gradient(fitness_fn, x, y, s))
        seed = tf.identity(self._state)
        self._state.assign_add([0, 1])
        return self._compiled[key](x, y, seed)

    # ------------------------------------------------------------ reference
    def _explicit_one(self, fitness_fn, x, y, seed):
        """One explicitly perturbed copy (and its mirror) evaluated on one example."""
        seeds = rnd.split_seed(seed, len(self.params))
        eps = [rnd.standard_normal(p.shape, s) for p, s in zip(self.params, seeds)]
        n = len(self.params) // 2
        signs = (1.0, -1.0) if self.antithetic else (1.0,)
        fits = []
        for sign in signs:
            h = x
            for i in range(n):
                h = h @ (self.params[2 * i] + sign * self.sigma * eps[2 * i]) + (
                    self.params[2 * i + 1] + sign * self.sigma * eps[2 * i + 1]
                )
                if i < n - 1:
                    h = self.activation(h)
            fits.append(tf.reshape(tf.cast(fitness_fn(y, h), tf.float32), []))
        return eps, tf.stack(fits)

    def explicit_gradient(
        self, fitness_fn: Callable, x: ArrayLike, y: ArrayLike
    ) -> tuple[list[tf.Tensor], tf.Tensor]:
        """Reference estimator: a loop over examples, each with its own fully
        independent Gaussian perturbation of every weight (one forward pass of one
        explicitly perturbed network copy at a time).

        Same arguments, returns and weighting as :meth:`estimate_gradient`
        (fitness order: one ``±`` pair per example when antithetic).
        """
        x, y = self._check_batch(x, y)
        key = ("explicit", fitness_fn)
        if key not in self._compiled:
            self._compiled[key] = tf.function(lambda x, y, s: self._explicit_one(fitness_fn, x, y, s))
        one = self._compiled[key]
        all_eps, all_fit = [], []
        for i in range(int(x.shape[0])):
            seed = tf.identity(self._state)
            self._state.assign_add([0, 1])
            eps, fit = one(x[i : i + 1], y[i : i + 1], seed)
            all_eps.append(eps)
            all_fit.append(fit)
        fitness = tf.concat(all_fit, 0)
        weight = centered_ranks(fitness) if self.fitness_shaping else fitness
        k = 2 if self.antithetic else 1
        # antithetic: the perturbation of fitness entry 2i+1 is -eps_i
        coeff = tf.reshape(weight, [-1, k]) @ tf.constant([[1.0], [-1.0]][:k])
        m = float(fitness.shape[0])
        grads = []
        for j in range(len(self.params)):
            stacked = tf.stack([e[j] for e in all_eps])
            grads.append(tf.tensordot(coeff[:, 0], stacked, axes=1) / (m * self.sigma))
        return grads, fitness

    # ---------------------------------------------------------------- train
    def step(
        self, fitness_fn: Callable, x: ArrayLike, y: ArrayLike, optimizer: keras.optimizers.Optimizer
    ) -> tf.Tensor:
        """One ES ascent step on the mean fitness; returns the mean raw fitness.

        Example:
        >>> import numpy as np
        >>> es = FlipoutES([2, 1], sigma=0.1, seed=0)
        >>> fit = lambda y, out: -tf.square(out[:, 0] - y)
        >>> x = np.ones((4, 2), "float32"); y = np.zeros(4, "float32")
        >>> opt = keras.optimizers.SGD(0.1)
        >>> float(es.step(fit, x, y, opt)) <= 0.0
        True
        """
        grads, fitness = self.estimate_gradient(fitness_fn, x, y)
        optimizer.apply_gradients([(-g, p) for g, p in zip(grads, self.params)])
        return tf.reduce_mean(fitness)
