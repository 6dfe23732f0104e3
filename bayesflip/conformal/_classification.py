"""Conformal classification: class scores (LAC, APS, RAPS), prediction sets and
:class:`ConformalClassifier`."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from bayesflip._checks import check_int, check_positive_int, is_int, is_real
from bayesflip._typing import ArrayLike
from bayesflip.calibration._inputs import validate_labels, validate_probs
from bayesflip.conformal._core import _float_array, check_alpha, conformal_quantile

#: Nonconformity scores of :class:`ConformalClassifier` and :func:`class_scores` (``score=``).
CLASSIFICATION_SCORES = ("lac", "aps", "raps")


# --------------------------------------------------------------------------- classification
def _uniforms(fn: str, seed, n: int) -> np.ndarray:
    if isinstance(seed, np.random.Generator):
        return seed.uniform(size=n)
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"{fn}: `seed` must be None, a non-negative int or a numpy Generator, got {seed!r}.")
    return np.random.default_rng(seed).uniform(size=n)


def _check_score_args(fn: str, score: str, lam, k_reg) -> tuple[float, int]:
    if score not in CLASSIFICATION_SCORES:
        raise ValueError(f"{fn}: `score` must be one of {list(CLASSIFICATION_SCORES)}, got {score!r}.")
    if not is_real(lam) or not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"{fn}: `lam` must be a finite number >= 0, got {lam!r}.")
    return float(lam), check_int(fn, "k_reg", k_reg, minimum=0)


def class_scores(
    probs: ArrayLike,
    score: str = "aps",
    randomized: bool = True,
    lam: float = 0.01,
    k_reg: int = 1,
    seed: int | np.random.Generator | None = None,
    allow_empty: bool = True,
    u: ArrayLike | None = None,
) -> np.ndarray:
    """Nonconformity score of every candidate class: ``s(x_i, k, u_i)`` for all ``i, k``.

    - ``"lac"``: ``1 − π_k`` (never randomised).
    - ``"aps"``: ``ρ_k + u · π_k`` with ``ρ_k = Σ_{j : π_j > π_k} π_j`` (classes ranked above ``k``).
    - ``"raps"``: APS ``+ λ · max(0, o_k − k_reg)``, ``o_k`` the rank of ``k`` (1 = most probable).

    ``u_i ~ U(0, 1)``, one per example (shared by its classes), drawn as
    ``np.random.default_rng(seed).uniform(size=N)`` (or from the Generator
    ``seed``); ``randomized=False`` uses ``u = 1`` (the cumulative mass up to and
    including ``k``). With ``allow_empty=False`` the top class always gets its
    non-randomised score (as in the reference code of Angelopoulos et al. 2021,
    where sets are never empty; :func:`prediction_sets` then also always keeps it).

    Ties between equal probabilities are ranked by class index (stable sort).

    Args:
        probs: predictive probabilities ``(N, K)`` (e.g. ``mc_predict`` of a
            categorical model).
        score: ``"lac"``, ``"aps"`` or ``"raps"``.
        randomized: APS/RAPS: draw ``u`` (exact coverage) or use ``u = 1`` (conservative).
        lam, k_reg: RAPS penalty per rank beyond ``k_reg`` (ignored by LAC/APS).
        seed: ``None``, an int or a ``numpy.random.Generator`` for ``u``.
        allow_empty: see above.
        u: explicit uniforms ``(N,)`` instead of drawing them (for tests and reproductions).

    Returns:
        float64 ``(N, K)``; the calibration score of example ``i`` is ``[i, y_i]``
        (:func:`label_scores`), and the prediction set is ``{k : s ≤ q̂}``.

    Example:
    >>> p = [[0.6, 0.3, 0.1]]
    >>> class_scores(p, "aps", randomized=False).round(3).tolist()
    [[0.6, 0.9, 1.0]]
    >>> class_scores(p, "aps", u=[0.5]).round(3).tolist()               # ρ + u π
    [[0.3, 0.75, 0.95]]
    >>> class_scores(p, "raps", randomized=False, lam=0.5, k_reg=1).round(3).tolist()
    [[0.6, 1.4, 2.0]]
    >>> class_scores(p, "lac").round(3).tolist()
    [[0.4, 0.7, 0.9]]
    """
    fn = "class_scores"
    lam, k_reg = _check_score_args(fn, score, lam, k_reg)
    p = validate_probs(fn, probs)
    n, k = p.shape
    if score == "lac":
        return 1.0 - p
    order = np.argsort(-p, axis=1, kind="stable")  # classes by decreasing probability
    ranks = np.empty_like(order)
    # 0-based rank of each class
    np.put_along_axis(ranks, order, np.arange(k)[None, :].repeat(n, axis=0), axis=1)
    sorted_p = np.take_along_axis(p, order, axis=1)
    above = np.cumsum(sorted_p, axis=1) - sorted_p  # ρ: mass strictly above, in sorted order
    rho = np.take_along_axis(above, ranks, axis=1)
    if randomized:
        if u is None:
            u = _uniforms(fn, seed, n)
        u = _float_array(fn, "u", u)
        if u.shape != (n,) or np.any((u < 0) | (u > 1)):
            raise ValueError(f"{fn}: `u` must have shape ({n},) with values in [0, 1], got shape {u.shape}.")
        uu = np.repeat(u[:, None], k, axis=1)
        if not allow_empty:
            uu[ranks == 0] = 1.0
    else:
        uu = np.ones_like(p)
    s = rho + uu * p
    if score == "raps":
        s = s + lam * np.maximum(0, ranks + 1 - k_reg)
    return s


def label_scores(scores: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Calibration scores ``s_i = scores[i, y_i]`` from :func:`class_scores` and integer labels.

    Example:
    >>> label_scores([[0.1, 0.9], [0.5, 0.7]], [1, 0]).tolist()
    [0.9, 0.5]
    """
    fn = "label_scores"
    s = _float_array(fn, "scores", scores)
    if s.ndim != 2:
        raise ValueError(f"{fn}: `scores` must have shape (num_examples, num_classes), got shape {s.shape}.")
    y = validate_labels(fn, labels, s.shape[0], s.shape[1])
    return s[np.arange(len(y)), y]


