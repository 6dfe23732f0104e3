"""Fitting a Laplace approximation to a trained Keras model: :func:`fit_laplace` and :class:`LaplaceApproximation`."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from scipy import optimize

from bayesflip._checks import check_positive_int, is_real
from bayesflip.laplace import _curvature, _likelihood, _marglik, _model, _predictive

CURVATURES = ("ggn", "ef")
#: Largest parameter count of ``hessian_structure="full"`` (its ``P × P`` matrix in float64).
MAX_FULL_PARAMETERS = 20_000
_FN = "fit_laplace"


def _check_precision(fn: str, name: str, value: Any, groups: int) -> np.ndarray:
    values = np.atleast_1d(np.asarray(value, dtype=np.float64)) if _is_numeric(value) else None
    if values is None or values.ndim != 1 or values.size not in (1, groups):
        raise ValueError(
            f"{fn}: `{name}` must be a positive number or {groups} positive numbers (one per layer), "
            f"got {value!r}."
        )
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{fn}: `{name}` must be positive and finite, got {value!r}.")
    return np.broadcast_to(values, (groups,)).copy()


def _is_numeric(value: Any) -> bool:
    try:
        return np.asarray(value).dtype.kind in "iuf"
    except (TypeError, ValueError):
        return False


def _check_sigma(fn: str, sigma: Any) -> float:
    if not is_real(sigma) or not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"{fn}: `sigma_noise` must be a positive finite number, got {sigma!r}.")
    return float(sigma)


def _batches(fn: str, x: Any, y: Any, batch_size: int) -> tuple[Iterator, int | None]:
    """Mini-batches ``(x, y)`` of NumPy arrays, and their number (``None`` if unknown)."""
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise ValueError(
                f"{fn}: give `y` with array inputs only; a tf.data.Dataset yields (x, y) itself."
            )
        count = int(x.cardinality())

        def from_dataset():
            for element in x.as_numpy_iterator():
                if not isinstance(element, tuple) or len(element) != 2:
                    raise ValueError(f"{fn}: the data set `x` must yield (inputs, labels) pairs.")
                yield element

        return from_dataset(), (count if count >= 0 else None)
    if y is None:
        raise ValueError(f"{fn}: `y` (the training labels) is required with array inputs.")
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{fn}: `x` and `y` must have the same length, got {len(x)} and {len(y)}.")
    return (
        ((x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)),
        -(-len(x) // batch_size),
    )


@contextlib.contextmanager
def _mean_mode(model: keras.Model):
    """The posterior-mean mode of a bayesflip model while the approximation reads it (no-op otherwise)."""
    from bayesflip.inference import posterior_mean, variational_layers

    if variational_layers(model):
        with posterior_mean(model):
            yield
    else:
        yield


def fit_laplace(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    likelihood: str | None = None,
    subset_of_weights: str = "last_layer",
    hessian_structure: str = "kron",
    curvature: str = "ggn",
    prior_precision: float | Any = 1.0,
    sigma_noise: float | None = None,
    batch_size: int = 128,
    verbose: int = 1,
) -> LaplaceApproximation:
    """Laplace approximation of a trained Keras model's posterior, fitted post hoc (no retraining).

    The posterior is ``N(θ*, (c H + δ I)⁻¹)`` around the trained weights ``θ*``,
    ``H`` the generalised Gauss–Newton (or empirical Fisher) of the negative
    log-likelihood over the training data, ``δ`` the prior precision. ``model``
    is read, never modified (a bayesflip model is read in posterior-mean mode,
    restored afterwards).

    Which predictive (see :meth:`LaplaceApproximation.predict`): the
    linearised ``"glm"`` predictive is the default — the approximation's own
    predictive (the network linearised where the curvature was taken), cheap
    (closed form for regression, probit for classification), and in
    the ``laplace`` benchmark (``benchmarks/bench_laplace.py``) on
    par with the ``"nn"`` predictive for last-layer KFAC (digits, diabetes)
    and far better for the all-layer diagonal posterior. The ``"nn"``
    predictive samples the weights through the unlinearised network; it stays
    close to the GLM one for a tight last-layer posterior but breaks down for
    a wide one (all-layer diagonal with a marginal-likelihood prior on digits:
    accuracy near chance). It is what the converted layers
    (:meth:`LaplaceApproximation.to_bayesian_model`) serve: convert a
    last-layer posterior with a validated prior precision.

    Args:
        model: a built ``Sequential`` or functional model (deterministic, or a
            bayesflip model) whose last layer with weights is ``Dense``; the
            layers after it (an activation, a :mod:`bayesflip.heads` head) must
            have no weights, except a homoscedastic ``GaussianHead``'s scale.
        x: training inputs (array), or a ``tf.data.Dataset`` of ``(x, y)``
            batches (then ``y`` is ``None``).
        y: training labels: class ids (or one-hot) for ``categorical``, 0/1 for
            ``bernoulli``, targets ``(N, K)`` for regression.
        likelihood: ``"categorical"`` (softmax over logits), ``"bernoulli"``
            (sigmoid), ``"regression"`` (Gaussian, homoscedastic) or ``None``:
            read from the model's head, its last activation or its compiled loss.
            A heteroscedastic ``GaussianHead`` gives its Fisher.
        subset_of_weights: ``"last_layer"`` (the last Dense layer's kernel and
            bias) or ``"all"`` (every Dense and Conv1D/2D/3D layer).
        hessian_structure: ``"kron"`` (KFAC; with ``subset_of_weights="all"`` for
            Dense layers with a bias), ``"diag"`` or ``"full"`` (last layer only).
        curvature: ``"ggn"`` (generalised Gauss–Newton) or ``"ef"`` (empirical Fisher).
        prior_precision: ``δ``, a positive number or one per covered layer;
            tune it with :meth:`LaplaceApproximation.optimize_prior_precision`.
        sigma_noise: regression observation noise ``σ``; default the head's
            scale, or the root-mean-square training residual of the MAP.
        batch_size: examples per mini-batch (array inputs).
        verbose: 1 shows a ``keras.utils.Progbar``, 0 is silent.

    Returns:
        A :class:`LaplaceApproximation`.

    Example:
    >>> import keras, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 3)).astype("float32"); y = (x[:, 0] > 0).astype("int64")
    >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
    ...                         keras.layers.Dense(2)])
    >>> la = fit_laplace(net, x, y, likelihood="categorical", verbose=0)
    >>> la.predict(x[:4]).shape                      # GLM predictive, probit: probabilities
    (4, 2)
    >>> _ = la.optimize_prior_precision()            # maximise the marginal likelihood
    >>> bnn = la.to_bayesian_model()                 # matrix-normal DenseFlipout as the last layer
    >>> type(bnn.layers[-1].posterior).__name__
    'MatrixNormal'
    """
    fn = _FN
    parts = _model.cut(fn, model, subset_of_weights)
    if hessian_structure not in _curvature.STRUCTURES:
        raise ValueError(
            f"{fn}: `hessian_structure` must be one of {list(_curvature.STRUCTURES)}, got {hessian_structure!r}."
        )
    if subset_of_weights == "all" and hessian_structure == "full":
        raise ValueError(
            f"{fn}: hessian_structure='full' is available for subset_of_weights='last_layer'; "
            "subset_of_weights='all' supports 'diag' and 'kron'."
        )
    if subset_of_weights == "all" and hessian_structure == "kron":
        bad = [
            f"{type(layer).__name__} '{layer.name}'"
            for layer in parts.covered
            if not isinstance(layer, keras.layers.Dense) or layer.bias is None
        ]
        if bad:
            raise ValueError(
                f"{fn}: hessian_structure='kron' with subset_of_weights='all' covers Dense layers with a bias; "
                f"got {', '.join(bad)}. Use hessian_structure='diag'."
            )
    if curvature not in CURVATURES:
        raise ValueError(f"{fn}: `curvature` must be one of {list(CURVATURES)}, got {curvature!r}.")
    batch_size = check_positive_int(fn, "batch_size", batch_size)
    lik = _likelihood.resolve(fn, likelihood, model, parts.last, parts.head)
    activation = getattr(getattr(parts.last, "activation", None), "__name__", "linear")
    allowed = {"categorical": ("linear", "softmax"), "bernoulli": ("linear", "sigmoid")}.get(lik, ("linear",))
    if activation not in allowed:
        raise ValueError(
            f"{fn}: the last Dense layer '{parts.last.name}' has activation {activation!r}; for "
            f"likelihood={lik!r} its pre-activation must be the "
            f"{'logits' if lik in ('categorical', 'bernoulli') else 'output'} (activation one of {list(allowed)})."
        )
    num_outputs = parts.num_outputs
    units = parts.head.units if lik == "heteroscedastic" else num_outputs
    if lik == "heteroscedastic" and num_outputs != 2 * units:
        raise ValueError(
            f"{fn}: the last Dense layer must output 2 * units = {2 * units} values for the head."
        )
    if lik == "categorical" and num_outputs < 2:
        raise ValueError(f"{fn}: likelihood='categorical' needs >= 2 outputs (logits), got {num_outputs}.")
    min_scale = getattr(parts.head, "min_scale", 0.0)
    if hessian_structure == "full":
        size = parts.kernel.size + (0 if parts.bias is None else parts.bias.size)
        if size > MAX_FULL_PARAMETERS:
            raise ValueError(
                f"{fn}: hessian_structure='full' needs a {size} x {size} matrix for the last layer's "
                f"{size} weights (limit {MAX_FULL_PARAMETERS}); use 'kron' or 'diag'."
            )
    structure_cls = {
        "diag": _curvature.LastLayerDiag,
        "kron": _curvature.LastLayerKron,
        "full": _curvature.LastLayerFull,
    }[hessian_structure]
    if subset_of_weights == "all":
        curv: Any = (_curvature.AllLayerKron if hessian_structure == "kron" else _curvature.AllLayerDiag)(
            parts
        )
    else:
        curv = structure_cls(parts.kernel, parts.bias)
    groups = len(curv.groups)
    delta = _check_precision(fn, "prior_precision", prior_precision, groups)
    if sigma_noise is not None:
        if lik != "regression":
            raise ValueError(f"{fn}: `sigma_noise` applies to likelihood='regression' only, got {lik!r}.")
        sigma_noise = _check_sigma(fn, sigma_noise)

    batches, target = _batches(fn, x, y, batch_size)
    bar = keras.utils.Progbar(target, verbose=verbose, unit_name="batch")
    loglik = 0.0
    n = 0
    with _mean_mode(model):
        for step, (xb, yb) in enumerate(batches, start=1):
            labels = _likelihood.check_labels(fn, lik, yb, num_outputs, units)
            phi = np.asarray(parts.features(xb), np.float64)
            f = phi @ parts.kernel + (0.0 if parts.bias is None else parts.bias)
            terms, factors = _likelihood.batch_terms(lik, f, labels, units, min_scale, curvature)
            loglik += float(tf.reduce_sum(terms))
            curv.add(phi, np.asarray(factors), x=xb)
            n += len(phi)
            bar.update(step)
    if n == 0:
        raise ValueError(f"{fn}: the data set `x` is empty; the curvature needs at least one example.")
    curv.finalize()
    regression = lik == "regression"
    if regression and sigma_noise is None:
        scale = None
        if parts.head is not None:
            scale = float(
                np.sqrt(np.mean(np.square(np.asarray(parts.head(np.zeros((1, units), "float32")))[..., 1])))
            )
        sigma_noise = scale if scale is not None else math.sqrt(max(-2.0 * loglik / (n * units), 1e-12))
    terms_ = _marglik.EvidenceTerms(
        eigen_groups=curv.eigen_groups(),
        theta_sq=curv.theta_sq(),
        num_params=curv.num_params(),
        loglik=loglik,
        sum_sq=-2.0 * loglik if regression else 0.0,
        num_targets=n * units,
        regression=regression,
        noise_power=2 if curvature == "ggn" else 4,
    )
    return LaplaceApproximation(
        parts, lik, subset_of_weights, hessian_structure, curvature, curv, terms_, delta,
        sigma_noise if regression else None, n,
    )  # fmt: skip


class LaplaceApproximation:
    """A fitted Laplace approximation (made by :func:`fit_laplace`; see there for the math).

    Attributes:
        model: the model it approximates (never modified).
        likelihood: ``"categorical"``, ``"bernoulli"``, ``"regression"`` or ``"heteroscedastic"``.
        subset: ``subset_of_weights`` given to :func:`fit_laplace`.
        structure: ``hessian_structure`` given to :func:`fit_laplace`.
        curvature_type: ``curvature`` given to :func:`fit_laplace`.
        prior_precision: ``δ`` per group (one group per covered layer), NumPy.
        sigma_noise: regression observation noise ``σ`` (``None`` otherwise).
        num_examples: ``N``, the training examples seen.
        groups: the covered layers' names (the prior-precision groups).
    """

    def __init__(
        self, parts, likelihood, subset, structure, curvature_type, curvature, terms, delta, sigma, n
    ):
        self.parts = parts
        self.model = parts.model
        self.likelihood = likelihood
        self.subset = subset
        self.structure = structure
        self.curvature_type = curvature_type
        self.curvature = curvature
        self._terms = terms
        self.prior_precision = delta
        self.sigma_noise = sigma
        self.num_examples = n
        self.groups = list(curvature.groups)

    def __repr__(self) -> str:
        return (
            f"LaplaceApproximation(likelihood={self.likelihood!r}, subset={self.subset!r}, "
            f"structure={self.structure!r}, curvature={self.curvature_type!r}, "
            f"prior_precision={np.round(self.prior_precision, 6).tolist()}, sigma_noise={self.sigma_noise})"
        )

    # ------------------------------------------------------------- posterior
    @property
    def prior_precision_per_group(self) -> np.ndarray:
        """``δ`` per group (one per covered layer), float64."""
        return np.asarray(self.prior_precision, np.float64)

    @property
    def curvature_scale(self) -> float:
        """``c``: ``1/σ²`` (GGN) or ``1/σ⁴`` (empirical Fisher) in regression, else 1."""
        if self.likelihood != "regression":
            return 1.0
        return float(self.sigma_noise ** (-self._terms.noise_power))

    def log_marginal_likelihood(
        self, prior_precision: float | Any | None = None, sigma_noise: float | None = None
    ) -> float:
        """The Laplace log marginal likelihood ``log p(D)`` (at the stored or the given hyper-parameters).

        Args:
            prior_precision: ``δ`` (number or one per group); default the stored one.
            sigma_noise: regression ``σ``; default the stored one.

        Returns:
            ``log p(D | θ*) − ½ [log det(c H + δ I) − log det(δ I) + δ ‖θ*‖²]`` (float, nats).
        """
        fn = "LaplaceApproximation.log_marginal_likelihood"
        delta = (
            self.prior_precision_per_group
            if prior_precision is None
            else _check_precision(fn, "prior_precision", prior_precision, len(self.groups))
        )
        sigma = self.sigma_noise if sigma_noise is None else _check_sigma(fn, sigma_noise)
        return _marglik.log_marginal_likelihood(self._terms, delta, 1.0 if sigma is None else sigma)

    def optimize_prior_precision(
        self,
        method: str = "marglik",
        per_layer: bool = False,
        fit_sigma_noise: bool = True,
        x_val: Any = None,
        y_val: Any = None,
        grid: Any = None,
    ) -> LaplaceApproximation:
        """Choose the prior precision (and regression noise): marginal likelihood or validation NLL.

        The marginal likelihood needs no held-out data but trusts that ``θ*`` is
        the MAP under the prior it scores: for a network trained without weight
        decay (a flat prior) the evidence is dominated by ``δ ‖θ*‖²`` and picks a
        small ``δ`` (a wide posterior; underconfident predictions in
        ``benchmarks/bench_laplace.py``'s digits run). Validation NLL then
        chooses better, at the cost of held-out data.

        Args:
            method: ``"marglik"`` maximises :meth:`log_marginal_likelihood` over
                ``log δ`` (and ``log σ`` in regression when ``fit_sigma_noise``),
                L-BFGS-B; ``"val_nll"`` picks the ``δ`` of ``grid`` with the lowest
                GLM-predictive NLL on ``(x_val, y_val)``.
            per_layer: one ``δ`` per covered layer (``"marglik"`` only).
            fit_sigma_noise: also fit the regression noise (``"marglik"``: jointly;
                ``"val_nll"``: the NLL-best ``σ`` at each ``δ`` of the grid).
            x_val, y_val: validation data for ``"val_nll"``.
            grid: candidate ``δ`` values (default ``logspace(-4, 4, 17)``).

        Returns:
            ``self``, with ``prior_precision`` (and ``sigma_noise``) updated.
        """
        fn = "LaplaceApproximation.optimize_prior_precision"
        if method == "marglik":
            fit_sigma = bool(fit_sigma_noise) and self.likelihood == "regression"
            delta, sigma = _marglik.maximise(
                self._terms,
                self.prior_precision_per_group,
                1.0 if self.sigma_noise is None else self.sigma_noise,
                bool(per_layer),
                fit_sigma,
            )
            self.prior_precision = delta
            if fit_sigma:
                self.sigma_noise = sigma
            return self
        if method != "val_nll":
            raise ValueError(f"{fn}: `method` must be 'marglik' or 'val_nll', got {method!r}.")
        if x_val is None or y_val is None or len(x_val) == 0:
            raise ValueError(f"{fn}: method='val_nll' needs non-empty validation data `x_val`, `y_val`.")
        candidates = np.logspace(-4, 4, 17) if grid is None else np.asarray(grid, np.float64)
        _check_precision(fn, "grid", candidates, candidates.size)
        mean, phi_cov = self._moments_for_grid(x_val)
        fit_sigma = bool(fit_sigma_noise) and self.likelihood == "regression"
        best, best_sigma, best_nll = None, self.sigma_noise, np.inf
        for value in candidates:
            delta = np.full(len(self.groups), value)
            sigma = self.sigma_noise
            if fit_sigma:
                sigma = self._val_sigma(mean, phi_cov, delta, y_val)
            nll = self._val_nll(mean, phi_cov(delta, self._scale_at(sigma)), y_val, sigma)
            if nll < best_nll:
                best, best_sigma, best_nll = delta, sigma, nll
        self.prior_precision, self.sigma_noise = best, best_sigma
        return self

    def _scale_at(self, sigma: float | None) -> float:
        if self.likelihood != "regression" or sigma is None:
            return 1.0
        return float(sigma ** (-self._terms.noise_power))

    def _val_sigma(self, mean, phi_cov, delta, y) -> float:
        """The noise ``σ`` with the lowest validation NLL at prior precision ``delta`` (bounded 1-D search)."""

        def nll(log_sigma):
            sigma = math.exp(log_sigma)
            return self._val_nll(mean, phi_cov(delta, self._scale_at(sigma)), y, sigma)

        centre = math.log(self.sigma_noise)
        result = optimize.minimize_scalar(nll, bounds=(centre - 5.0, centre + 5.0), method="bounded")
        return math.exp(result.x)

    def _moments_for_grid(self, x):
        with _mean_mode(self.model):
            phi = np.asarray(self.parts.features(np.asarray(x)), np.float64)
        mean = phi @ self.parts.kernel + (0.0 if self.parts.bias is None else self.parts.bias)
        return mean, lambda delta, c: self.curvature.f_cov(phi, delta, c, x=np.asarray(x))

    def _val_nll(self, mean, cov, y, sigma: float | None = None) -> float:
        fn = "LaplaceApproximation.optimize_prior_precision"
        units = self.parts.head.units if self.likelihood == "heteroscedastic" else self.parts.num_outputs
        labels = _likelihood.check_labels(fn, self.likelihood, np.asarray(y), self.parts.num_outputs, units)
        if self.likelihood == "categorical":
            p = _predictive.classification("categorical", mean, cov, "probit", 1, False, 0)
            return float(-np.mean(np.log(np.clip(p[np.arange(len(p)), labels], 1e-12, None))))
        if self.likelihood == "bernoulli":
            p = _predictive.classification("bernoulli", mean, cov, "probit", 1, False, 0).astype(np.float64)
            p = np.clip(p, 1e-12, 1 - 1e-12)
            return float(-np.mean(np.sum(labels * np.log(p) + (1 - labels) * np.log1p(-p), axis=-1)))
        if self.likelihood == "regression":
            var = np.diagonal(cov, axis1=1, axis2=2) + (self.sigma_noise if sigma is None else sigma) ** 2
            return float(
                np.mean(np.sum(0.5 * np.log(2 * np.pi * var) + 0.5 * (labels - mean) ** 2 / var, -1))
            )
        raise ValueError(f"{fn}: method='val_nll' is not available for likelihood={self.likelihood!r}.")

    # ----------------------------------------------------------- predictive
    def glm_moments(self, x: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``f*`` ``(N, K)`` and covariance ``J Σ Jᵀ`` ``(N, K, K)`` of the linearised model's output.

        ``f`` is the last Dense layer's pre-activation (logits, regression mean).
        """
        x = np.asarray(x)
        means, covs = [], []
        delta, c = self.prior_precision_per_group, self.curvature_scale
        with _mean_mode(self.model):
            for start in range(0, len(x), batch_size):
                xb = x[start : start + batch_size]
                phi = np.asarray(self.parts.features(xb), np.float64)
                means.append(phi @ self.parts.kernel + (0.0 if self.parts.bias is None else self.parts.bias))
                covs.append(self.curvature.f_cov(phi, delta, c, x=xb))
        return np.concatenate(means), np.concatenate(covs)

    def predict(
        self,
        x: Any,
        pred_type: str = "glm",
        link_approx: str = "probit",
        num_samples: int = 100,
        return_samples: bool = False,
        seed: int = 0,
        batch_size: int = 256,
    ) -> Any:
        """The posterior predictive at ``x``.

        Args:
            x: inputs (array).
            pred_type: ``"glm"`` (linearised network; closed form or probit) or
                ``"nn"`` (Monte Carlo over weight draws through the network, by
                :func:`~bayesflip.uncertainty.mc_predict` on :meth:`to_bayesian_model`).
            link_approx: classification with ``"glm"``: ``"probit"`` or ``"mc"``.
            num_samples: Monte Carlo draws (``"mc"``, ``"nn"``, and the
                ``samples`` of a regression predictive).
            return_samples: classification: the per-draw probabilities ``(T, N, K)``
                (``"mc"`` or ``"nn"``).
            seed: seed of the draws.
            batch_size: inputs per batch.

        Returns:
            Classification: float32 probabilities ``(N, K)`` (``(T, N, K)`` with
            ``return_samples``). Regression: a :class:`bayesflip.heads.RegressionPredictive`.
        """
        fn = "LaplaceApproximation.predict"
        if pred_type not in _predictive.PRED_TYPES:
            raise ValueError(
                f"{fn}: `pred_type` must be one of {list(_predictive.PRED_TYPES)}, got {pred_type!r}."
            )
        if link_approx not in _predictive.LINK_APPROX:
            raise ValueError(
                f"{fn}: `link_approx` must be one of {list(_predictive.LINK_APPROX)}, got {link_approx!r}."
            )
        num_samples = check_positive_int(fn, "num_samples", num_samples)
        if return_samples and self.likelihood in ("categorical", "bernoulli"):
            if pred_type == "glm" and link_approx == "probit":
                raise ValueError(f"{fn}: return_samples=True needs link_approx='mc' or pred_type='nn'.")
        if pred_type == "nn":
            return self._nn_predict(x, num_samples, bool(return_samples), seed, batch_size)
        mean, cov = self.glm_moments(x, batch_size)
        if self.likelihood in ("categorical", "bernoulli"):
            return _predictive.classification(
                self.likelihood, mean, cov, link_approx, num_samples, bool(return_samples), seed
            )
        if self.likelihood == "regression":
            return _predictive.regression(mean, cov, self.sigma_noise, num_samples, seed)
        return _predictive.heteroscedastic(self.parts.head, self.parts.tail, mean, cov, num_samples, seed)

    def _nn_predict(self, x, num_samples, return_samples, seed, batch_size):
        from bayesflip.uncertainty import mc_predict

        bnn = self.to_bayesian_model(seed=seed)
        head = self.parts.head
        activation = getattr(getattr(self.parts.last, "activation", None), "__name__", "linear")
        if head is not None or activation in ("softmax", "sigmoid"):
            if head is not None and self.likelihood == "regression":
                return mc_predict(bnn, x, num_samples, batch_size)
            return mc_predict(bnn, x, num_samples, batch_size, return_samples=return_samples)
        if self.likelihood == "categorical":
            return mc_predict(
                bnn, x, num_samples, batch_size, return_samples=return_samples, from_logits=True
            )
        draws = mc_predict(bnn, x, num_samples, batch_size, return_samples=True)
        if self.likelihood == "bernoulli":
            probs = _predictive._sigmoid(draws).astype("float32")
            return probs if return_samples else probs.mean(0)
        from bayesflip.heads import RegressionPredictive

        loc = np.asarray(draws, np.float64)
        epistemic = loc.var(0)
        aleatoric = np.full_like(epistemic, self.sigma_noise**2)
        samples = np.stack([draws, np.full_like(draws, self.sigma_noise)], axis=-1)
        return RegressionPredictive(loc.mean(0), aleatoric + epistemic, aleatoric, epistemic, samples)

    # ---------------------------------------------------------------- layers
    def to_bayesian_model(self, seed: int | None = 0) -> keras.Model:
        """A copy of the model whose covered layers are bayesflip layers sampling this posterior.

        The diagonal posterior becomes :class:`~bayesflip.posteriors.MeanFieldGaussian`
        ``DenseFlipout``/``ConvNDFlipout`` layers (``loc`` = trained weights,
        ``scale`` = posterior standard deviation); the Kronecker-factored one a
        ``DenseFlipout`` with the :class:`~bayesflip.posteriors.MatrixNormal`
        family (``estimator="shared"``). Every covered layer gets a Bayesian
        bias, the prior ``Normal(0, δ^(-1/2))`` and ``kl_weight = 1/N``.
        :func:`~bayesflip.uncertainty.mc_predict`, ``.keras`` save/load,
        :func:`bayesflip.export` and conformal prediction then need nothing
        Laplace-specific. A homoscedastic ``GaussianHead`` gets the fitted ``σ``.

        Args:
            seed: base seed of the converted layers (layer ``i`` gets ``seed + i``).

        Returns:
            A new ``keras.Model``; the original is not modified.
        """
        from bayesflip.laplace._convert import to_bayesian_model

        return to_bayesian_model(self, seed)
