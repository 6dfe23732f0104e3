"""Acquisition functions of active learning on the Monte Carlo predictive.

Each score takes per-draw class probabilities ``(S, N, K)`` (posterior draws
first, as ``mc_predict(model, x, return_samples=True)`` returns them) and
returns ``(N,)`` values, higher = more worth labelling:

- :func:`bald` (Houlsby et al., 2011; Gal et al., ICML 2017): the mutual
  information ``I[y; w | x] = H[E_s p_s] − E_s H[p_s]`` between the label and
  the weights.
- :func:`max_entropy`: the predictive entropy ``H[E_s p_s]``.
- :func:`variation_ratios`: ``1 − (votes of the modal class) / S``.
- :func:`mean_std`: ``(1/K) Σ_k std_s p_s(k)`` (Kampffmeyer et al., 2016).

:func:`batchbald` (Kirsch et al., NeurIPS 2019) picks a batch greedily by the
mutual information between the *joint* labels of the batch and the weights,
so near-duplicate inputs are not acquired together; :func:`select` takes the
top ``k`` of any score (or ``k`` at random) and dispatches BatchBALD.
"""

from __future__ import annotations

import numpy as np

from bayesflip import uncertainty
from bayesflip._checks import check_on_simplex, check_positive_int, is_int
from bayesflip._typing import ArrayLike
from bayesflip.decisions.ood import variation_ratio

__all__ = ["ACQUISITIONS", "bald", "max_entropy", "variation_ratios", "mean_std", "batchbald", "select"]

#: Names accepted by :func:`select` (and the active-learning loop).
ACQUISITIONS = ("bald", "batchbald", "max_entropy", "variation_ratios", "mean_std", "random")


def _samples(fn: str, sample_probs: ArrayLike) -> np.ndarray:
    p = np.asarray(sample_probs, np.float64)
    if p.ndim != 3:
        raise ValueError(
            f"{fn}: `sample_probs` must have shape (S, N, K) (draws, inputs, classes), got {p.shape}."
        )
    if p.size == 0:
        raise ValueError(f"{fn}: `sample_probs` is empty (shape {p.shape}).")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{fn}: `sample_probs` contains NaN or infinite values.")
    check_on_simplex(fn, "sample_probs", p)
    return np.clip(p, 0.0, 1.0)


def bald(sample_probs: ArrayLike) -> np.ndarray:
    """BALD: mutual information between each input's label and the weights, in nats.

    Example:
    >>> bald([[[1.0, 0.0]], [[0.0, 1.0]]]).round(4).tolist()
    [0.6931]
    """
    return np.asarray(uncertainty.mutual_information(_samples("bald", sample_probs)), np.float64)


def max_entropy(sample_probs: ArrayLike) -> np.ndarray:
    """Entropy of the MC-averaged predictive, in nats.

    Example:
    >>> max_entropy([[[1.0, 0.0]], [[0.0, 1.0]]]).round(4).tolist()
    [0.6931]
    """
    p = _samples("max_entropy", sample_probs)
    return np.asarray(uncertainty.predictive_entropy(p.mean(axis=0)), np.float64)


def variation_ratios(sample_probs: ArrayLike) -> np.ndarray:
    """Share of draws whose arg-max disagrees with the modal class.

    Example:
    >>> variation_ratios([[[0.9, 0.1]], [[0.2, 0.8]]]).tolist()
    [0.5]
    """
    return variation_ratio(_samples("variation_ratios", sample_probs))


def mean_std(sample_probs: ArrayLike) -> np.ndarray:
    """Mean over classes of the standard deviation of each class probability over draws.

    Example:
    >>> mean_std([[[1.0, 0.0]], [[0.0, 1.0]]]).tolist()
    [0.5]
    """
    return _samples("mean_std", sample_probs).std(axis=0).mean(axis=-1)


def _entropy_rows(q: np.ndarray) -> np.ndarray:
    return -np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0), axis=-1)