def prediction_sets(
    scores: ArrayLike, q: float, probs: ArrayLike | None = None, include_last: bool = False
) -> np.ndarray:
    """Prediction sets ``{k : s(x_i, k) ≤ q̂}`` as a boolean mask ``(N, K)``.

    Args:
        scores: :func:`class_scores` of the test examples ``(N, K)``.
        q: the conformal quantile of the calibration scores.
        probs: when given (``allow_empty=False``), the most probable class is
            always included.
        include_last: also include the lowest-scoring class left out (for
            non-randomised APS/RAPS: the class whose cumulative mass crosses
            ``q̂``). This is the non-randomised set of the published algorithms
            (Romano et al. 2020, Eq. 5; Angelopoulos et al. 2021, Algorithm 2,
            without the randomised removal): valid but conservative (coverage
            above ``1 − α + 1/(n+1)``); the default ``False`` gives the plain
            split-conformal set of the score.

    Example:
    >>> prediction_sets([[0.3, 0.75, 0.95]], 0.8).tolist()
    [[True, True, False]]
    >>> prediction_sets([[0.6, 0.9, 1.0]], 0.8, include_last=True).tolist()
    [[True, True, False]]
    """
    s = _float_array("prediction_sets", "scores", scores)
    sets = s <= q
    if include_last:
        outside = np.where(sets, np.inf, s)
        nxt = np.argmin(outside, axis=1)
        rows = np.flatnonzero(~sets.all(axis=1))
        sets[rows, nxt[rows]] = True
    if probs is not None:
        top = np.argmax(validate_probs("prediction_sets", probs), axis=1)
        sets[np.arange(len(sets)), top] = True
    return sets


class ConformalClassifier:
    """Calibrate-then-predict conformal prediction sets around a (Bayesian) classifier.

    ``fit(x_cal, labels)`` runs :func:`bayesflip.uncertainty.mc_predict` (MC-averaged
    probabilities) on held-out calibration data and stores the label scores;
    ``predict(x, alpha)`` returns a boolean mask ``(N, K)`` of sets with marginal
    coverage ``≥ 1 − alpha``.

    Args:
        model: a Keras model outputting probabilities or ending in
            :class:`bayesflip.heads.CategoricalHead`; a model that outputs logits
            without a head needs ``from_logits=True``. ``None`` to use only the
            ``*_predictive`` methods (pass probabilities).
        score: ``"lac"``, ``"aps"`` or ``"raps"`` (:func:`class_scores`).
        randomized, lam, k_reg, allow_empty: see :func:`class_scores`.
        include_last: non-randomised APS/RAPS only: the published (conservative)
            set that also keeps the class crossing ``q̂`` (:func:`prediction_sets`).
        seed: seeds the ``numpy.random.Generator`` that draws the randomisation
            ``u`` for calibration and then for every ``predict`` call in turn.
        num_samples, batch_size, from_logits: passed to ``mc_predict``.

    Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> probs = rng.dirichlet(np.ones(4), size=300)
    >>> labels = np.array([rng.choice(4, p=p) for p in probs])
    >>> cc = ConformalClassifier(score="aps", seed=0).fit_predictive(probs[:200], labels[:200])
    >>> sets = cc.predict_predictive(probs[200:], alpha=0.1)
    >>> sets.shape, sets.dtype
    ((100, 4), dtype('bool'))
    """

    def __init__(
        self,
        model: keras.layers.Layer | None = None,
        score: str = "aps",
        randomized: bool = True,
        lam: float = 0.01,
        k_reg: int = 1,
        allow_empty: bool = True,
        include_last: bool = False,
        seed: int | np.random.Generator | None = None,
        num_samples: int = 32,
        batch_size: int | None = None,
        from_logits: bool = False,
    ) -> None:
        fn = "ConformalClassifier"
        self.lam, self.k_reg = _check_score_args(fn, score, lam, k_reg)
        self.model, self.score = model, score
        self.randomized, self.allow_empty = bool(randomized), bool(allow_empty)
        self.include_last = bool(include_last) and not self.randomized and score != "lac"
        self.num_samples = check_positive_int(fn, "num_samples", num_samples)
        self.batch_size = check_positive_int(fn, "batch_size", batch_size, allow_none=True)
        self.from_logits = bool(from_logits)
        _uniforms(fn, seed, 0)  # validates the seed
        self.seed = seed
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._scores: np.ndarray | None = None

    def _probs(self, fn, x):
        if self.model is None:
            raise ValueError(f"{fn}: no model was given; use fit_predictive / predict_predictive instead.")
        from bayesflip.uncertainty import mc_predict

        return mc_predict(
            self.model,
            x,
            num_samples=self.num_samples,
            batch_size=self.batch_size,
            from_logits=self.from_logits,
        )

    def _class_scores(self, fn, probs):
        return class_scores(
            probs,
            self.score,
            self.randomized,
            self.lam,
            self.k_reg,
            seed=self._rng,
            allow_empty=self.allow_empty,
        )

    def fit(self, x: Any, labels: ArrayLike) -> ConformalClassifier:
        """Calibrate on held-out ``(x, labels)`` (integer labels). Returns ``self``."""
        return self.fit_predictive(self._probs("ConformalClassifier.fit", x), labels)

    def fit_predictive(self, probs: ArrayLike, labels: ArrayLike) -> ConformalClassifier:
        """Calibrate from predictive probabilities ``(n, K)`` of the calibration inputs."""
        fn = "ConformalClassifier.fit"
        p = validate_probs(fn, probs)
        y = validate_labels(fn, labels, p.shape[0], p.shape[1])
        self._scores = label_scores(self._class_scores(fn, p), y)
        self.num_classes = p.shape[1]
        return self

    @property
    def num_calibration(self) -> int:
        """Number of calibration examples (0 before ``fit``)."""
        return 0 if self._scores is None else len(self._scores)

    def quantile(self, alpha: float = 0.1) -> float:
        """The calibrated threshold ``q̂`` for ``alpha``."""
        fn = "ConformalClassifier.quantile"
        alpha = check_alpha(fn, alpha)
        if self._scores is None:
            raise ValueError(f"{fn}: call fit(x_cal, labels) first.")
        return float(conformal_quantile(self._scores, alpha))  # a float for the (n,) label scores

    def predict(self, x: Any, alpha: float = 0.1) -> np.ndarray:
        """Prediction sets (boolean mask ``(N, K)``) for inputs ``x`` at miscoverage ``alpha``."""
        return self.predict_predictive(self._probs("ConformalClassifier.predict", x), alpha)

    def predict_predictive(self, probs: ArrayLike, alpha: float = 0.1) -> np.ndarray:
        """Prediction sets from predictive probabilities ``(N, K)`` of the test inputs."""
        fn = "ConformalClassifier.predict"
        q = self.quantile(alpha)
        p = validate_probs(fn, probs)
        if p.shape[1] != self.num_classes:
            raise ValueError(
                f"{fn}: expected probabilities over {self.num_classes} classes, got shape {p.shape}."
            )
        keep_top = self.score != "lac" and self.randomized and not self.allow_empty
        return prediction_sets(
            self._class_scores(fn, p), q, probs=p if keep_top else None, include_last=self.include_last
        )