def batchbald(
    sample_probs: ArrayLike, k: int, num_configurations: int = 1000, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """Greedy BatchBALD: ``k`` inputs maximising ``I[y_1, …, y_k; w]``.

    Step ``b`` adds the input ``n`` maximising ``H[y_batch, y_n] − E_s H[p_s(y_n)]``
    (the entropy terms of inputs already chosen are common to all candidates).
    The joint entropy uses the ``K^b`` label configurations of the chosen inputs
    exactly while ``K^b <= num_configurations``, else ``num_configurations``
    configurations drawn from the joint predictive (Kirsch et al.'s estimator).
    With ``k = 1`` it is BALD's arg-max.

    Args:
        sample_probs: ``(S, N, K)`` per-draw probabilities of the pool.
        k: batch size, a positive int ``<= N``.
        num_configurations: largest number of label configurations kept.
        seed: seed (or NumPy ``Generator``) of the sampled configurations.

    Returns:
        ``(k,)`` pool indices in the order chosen.

    Example:
    >>> s = np.array([[0.9, 0.9, 0.85], [0.9, 0.9, 0.15], [0.1, 0.1, 0.85], [0.1, 0.1, 0.15]])
    >>> p = np.stack([1 - s, s], axis=-1)  # 4 draws, 3 inputs (0 and 1 duplicates), 2 classes
    >>> batchbald(p, 2).tolist()  # top-2 BALD would take both duplicates (0.368 each vs 0.270)
    [0, 2]
    """
    fn = "batchbald"
    p = _samples(fn, sample_probs)
    k = _check_k(fn, k, p.shape[1])
    num_configurations = check_positive_int(fn, "num_configurations", num_configurations)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    s, n, num_classes = p.shape
    conditional = _entropy_rows(p).mean(axis=0)  # E_s H[p_s(y_n)], (N,)
    flat = p.reshape(s, n * num_classes)
    joint = np.ones((s, 1))  # P[s, m] = p_s(configuration m of the chosen labels)
    # importance of each configuration in the entropy sum: 1 while they are enumerated
    # exactly, 1 / (M p̂(m)) once M of them are drawn from the joint predictive p̂
    importance = np.ones(1)
    chosen: list[int] = []
    available = np.ones(n, bool)
    for _ in range(k):
        # p̂(m, y_n = y) = mean_s P[s, m] p_s(y_n = y), one matmul: (M, S) @ (S, N K)
        q = (joint.T @ flat) / s
        plogp = q * np.log(np.where(q > 0, q, 1.0))
        gain = -(importance @ plogp).reshape(n, num_classes).sum(axis=1) - conditional
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(best)
        available[best] = False
        # extend every configuration by the chosen input's label
        ext = (joint[:, :, None] * p[:, best, None, :]).reshape(s, -1)
        ext_importance = np.repeat(importance, num_classes)
        if ext.shape[1] <= num_configurations and np.all(ext_importance == 1.0):
            joint, importance = ext, ext_importance
        else:
            mass = ext.mean(axis=0) * ext_importance  # ∝ p̂(configuration) for drawn ones too
            idx = rng.choice(ext.shape[1], size=num_configurations, p=mass / mass.sum())
            joint = ext[:, idx]
            importance = 1.0 / (num_configurations * joint.mean(axis=0))
    return np.asarray(chosen, np.int64)


def _check_k(fn: str, k: object, pool_size: int) -> int:
    if not is_int(k) or int(k) < 1:  # type: ignore[call-overload]
        raise ValueError(f"{fn}: `k` must be a positive int, got {k!r}.")
    if int(k) > pool_size:  # type: ignore[call-overload]
        raise ValueError(f"{fn}: the pool ({pool_size} inputs) is smaller than `k` = {k}.")
    return int(k)  # type: ignore[call-overload]


_SCORES = {
    "bald": bald,
    "max_entropy": max_entropy,
    "variation_ratios": variation_ratios,
    "mean_std": mean_std,
}


def select(
    acquisition: str,
    sample_probs: ArrayLike | None,
    k: int,
    seed: int | np.random.Generator = 0,
    pool_size: int | None = None,
    num_configurations: int = 1000,
) -> np.ndarray:
    """Indices of the ``k`` pool inputs to label next.

    Args:
        acquisition: one of :data:`ACQUISITIONS`.
        sample_probs: ``(S, N, K)`` per-draw probabilities of the pool (may be
            ``None`` for ``"random"`` when ``pool_size`` is given).
        k: number to acquire, a positive int ``<= N``.
        seed: seed (or NumPy ``Generator``) of ``"random"``, of the tie-breaking
            and of BatchBALD's sampled configurations.
        pool_size: size of the pool when ``sample_probs`` is ``None``.
        num_configurations: BatchBALD's number of label configurations.

    Returns:
        ``(k,)`` int64 indices into the pool, best first (random: in draw order).

    Example:
    >>> p = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    >>> select("bald", p, 1).tolist()
    [0]
    """
    fn = "select"
    if acquisition not in ACQUISITIONS:
        raise ValueError(
            f"{fn}: unknown `acquisition` {acquisition!r}; expected one of {list(ACQUISITIONS)}."
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if sample_probs is None:
        if acquisition != "random" or pool_size is None:
            raise ValueError(
                f"{fn}: `sample_probs` is needed for {acquisition!r} (or give `pool_size` for 'random')."
            )
        n = pool_size
    else:
        n = int(np.shape(sample_probs)[1]) if np.ndim(sample_probs) == 3 else -1
        if n < 0:
            _samples(fn, sample_probs)  # raises the shape error
    k = _check_k(fn, k, n)
    if acquisition == "random":
        return rng.permutation(n)[:k].astype(np.int64)
    if acquisition == "batchbald":
        return batchbald(sample_probs, k, num_configurations, rng)
    scores = _SCORES[acquisition](sample_probs)
    # ties broken at random (e.g. many variation ratios of 0), the order of the rest by score
    order = np.lexsort((rng.random(n), -scores))
    return order[:k].astype(np.int64)
